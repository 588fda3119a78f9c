// Whether Dawn's Vulkan backend can start on this machine, decided without starting Dawn. Dawn
// dlopen()s libvulkan.so.1 when an instance looks for adapters and, when that fails, prints
// "Warning: Couldn't load Vulkan: …" to stderr from C++, where Node cannot catch or silence it.
// Asking the same question first, the same way, lets us never ask Dawn for Vulkan where it would
// only print that, and say it once in our own words where it matters.
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const VULKAN_LOADER = 'libvulkan.so.1';

export interface VulkanLoader {
  /** Whether Dawn would find a Vulkan loader (always true where Vulkan is not how Dawn reaches a GPU). */
  found: boolean;
  /** Where it was found, or why not. */
  detail: string;
  /** The driver manifests (ICD JSON files) the loader would read; without one Vulkan finds no device. */
  drivers: string[];
}

let cached: VulkanLoader | undefined;

/** Dawn looks next to dawn.node first (its runtime search path), then where dlopen looks. */
function dawnDirectory(): string | null {
  try {
    const pkg = createRequire(import.meta.url).resolve('webgpu/package.json');
    return join(dirname(pkg), 'dist', `${process.platform}-${process.arch}`);
  } catch {
    return null;
  }
}

/**
 * The ICD manifests the Vulkan loader reads on Linux: the files VK_DRIVER_FILES / VK_ICD_FILENAMES
 * name (they replace the search), else every *.json in the icd.d folders of the XDG config and
 * data directories and /etc. A loader with none prints "Found no drivers!" through Dawn.
 */
export function vulkanDrivers(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  const extra = (env.VK_ADD_DRIVER_FILES ?? '').split(':').filter((f) => f && existsSync(f));
  if (named) return [...named.split(':').filter((f) => f && existsSync(f)), ...extra];
  const home = homedir();
  const dirs = [
    env.XDG_CONFIG_HOME ?? join(home, '.config'),
    ...(env.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':'),
    '/etc',
    env.XDG_DATA_HOME ?? join(home, '.local/share'),
    ...(env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share').split(':'),
  ].filter((d) => d);
  const found: string[] = [];
  for (const d of dirs) {
    const icd = join(d, 'vulkan', 'icd.d');
    try {
      for (const f of readdirSync(icd)) if (f.endsWith('.json')) found.push(join(icd, f));
    } catch {
      /* no such folder: the loader skips it too */
    }
  }
  return [...found, ...extra];
}

/**
 * On Linux: whether libvulkan.so.1 can be loaded by the name Dawn uses. process.dlopen runs the
 * dynamic linker's own search (LD_LIBRARY_PATH, ld.so.cache, default paths); a library that loads
 * but is not a Node addon fails with "did not self-register", which here means "found".
 * Elsewhere Dawn reaches hardware through Metal or D3D12 and this question does not arise.
 */
export function vulkanLoader(): VulkanLoader {
  if (cached) return cached;
  if (process.platform !== 'linux') {
    cached = { found: true, detail: `not needed on ${process.platform}`, drivers: [] };
    return cached;
  }
  const beside = dawnDirectory();
  if (beside && existsSync(join(beside, VULKAN_LOADER))) {
    cached = { found: true, detail: join(beside, VULKAN_LOADER), drivers: vulkanDrivers() };
    return cached;
  }
  try {
    process.dlopen({ exports: {} }, VULKAN_LOADER);
    cached = { found: true, detail: VULKAN_LOADER, drivers: vulkanDrivers() };
  } catch (e) {
    const msg = (e as Error).message;
    cached = /did not self-register|was compiled against|napi_register_module/i.test(msg)
      ? { found: true, detail: `${VULKAN_LOADER} from the dynamic linker's search path`, drivers: vulkanDrivers() }
      : { found: false, detail: msg.split('\n')[0], drivers: [] };
  }
  return cached;
}
