// Every adapter Dawn offers on this machine, backend by backend, with the features and limits that
// decide what our kernels can do there (for `protodino doctor`). The same two paths findAdapter
// takes: the hardware backend (skipped without a Vulkan loader on Linux) and the OpenGL ES one.
import { describeAdapter, hardwareBackend, isSoftware, softwareAdapter, tryAdapter } from './runtime.js';

/** The optional features a kernel could use: half floats, subgroup operations, GPU timestamps. */
export const REPORTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
/** The limits that bound tensor sizes and kernel tiling. */
export const REPORTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

export interface AdapterReport {
  /** The Dawn backend asked: 'vulkan', 'opengles', or 'default' (Metal / D3D12). */
  backend: string;
  found: boolean;
  /** Why nothing was found or the backend was not asked. */
  note?: string;
  /** describeAdapter's name, the one backend descriptions print. */
  name?: string;
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  software?: boolean;
  /** 'core' or 'compatibility' (what GLES offers). */
  featureLevel?: 'core' | 'compatibility';
  features?: Record<(typeof REPORTED_FEATURES)[number], boolean>;
  limits?: Record<(typeof REPORTED_LIMITS)[number], number>;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

function report(backend: string, adapter: GPUAdapter, featureLevel: 'core' | 'compatibility'): AdapterReport {
  const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const features = Object.fromEntries(REPORTED_FEATURES.map((f) => [f, adapter.features.has(f)])) as Record<
    (typeof REPORTED_FEATURES)[number],
    boolean
  >;
  const limits = Object.fromEntries(REPORTED_LIMITS.map((l) => [l, adapter.limits[l]])) as Record<
    (typeof REPORTED_LIMITS)[number],
    number
  >;
  return {
    backend,
    found: true,
    name: describeAdapter(info),
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    software: isSoftware(info),
    featureLevel,
    features,
    limits,
    subgroupMinSize: info.subgroupMinSize,
    subgroupMaxSize: info.subgroupMaxSize,
  };
}

/** One entry per backend Dawn is asked for here, found or not. */
export async function listAdapters(): Promise<AdapterReport[]> {
  const out: AdapterReport[] = [];
  const how = hardwareBackend();
  if ('skipped' in how) {
    out.push({ backend: 'vulkan', found: false, note: `not asked: ${how.skipped}` });
  } else {
    const hw = await tryAdapter(how.flags, { powerPreference: 'high-performance' });
    out.push(hw ? report(how.backend, hw.adapter, 'core') : { backend: how.backend, found: false, note: 'no adapter' });
  }
  if (process.platform === 'linux') {
    const sw = await softwareAdapter();
    out.push(
      sw
        ? report('opengles', sw.adapter, 'compatibility')
        : { backend: 'opengles', found: false, note: 'no OpenGL ES adapter through EGL' },
    );
  }
  return out;
}
