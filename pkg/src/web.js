// Browsers and bundlers, with WebGPU: two builds of the engine, one with the
// WebGPU backend (burn/wgpu) and one without, and the one without threaded
// where the page is cross-origin isolated and edgeserve runs in a Worker. The first load fetches the
// WebGPU one only where `navigator.gpu` gives an adapter (or `wasm.webgpu`
// says so), else the CPU one: a page on a machine without WebGPU never
// downloads it. Each comes with relaxed SIMD or simd128 only. Bundlers such
// as Vite see the `new URL(…, import.meta.url)` below and ship every file.
import { makeApi, wasmLoader } from './api.js';
import { CPU_BUILD, THREADS_BUILD, relaxedSimd, startBuild, threadsUnavailable, webgpuAdapter } from './builds.js';

const builds = {
  full: {
    glue: () => import('../dist/edgeserve.js'),
    simd128: [new URL('../dist/edgeserve_bg.wasm', import.meta.url), 'edgeserve_bg.wasm'],
    relaxed: [new URL('../dist/edgeserve_relaxed_bg.wasm', import.meta.url), 'edgeserve_relaxed_bg.wasm'],
  },
  cpu: CPU_BUILD,
  threads: THREADS_BUILD,
};

const loader = wasmLoader({
  relaxedSupported: relaxedSimd,
  webgpu: 'auto',
  threadsUnavailable: threadsUnavailable(),
  cores: globalThis.navigator?.hardwareConcurrency,
  start: async (options) => {
    const full = options.webgpu === 'auto' ? await webgpuAdapter() : options.webgpu;
    // The WebGPU build is single-threaded: its CPU backend is the fallback.
    return startBuild(builds, full ? 'full' : options.threads > 1 ? 'threads' : 'cpu', { ...options, threads: full ? 1 : options.threads });
  },
});

export const { wasm } = loader;
export const { Classifier, TensorModel, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue, cache: true });
