// Node: the wasm is read from the package directory and compiled on first
// use. The edge build (CPU only, simd128 only): Node has no WebGPU, and
// Node 20 validates no relaxed SIMD without a V8 flag.
import { readFile } from 'node:fs/promises';
import { initSync, RawClassifier, RawEndpoint, plan, __wbg_reset_state } from '../dist/edge/edgeserve.js';
import { makeApi, wasmLoader } from './api.js';

const loader = wasmLoader({
  supported: false,
  start: async () => {
    const bytes = await readFile(new URL('../dist/edge/edgeserve_bg.wasm', import.meta.url));
    initSync({ module: await WebAssembly.compile(bytes) });
  },
});

export const { wasm } = loader;
export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, reset: __wbg_reset_state, RawClassifier, RawEndpoint, plan });
