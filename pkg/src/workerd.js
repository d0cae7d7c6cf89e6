// Workers (workerd): the wasm arrives as a compiled WebAssembly.Module
// imported with the script; compiling from bytes or fetching it is not
// allowed there. The edge build: CPU only, without burn/wgpu (Workers have
// no WebGPU), so smaller, and simd128 only (one module in the upload).
import module from '../dist/edge/edgeserve_bg.wasm';
import { initSync, RawClassifier, RawEndpoint, plan, __wbg_reset_state } from '../dist/edge/edgeserve.js';
import { makeApi, wasmLoader } from './api.js';

const loader = wasmLoader({ supported: false, start: async () => initSync({ module }) });
// Instantiated with the script, so the first request does not pay for it; a
// failure is the first load's error.
loader.ready().catch(() => {});

export const { wasm } = loader;
export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, reset: __wbg_reset_state, RawClassifier, RawEndpoint, plan });
