// Module: a tree of named parameters, buffers and children whose dotted names follow PyTorch's
// state-dict names (facebookresearch/dino's), so weights move to and from PyTorch unchanged.
import type { Backend } from '../backend/backend.js';
import { ShapeError, Tensor, keep } from '../tensor/tensor.js';
import { sameShape } from '../tensor/shape.js';

export interface HostTensor {
  shape: readonly number[];
  data: Float32Array | Int32Array;
}

export abstract class Module {
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  constructor(readonly backend: Backend) {}

  /** Registers a trainable parameter (kept out of tidy scopes, requiresGrad set). */
  protected addParam(name: string, t: Tensor): Tensor {
    if (this.ownParams.has(name) || this.children.has(name)) throw new Error(`duplicate module member '${name}'`);
    t.requiresGrad = true;
    t.name = name;
    this.ownParams.set(name, keep(t));
    return t;
  }

  /** Registers state that is saved but not trained (running statistics, the DINO center). */
  protected addBuffer(name: string, t: Tensor): Tensor {
    if (this.ownBuffers.has(name)) throw new Error(`duplicate buffer '${name}'`);
    t.name = name;
    this.ownBuffers.set(name, keep(t));
    return t;
  }

  protected addChild<M extends Module>(name: string, m: M): M {
    if (this.children.has(name) || this.ownParams.has(name)) throw new Error(`duplicate module member '${name}'`);
    this.children.set(name, m);
    return m;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.ownParams) out.push([prefix + n, t]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.ownBuffers) out.push([prefix + n, t]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters with requiresGrad (frozen ones excluded). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /** Parameters then buffers, by dotted name. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Number of scalar parameters. */
  parameterCount(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }

  /**
   * Copies values into the existing tensors (references held elsewhere stay valid). strict: every
   * entry of the module must be present and nothing unknown may be given.
   */
  loadStateDict(state: Map<string, HostTensor>, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      const unexpected = [...state.keys()].filter((k) => !own.has(k));
      if (missing.length || unexpected.length) {
        throw new Error(
          `loadStateDict: ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && unexpected.length ? '; ' : ''}${unexpected.length ? `unexpected ${unexpected.join(', ')}` : ''}`,
        );
      }
    }
    for (const [name, t] of own) {
      const src = state.get(name);
      if (!src) continue;
      if (!sameShape(src.shape, t.shape)) {
        throw new ShapeError(
          'loadStateDict',
          `'${name}' has shape [${src.shape}] in the state, [${t.shape}] in the module`,
        );
      }
      t.backend.upload(t.storage, t.dtype === 'i32' ? Int32Array.from(src.data) : Float32Array.from(src.data));
    }
  }

  /** Reads every parameter and buffer back to the host. */
  async hostState(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, t] of this.stateDict()) out.set(name, { shape: [...t.shape], data: await t.data() });
    return out;
  }

  /** This module and every descendant, depth first. */
  *modules(): Generator<Module> {
    yield this;
    for (const c of this.children.values()) yield* c.modules();
  }

  train(mode = true): this {
    this.training = mode;
    for (const c of this.children.values()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  dispose(): void {
    for (const t of this.ownParams.values()) t.dispose();
    for (const t of this.ownBuffers.values()) t.dispose();
    for (const c of this.children.values()) c.dispose();
  }
}

/** Children named 0, 1, 2, … as nn.Sequential / nn.ModuleList name them. */
export class ModuleList extends Module {
  private next = 0;
  readonly items: Module[] = [];

  push<M extends Module>(m: M): M {
    this.items.push(m);
    return this.addChild(String(this.next++), m);
  }

  /** Consumes an index without a module (a parameter-free layer inside nn.Sequential). */
  skip(): void {
    this.next++;
  }
}
