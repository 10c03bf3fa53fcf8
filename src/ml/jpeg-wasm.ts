/**
 * Decoding of small plain JPEGs with mozjpeg compiled to WebAssembly (`@jsquash/jpeg`), instead of
 * sharp: on a 53x53 crop most of sharp's ~1 ms is libvips' per-call set-up, not pixels. sharp's
 * libvips decodes JPEGs with mozjpeg too (its decoder is libjpeg-turbo's: islow IDCT, fancy
 * upsampling by default), and the RGB it gives is the same byte for byte; tested on the fixtures
 * (test/ml/jpeg-wasm.test.ts) and checked on the whole data set (docs/performance.md).
 *
 * Only for what `plainJpegSize` accepts (three 8-bit components, no EXIF, no ICC). The decoder runs
 * synchronously on the calling thread; it is instantiated once per thread from the package's own
 * .wasm file (no fetch), lazily, and anew after a failed decode (libjpeg's errors end in exit(),
 * which leaves that instance's heap in an unknown state).
 *
 * Errors keep sharp's meaning: libjpeg reports a truncated file ("Premature end of JPEG file") and
 * corrupt entropy data only as warnings and still returns an image. Any message the decoder prints
 * therefore makes this return null, and the caller decodes with sharp (failOn: 'error'), which then
 * accepts or rejects the file as it always did.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { MozJPEGModule } from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';

interface Decoder { module: MozJPEGModule; messages: string[] }

// The WebAssembly global, typed here: the project's lib settings (ES2023, no DOM) do not declare it.
type WasmModule = object;
type WasmInstance = { exports: object };
const wasmApi = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => WasmModule; Instance: new (module: WasmModule, imports: object) => WasmInstance } }).WebAssembly;

let compiled: WasmModule | null = null;
let current: Decoder | null = null;
let loading: Promise<Decoder> | null = null;

function wasmModule(): WasmModule {
  if (!compiled) {
    const require = createRequire(import.meta.url);
    compiled = new wasmApi.Module(readFileSync(require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
  }
  return compiled;
}

async function load(): Promise<Decoder> {
  const wasm = wasmModule();
  const factory = (await import('@jsquash/jpeg/codec/dec/mozjpeg_dec.js')).default;
  const messages: string[] = [];
  const module = await factory({
    noInitialRun: true,
    // The package's own bytes, compiled above: the glue would otherwise fetch the .wasm by URL.
    instantiateWasm: (imports: object, done: (instance: WasmInstance) => void) => {
      const instance = new wasmApi.Instance(wasm, imports);
      done(instance);
      return instance.exports;
    },
    print: (m: string) => messages.push(m),
    printErr: (m: string) => messages.push(m),
  } as unknown as Parameters<typeof factory>[0]);
  return { module, messages };
}

/** The decoder of this thread (loaded on first use, once). */
async function decoder(): Promise<Decoder> {
  if (current) return current;
  loading ??= load().then((d) => { current = d; return d; }).finally(() => { loading = null; });
  return loading;
}

/**
 * Decode a plain JPEG to width x height x 3 uint8 RGB, as sharp's raw decode gives it; null when the
 * decoder failed or warned (truncated, corrupt), or the result is not width x height: the caller
 * then uses sharp.
 */
export async function decodePlainJpeg(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array | null> {
  const d = await decoder();
  d.messages.length = 0;
  let image: { data: Uint8ClampedArray; width: number; height: number } | null;
  try {
    image = d.module.decode(bytes, false);
  } catch {
    if (current === d) current = null; // a fresh instance for the next call
    return null;
  }
  if (!image || d.messages.length > 0 || image.width !== width || image.height !== height) return null;
  const rgba = image.data, n = width * height;
  if (rgba.length !== n * 4) return null;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n * 3; i += 3, j += 4) {
    rgb[i] = rgba[j];
    rgb[i + 1] = rgba[j + 1];
    rgb[i + 2] = rgba[j + 2];
  }
  return rgb;
}
