// What the entry points share about the builds: whether the engine
// runs the relaxed-SIMD builds, and starting one build's glue from the
// package's files, from `wasm.paths`, or from a compiled `wasm.module`.

import { fetchWasm, hasWebgpuImports } from './api.js';

// The smallest module using relaxed SIMD: one function returning
// f32x4.relaxed_madd of three zero vectors. An engine without relaxed SIMD
// refuses to validate it, as it would refuse the whole relaxed build.
const RELAXED_PROBE = (() => {
  const zeros = () => [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0, ...zeros(), ...zeros(), ...zeros(), 0xfd, 0x85, 0x02, 0x0b];
  const types = [1, 5, 1, 0x60, 0, 1, 0x7b];
  return Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, 3, 2, 1, 0, 10, body.length + 2, 1, body.length, ...body);
})();

/**
 * The CPU build (no WebGPU): its glue and its two wasm files, each as [the
 * URL beside this code, the path under dist/ for `wasm.paths`]. Bundlers
 * see these `new URL(…, import.meta.url)` and ship the files.
 */
export const CPU_BUILD = {
  glue: () => import('../dist/edge/edgeserve.js'),
  simd128: [new URL('../dist/edge/edgeserve_bg.wasm', import.meta.url), 'edge/edgeserve_bg.wasm'],
  relaxed: [new URL('../dist/edge/edgeserve_relaxed_bg.wasm', import.meta.url), 'edge/edgeserve_relaxed_bg.wasm'],
};

/** Whether this engine validates relaxed-SIMD code. */
export const relaxedSimd = WebAssembly.validate(RELAXED_PROBE);

/** Whether `navigator.gpu` gives an adapter here (asked once; false where there is no WebGPU). */
export async function webgpuAdapter() {
  try {
    return Boolean(await globalThis.navigator?.gpu?.requestAdapter());
  } catch {
    return false;
  }
}

/**
 * Starts a build. `builds` maps `'full'` / `'cpu'` to `{ glue: () =>
 * import(…), simd128, relaxed }`, each wasm as `[URL beside the code, path
 * under dist/]`; `kind` is the one wanted. A `module` is used as it is (its
 * imports say whether it is the WebGPU build); `paths` replaces the
 * directory the files are fetched from.
 */
export async function startBuild(builds, kind, { relaxed, paths, module, onProgress }) {
  if (module) {
    const webgpu = hasWebgpuImports(module);
    const glue = await builds[webgpu ? 'full' : 'cpu'].glue();
    await glue.default({ module_or_path: module });
    return { glue, webgpu };
  }
  const build = builds[kind];
  const [beside, file] = relaxed ? build.relaxed : build.simd128;
  // A directory, with or without its trailing slash.
  const url = paths ? new URL(file, new URL(String(paths).replace(/\/?$/, '/'), globalThis.location?.href)) : beside;
  const [glue, response] = await Promise.all([build.glue(), fetchWasm(url, onProgress)]);
  await glue.default({ module_or_path: response });
  return { glue, webgpu: kind === 'full' };
}
