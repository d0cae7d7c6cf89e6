// Browsers and bundlers, CPU only (`edgeserve/cpu`): the engine without the
// WebGPU backend, so a page that only wants the CPU never downloads the
// WebGPU build (nor ships it in a bundle). Relaxed SIMD where the engine
// validates it, else simd128 only.
import { hasWebgpuImports, makeApi, wasmLoader } from './api.js';
import { CPU_BUILD, relaxedSimd, startBuild } from './builds.js';

const loader = wasmLoader({
  relaxedSupported: relaxedSimd,
  start: async (options) => {
    if (options.module && hasWebgpuImports(options.module)) throw new Error('wasm.module is the WebGPU build; edgeserve/cpu runs the CPU build (dist/edge/)');
    return startBuild({ cpu: CPU_BUILD }, 'cpu', options);
  },
});

export const { wasm } = loader;
export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue, cache: true });
