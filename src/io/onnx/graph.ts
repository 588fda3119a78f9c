// A small builder for one ONNX graph: named f32 weights and int64 constants as initializers, nodes in
// the order they are added (which is topological, as ONNX requires, because a node can only name
// values that already exist), and the model wrapper with its opset and metadata.
import { endianness } from 'node:os';
import type { Tensor } from '../../tensor/tensor.js';
import {
  AttributeType,
  DataType,
  type AttributeMsg,
  type Dim,
  type ModelMsg,
  type NodeMsg,
  type TensorMsg,
  type ValueInfoMsg,
} from './proto.js';

/** Opset 17 is the first with LayerNormalization; IR version 8 is the one that opset shipped with. */
export const OPSET = 17;
const IR_VERSION = 8;

/** A float attribute (a plain number is an int attribute, since ONNX types the two apart). */
export interface FloatAttr {
  float: number;
}
export const float = (x: number): FloatAttr => ({ float: x });
export type Attr = number | number[] | string | FloatAttr;

// raw_data must be little-endian; the bytes of a Float32Array are the host's order.
if (endianness() !== 'LE')
  throw new Error('ONNX export writes tensors in host byte order and needs a little-endian host');

const bytesOf = (a: Float32Array | BigInt64Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export class Graph {
  readonly nodes: NodeMsg[] = [];
  readonly initializers: TensorMsg[] = [];
  private readonly names = new Set<string>();
  private readonly scalars = new Map<string, string>();

  /** `hint` if unused, else hint_1, hint_2, …: names stay readable (they follow the state dict's). */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.names.has(name); i++) name = `${hint}_${i}`;
    this.names.add(name);
    return name;
  }

  /** An f32 initializer; its size must match the shape. */
  weight(name: string, shape: readonly number[], data: Float32Array): string {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`ONNX export: ${name} has ${data.length} values for shape [${shape}]`);
    const id = this.fresh(name);
    this.initializers.push({ name: id, dims: [...shape], data_type: DataType.FLOAT, raw_data: bytesOf(data) });
    return id;
  }

  /** An f32 scalar initializer, shared by every node that asks for the same name. */
  scalar(name: string, value: number): string {
    let id = this.scalars.get(name);
    if (!id) this.scalars.set(name, (id = this.weight(name, [], Float32Array.of(value))));
    return id;
  }

  /** An int64 initializer (shapes, axes, indices); `shape` [] makes a scalar. */
  ints(name: string, values: readonly number[], shape: readonly number[] = [values.length]): string {
    const id = this.fresh(name);
    const data = BigInt64Array.from(values, (v) => BigInt(v));
    this.initializers.push({ name: id, dims: [...shape], data_type: DataType.INT64, raw_data: bytesOf(data) });
    return id;
  }

  /** Adds a node with one output and returns that output's name. */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, hint = op): string {
    const out = this.fresh(hint);
    this.nodes.push({ name: out, op_type: op, input: inputs, output: [out], attribute: attributes(attrs) });
    return out;
  }

  model(opts: {
    inputs: ValueInfoMsg[];
    outputs: ValueInfoMsg[];
    doc: string;
    metadata: Record<string, string>;
    producerVersion: string;
  }): ModelMsg {
    return {
      ir_version: IR_VERSION,
      producer_name: 'protodino',
      producer_version: opts.producerVersion,
      doc_string: opts.doc,
      opset_import: [{ domain: '', version: OPSET }],
      metadata_props: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: 'protodino',
        node: this.nodes,
        initializer: this.initializers,
        input: opts.inputs,
        output: opts.outputs,
      },
    };
  }
}

function attributes(attrs: Record<string, Attr>): AttributeMsg[] {
  return Object.entries(attrs).map(([name, v]): AttributeMsg => {
    if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new Error(`ONNX export: int attribute ${name} = ${v}; use float() for floats`);
      return { name, type: AttributeType.INT, i: v };
    }
    return { name, type: AttributeType.FLOAT, f: v.float };
  });
}

/** A float32 graph input or output; string dims are dynamic (named) sizes. */
export function tensorInfo(name: string, dims: Dim[], doc?: string): ValueInfoMsg {
  return {
    name,
    ...(doc ? { doc_string: doc } : {}),
    type: {
      tensor_type: {
        elem_type: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/** A module tensor's values on the host (the exporter downloads them all before building). */
export type Weights = (t: Tensor) => Float32Array;
