// Workers (workerd): the wasm arrives as a compiled WebAssembly.Module
// imported with the script; compiling from bytes or fetching it is not
// allowed there. The CPU build, without burn/wgpu (Workers have no WebGPU),
// so smaller, and simd128 only (one module in the upload).
import module from '../dist/edge/edgeserve_bg.wasm';
import * as glue from '../dist/edge/edgeserve.js';
import { makeApi, wasmLoader } from './api.js';

const loader = wasmLoader({
  relaxedSupported: false,
  threadsUnavailable: 'Workers (workerd) have no threads',
  start: async (options) => {
    glue.initSync({ module: options.module ?? module });
    return { glue, webgpu: false };
  },
});
// Instantiated with the script, so the first request does not pay for it; a
// failure is the first load's error.
loader.ready().catch(() => {});

export const { wasm } = loader;
export const { Classifier, TensorModel, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue });
