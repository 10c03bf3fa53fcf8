// Jest's node environment, with Node's own typed-array and ArrayBuffer classes. Jest gives each test
// file a sandbox with its own copies of these; native addons (onnxruntime-node) return arrays of
// Node's realm, which onnxruntime's `instanceof Float32Array` checks in the sandbox then refuse.
import { TestEnvironment } from 'jest-environment-node';

const SHARED = ['ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array'];

export default class NodeRealmEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}
