// Browsers and bundlers, with WebGPU: two builds of the engine, one with the
// WebGPU backend (burn/wgpu) and one without. The first load fetches the
// WebGPU one only where `navigator.gpu` gives an adapter (or `wasm.webgpu`
// says so), else the CPU one: a page on a machine without WebGPU never
// downloads it. Each comes with relaxed SIMD or simd128 only. Bundlers such
// as Vite see the `new URL(…, import.meta.url)` below and ship every file.
import { makeApi, wasmLoader } from './api.js';
import { CPU_BUILD, relaxedSimd, startBuild, webgpuAdapter } from './builds.js';

const builds = {
  full: {
    glue: () => import('../dist/edgeserve.js'),
    simd128: [new URL('../dist/edgeserve_bg.wasm', import.meta.url), 'edgeserve_bg.wasm'],
    relaxed: [new URL('../dist/edgeserve_relaxed_bg.wasm', import.meta.url), 'edgeserve_relaxed_bg.wasm'],
  },
  cpu: CPU_BUILD,
};

const loader = wasmLoader({
  relaxedSupported: relaxedSimd,
  webgpu: 'auto',
  start: async (options) => {
    const full = options.webgpu === 'auto' ? await webgpuAdapter() : options.webgpu;
    return startBuild(builds, full ? 'full' : 'cpu', options);
  },
});

export const { wasm } = loader;
export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue, cache: true });
