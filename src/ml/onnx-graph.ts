/**
 * Writing ONNX graphs (opset 13) from TypeScript through onnx-proto: the pieces shared by the
 * serving export (onnx-export.ts) and the training graphs (onnx-training.ts). No TF.js-to-ONNX
 * converter exists in npm.
 */
import onnxProto, { type onnx as Onnx } from 'onnx-proto';

// onnx-proto is CommonJS: Node's ESM loader gives only its default export.
export const onnx = onnxProto.onnx;

export const ONNX_OPSET = 13;

/**
 * onnxruntime's CPU kernels for the blocked NCHWc layout (MLAS): ReorderInput, ReorderOutput, Conv,
 * MaxPool. Its 'all' optimisation level rewrites Conv nodes into them, but only for constant
 * weights; the training graphs, whose weights are inputs, call them directly.
 */
export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

export type Pads = [number, number, number, number];

/** TF.js 'same' padding along one axis: the odd pixel goes after (as ONNX's SAME_UPPER). */
function samePad(size: number, kernel: number, stride: number, dilation: number): { out: number; before: number; after: number } {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}

/** ONNX pads [top, left, bottom, right] and the output size of a TF.js conv or pool on an h x w input. */
export function padsFor(h: number, w: number, k: [number, number], s: [number, number], d: [number, number], mode: 'same' | 'valid'): { pads: Pads; h: number; w: number } {
  if (mode === 'valid') {
    return { pads: [0, 0, 0, 0], h: Math.floor((h - (k[0] - 1) * d[0] - 1) / s[0]) + 1, w: Math.floor((w - (k[1] - 1) * d[1] - 1) / s[1]) + 1 };
  }
  const ph = samePad(h, k[0], s[0], d[0]), pw = samePad(w, k[1], s[1], d[1]);
  return { pads: [ph.before, pw.before, ph.after, pw.after], h: ph.out, w: pw.out };
}

type AttrValue = number | number[] | string | Onnx.ITensorProto;

function attribute(name: string, value: AttrValue): Onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: value });
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  if (typeof value === 'number') {
    return Number.isInteger(value) ? onnx.AttributeProto.create({ name, type: T.INT, i: value }) : onnx.AttributeProto.create({ name, type: T.FLOAT, f: value });
  }
  return onnx.AttributeProto.create({ name, type: T.TENSOR, t: value });
}

export function floatTensor(name: string, dims: number[], data: Float32Array): Onnx.ITensorProto {
  const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes });
}

function int64Tensor(name: string, values: number[]): Onnx.ITensorProto {
  return onnx.TensorProto.create({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, int64Data: values });
}

export function valueInfo(name: string, dims: Array<number | string>): Onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({ dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) }),
      }),
    }),
  });
}

/**
 * Builds one graph node by node: `op()` adds a node and returns its output's name, so a graph reads
 * like the formulas it computes. Names are made unique with a counter.
 */
export class GraphBuilder {
  private nodes: Onnx.INodeProto[] = [];
  private initializers: Onnx.ITensorProto[] = [];
  private inputs: Onnx.IValueInfoProto[] = [];
  private outputs: Onnx.IValueInfoProto[] = [];
  private count = 0;
  private constants = new Map<string, string>();
  /** Operator domains besides the default one (opset version 1 each). */
  private domains = new Set<string>();

  private fresh(hint: string): string {
    return `${hint}_${this.count++}`;
  }

  input(name: string, dims: Array<number | string>): string {
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  output(name: string, from: string, dims: Array<number | string>): void {
    this.op('Identity', [from], {}, name);
    this.outputs.push(valueInfo(name, dims));
  }

  initializer(hint: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(hint);
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  /** A float scalar constant (shared between uses). */
  scalar(value: number): string {
    const key = `f:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const');
      this.initializers.push(floatTensor(name, [], Float32Array.of(value)));
      this.constants.set(key, name);
    }
    return name;
  }

  /** An int64 vector constant (shapes, axes, indices). */
  ints(values: number[]): string {
    const key = `i:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('ints');
      this.initializers.push(int64Tensor(name, values));
      this.constants.set(key, name);
    }
    return name;
  }

  /** Adds a node; returns the name of its (first) output. */
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.opIn('', type, inputs, attrs, output);
  }

  /** Adds a node of an operator from `domain` (e.g. NCHWC_DOMAIN); returns its output's name. */
  opIn(domain: string, type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(type.toLowerCase());
    if (domain) this.domains.add(domain);
    this.nodes.push(onnx.NodeProto.create({
      name: this.fresh(`n_${type}`), opType: type, domain, input: inputs, output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    }));
    return out;
  }

  /** Adds a node with several outputs; returns their names. */
  opMulti(type: string, inputs: string[], outputs: number, attrs: Record<string, AttrValue> = {}): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(type.toLowerCase()));
    this.nodes.push(onnx.NodeProto.create({
      name: this.fresh(`n_${type}`), opType: type, input: inputs, output: names,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    }));
    return names;
  }

  encode(graphName: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'eyecase',
      opsetImport: [{ domain: '', version: ONNX_OPSET }, ...[...this.domains].map((domain) => ({ domain, version: 1 }))],
      graph: onnx.GraphProto.create({ name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
