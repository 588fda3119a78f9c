// The ONNX protobuf messages the exporter writes, declared through protobufjs's reflection JSON so
// protobufjs does the wire encoding. Names and field numbers are copied from the official schema,
// onnx/onnx.proto (https://github.com/onnx/onnx, Copyright (c) ONNX Project Contributors,
// Apache License 2.0); only the messages and fields protodino writes are declared, and field numbers
// never change between ONNX versions, so a subset stays valid.
import protobuf from 'protobufjs';

const f = (type: string, id: number, repeated = false) => (repeated ? { type, id, rule: 'repeated' } : { type, id });

const MESSAGES: Record<string, Message> = {
  AttributeProto: {
    fields: {
      name: f('string', 1),
      type: f('int32', 20),
      f: f('float', 2),
      i: f('int64', 3),
      s: f('bytes', 4),
      t: f('TensorProto', 5),
      floats: f('float', 7, true),
      ints: f('int64', 8, true),
    },
  },
  ValueInfoProto: { fields: { name: f('string', 1), type: f('TypeProto', 2), doc_string: f('string', 3) } },
  NodeProto: {
    fields: {
      input: f('string', 1, true),
      output: f('string', 2, true),
      name: f('string', 3),
      op_type: f('string', 4),
      attribute: f('AttributeProto', 5, true),
      domain: f('string', 7),
    },
  },
  ModelProto: {
    fields: {
      ir_version: f('int64', 1),
      producer_name: f('string', 2),
      producer_version: f('string', 3),
      doc_string: f('string', 6),
      graph: f('GraphProto', 7),
      opset_import: f('OperatorSetIdProto', 8, true),
      metadata_props: f('StringStringEntryProto', 14, true),
    },
  },
  StringStringEntryProto: { fields: { key: f('string', 1), value: f('string', 2) } },
  GraphProto: {
    fields: {
      node: f('NodeProto', 1, true),
      name: f('string', 2),
      initializer: f('TensorProto', 5, true),
      doc_string: f('string', 10),
      input: f('ValueInfoProto', 11, true),
      output: f('ValueInfoProto', 12, true),
    },
  },
  TensorProto: {
    fields: {
      dims: f('int64', 1, true),
      data_type: f('int32', 2),
      name: f('string', 8),
      raw_data: f('bytes', 9),
    },
  },
  TensorShapeProto: {
    fields: { dim: f('Dimension', 1, true) },
    nested: {
      Dimension: {
        oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
        fields: { dim_value: f('int64', 1), dim_param: f('string', 2) },
      },
    },
  },
  TypeProto: {
    oneofs: { value: { oneof: ['tensor_type'] } },
    fields: { tensor_type: f('Tensor', 1) },
    nested: { Tensor: { fields: { elem_type: f('int32', 1), shape: f('TensorShapeProto', 2) } } },
  },
  OperatorSetIdProto: { fields: { domain: f('string', 1), version: f('int64', 2) } },
};

interface Message {
  fields: Record<string, { type: string; id: number; rule?: string }>;
  oneofs?: Record<string, { oneof: string[] }>;
  nested?: Record<string, Message>;
  edition?: string;
}

// onnx.proto is proto2: a field set to its default (an int attribute of 0, an empty domain) is still
// written, and repeated numbers are unpacked, as protoc writes them.
const proto2 = (m: Message): Message => ({
  ...m,
  edition: 'proto2',
  ...(m.nested ? { nested: Object.fromEntries(Object.entries(m.nested).map(([k, v]) => [k, proto2(v)])) } : {}),
});

const SCHEMA = {
  nested: {
    onnx: { nested: Object.fromEntries(Object.entries(MESSAGES).map(([k, v]) => [k, proto2(v)])) },
  },
};

/** TensorProto.DataType values the exporter uses. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

/** AttributeProto.AttributeType values the exporter uses. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export interface TensorMsg {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

export interface AttributeMsg {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

export interface NodeMsg {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: AttributeMsg[];
}

/** A dimension is a fixed size or a named (dynamic) one. */
export type Dim = number | string;

export interface ValueInfoMsg {
  name: string;
  doc_string?: string;
  type: { tensor_type: { elem_type: number; shape: { dim: ({ dim_value: number } | { dim_param: string })[] } } };
}

export interface ModelMsg {
  ir_version: number;
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  opset_import: { domain: string; version: number }[];
  metadata_props: { key: string; value: string }[];
  graph: {
    name: string;
    node: NodeMsg[];
    initializer: TensorMsg[];
    input: ValueInfoMsg[];
    output: ValueInfoMsg[];
  };
}

const root = protobuf.Root.fromJSON(SCHEMA);
const Model = root.lookupType('onnx.ModelProto');

/** The serialised model (an .onnx file's bytes). */
export function encodeModel(model: ModelMsg): Uint8Array {
  const err = Model.verify(model);
  if (err) throw new Error(`ONNX model does not match the schema: ${err}`);
  return Model.encode(Model.fromObject(model)).finish();
}

/** Decodes an .onnx file's bytes back into the declared subset (for tests and inspection). */
export function decodeModel(bytes: Uint8Array): ModelMsg {
  return Model.toObject(Model.decode(bytes), { longs: Number, defaults: false }) as ModelMsg;
}
