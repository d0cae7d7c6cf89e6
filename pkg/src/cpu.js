// Browsers and bundlers, CPU only (`edgeserve/cpu`): the engine without the
// WebGPU backend, so a page that only wants the CPU never downloads the
// WebGPU build (nor ships it in a bundle). Relaxed SIMD where the engine
// validates it, else simd128 only; threaded where the page is cross-origin
// isolated and edgeserve runs in a Worker.
import { hasWebgpuImports, makeApi, wasmLoader } from './api.js';
import { CPU_BUILD, THREADS_BUILD, relaxedSimd, startBuild, threadsUnavailable } from './builds.js';

const loader = wasmLoader({
  relaxedSupported: relaxedSimd,
  threadsUnavailable: threadsUnavailable(),
  cores: globalThis.navigator?.hardwareConcurrency,
  start: async (options) => {
    if (options.module && hasWebgpuImports(options.module)) throw new Error('wasm.module is the WebGPU build; edgeserve/cpu runs the CPU build (dist/edge/)');
    return startBuild({ cpu: CPU_BUILD, threads: THREADS_BUILD }, options.threads > 1 ? 'threads' : 'cpu', options);
  },
});

export const { wasm } = loader;
export const { Classifier, TensorModel, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue, cache: true });
