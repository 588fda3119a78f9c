// Tensor: a shape, a dtype and a storage on one backend, plus the autograd links. Memory is explicit:
// dispose() frees the storage; tidy() frees every tensor created inside it that is not returned.
import type { Backend, DType, Storage } from '../backend/backend.js';

export class ShapeError extends Error {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'ShapeError';
  }
}

/** A node of the autograd graph: the inputs of one op and how to map its output gradient to theirs. */
export interface GradNode {
  readonly op: string;
  readonly inputs: Tensor[];
  /**
   * Returns one gradient per input (null where the input needs none). Runs with grad recording off,
   * in a scope of its own (see backward()): whatever else it creates is freed when it returns.
   * `pending(i)` hands the rule the gradient autograd has summed so far for input i and forgets it:
   * the rule then returns that sum plus its own contribution (a kernel that adds it in passing).
   */
  backward(grad: Tensor, pending: PendingGradient): (Tensor | null)[];
}

/** The gradient summed so far for input i of a node, taken over by its rule (null when none). */
export type PendingGradient = (input: number) => Tensor | null;

let nextId = 1;
let live = 0;
const scopes: Set<Tensor>[] = [];
let gradEnabled = true;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: DType;
  readonly backend: Backend;
  /** Shared with the tensor's views (reshape); the storage is freed when the last one goes. */
  private _ref: { storage: Storage; refs: number } | null;
  /** Leaf parameters set this; op outputs inherit it from their inputs while grad is enabled. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after backward(). Owned by the tensor (freed with it). */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when recorded for autograd. */
  node: GradNode | null = null;
  name?: string;

  constructor(
    backend: Backend,
    storage: Storage | Tensor,
    shape: readonly number[],
    dtype: DType = storage instanceof Tensor ? storage.dtype : storage.dtype,
  ) {
    this.backend = backend;
    if (storage instanceof Tensor) {
      if (!storage._ref) throw new Error(`a view of tensor #${storage.id} was taken after dispose()`);
      this._ref = storage._ref;
      this._ref.refs++;
    } else {
      this._ref = { storage, refs: 1 };
    }
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    this.dtype = dtype;
    if (this.size > this._ref.storage.length)
      throw new ShapeError(
        'tensor',
        `shape [${shape}] needs ${this.size} elements, storage has ${this._ref.storage.length}`,
      );
    live++;
    if (scopes.length > 0) scopes[scopes.length - 1].add(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this._ref === null;
  }

  /** The device storage; throws if the tensor was disposed. */
  get storage(): Storage {
    if (!this._ref)
      throw new Error(
        `tensor #${this.id}${this.name ? ` (${this.name})` : ''} [${this.shape}] was used after dispose()`,
      );
    return this._ref.storage;
  }

  /** Reads the values back (the only place a WebGPU backend waits on the device). */
  async data(): Promise<Float32Array | Int32Array> {
    const d = await this.backend.download(this.storage);
    return d.length === this.size ? d : d.subarray(0, this.size);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError('item', `needs a single element, tensor has shape [${this.shape}]`);
    return (await this.data())[0];
  }

  dispose(): void {
    if (!this._ref) return;
    if (--this._ref.refs === 0) this.backend.free(this._ref.storage);
    this._ref = null;
    this.node = null;
    live--;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    for (const s of scopes) s.delete(this);
  }

  toString(): string {
    return `Tensor(#${this.id}, [${this.shape}], ${this.dtype}, ${this.backend.kind})`;
  }
}

/** Tensors currently alive (not disposed), over all backends. */
export function liveTensors(): number {
  return live;
}

/** Takes a tensor out of every enclosing tidy() scope so it outlives them. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

type Tensors = Tensor | Tensor[] | Record<string, Tensor> | void | undefined | null | number;

function collect(result: unknown, into: Set<Tensor>): void {
  if (result instanceof Tensor) into.add(result);
  else if (Array.isArray(result)) result.forEach((r) => collect(r, into));
  else if (result && typeof result === 'object' && !(result instanceof Promise)) {
    for (const v of Object.values(result)) collect(v, into);
  }
}

/**
 * Runs fn and disposes every tensor it created except those it returns (arrays and plain objects
 * of tensors are searched) and those passed to keep(). Returned tensors join the enclosing scope.
 */
export function tidy<T extends Tensors | Tensors[] | Record<string, unknown>>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // A failing step (a backend fault, a shape error) must not strand its intermediates: nothing is
    // returned, so everything the scope created goes, as it would have on success.
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  const keepers = new Set<Tensor>();
  collect(result, keepers);
  for (const t of scope) {
    if (!keepers.has(t)) t.dispose();
  }
  if (scopes.length > 0) for (const t of keepers) if (scope.has(t)) scopes[scopes.length - 1].add(t);
  return result;
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording autograd nodes. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}
