// What the entry points share about the builds: whether the engine
// runs the relaxed-SIMD builds, and starting one build's glue from the
// package's files, from `wasm.paths`, or from a compiled `wasm.module`.

import { fetchWasm, hasWebgpuImports } from './api.js';
import { inbox, startPool } from './threads.js';

// The smallest module whose one function, `f`, returns lane 0 of
// i32x4.relaxed_dot_i8x16_i7x16_add_s((-1,-2,-3,-4,0…), (1,2,3,4,0…), (10,0,0,0)):
// -30 + 10 = -20 on every engine that implements it as specified (the
// operands are in the range where the relaxed forms agree). An engine
// without relaxed SIMD refuses to validate it, as it would refuse the
// relaxed builds.
const RELAXED_PROBE = (() => {
  const v128 = (bytes) => [0xfd, 0x0c, ...bytes, ...new Array(16 - bytes.length).fill(0)];
  const body = [0, ...v128([0xff, 0xfe, 0xfd, 0xfc]), ...v128([1, 2, 3, 4]), ...v128([10]), 0xfd, 0x93, 0x02, 0xfd, 0x1b, 0, 0x0b];
  const types = [1, 5, 1, 0x60, 0, 1, 0x7f];
  const exports = [7, 5, 1, 1, 0x66, 0, 0];
  return Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, 3, 2, 1, 0, ...exports, 10, body.length + 2, 1, body.length, ...body);
})();

/**
 * Whether this engine runs relaxed-SIMD code, and runs it right. Validating
 * is not enough: Node 20's V8 (relaxed SIMD behind
 * `--experimental-wasm-relaxed-simd`) computes the int8 dot product that
 * the int8 kernels are built on as twice the products' sum without the
 * accumulator, and every int8 convolution comes out wrong. Such an engine
 * gets the simd128 build.
 */
function relaxedSimdRunsRight() {
  if (!WebAssembly.validate(RELAXED_PROBE)) return false;
  try {
    return new WebAssembly.Instance(new WebAssembly.Module(RELAXED_PROBE)).exports.f() === -20;
  } catch {
    return false;
  }
}

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

/**
 * The threaded CPU build (shared memory): its glue and its two wasm files,
 * as above.
 */
export const THREADS_BUILD = {
  glue: () => import('../dist/threads/edgeserve.js'),
  simd128: [new URL('../dist/threads/edgeserve_bg.wasm', import.meta.url), 'threads/edgeserve_bg.wasm'],
  relaxed: [new URL('../dist/threads/edgeserve_relaxed_bg.wasm', import.meta.url), 'threads/edgeserve_relaxed_bg.wasm'],
};

/**
 * Why this browser context cannot run the threaded build, or null when it
 * can: shared memory needs a cross-origin isolated page (COOP
 * `same-origin` and COEP `require-corp`), and a thread waiting for the pool
 * blocks, which only a worker may do (a page's main thread may not).
 */
export function threadsUnavailable() {
  if (typeof SharedArrayBuffer === 'undefined' || globalThis.crossOriginIsolated !== true) {
    return 'the page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  }
  if (typeof DedicatedWorkerGlobalScope === 'undefined' || !(globalThis instanceof DedicatedWorkerGlobalScope)) {
    return "a page's main thread may not wait for other threads: load edgeserve in a dedicated Worker for threads";
  }
  return null;
}

/** Whether a compiled module is a threaded build (it imports its memory, shared). */
export function isThreadedModule(module) {
  return WebAssembly.Module.imports(module).some((i) => i.kind === 'memory');
}

/** A browser pool thread: a module Worker running thread-web.js. */
function spawnWebThread() {
  const worker = new Worker(new URL('./thread-web.js', import.meta.url), { type: 'module', name: 'edgeserve-thread' });
  const next = inbox((deliver) => {
    worker.onmessage = ({ data }) => deliver(data);
    worker.onerror = (e) => deliver({ error: e.message || 'the worker script failed to load' });
  });
  return { post: (m) => worker.postMessage(m), next, stop: () => worker.terminate() };
}

/** What a build is called in errors while it starts: `threaded relaxed-simd`, `simd128`, … */
export function buildLabel(threaded, relaxed) {
  return `${threaded ? 'threaded ' : ''}${relaxed ? 'relaxed-simd' : 'simd128'}`;
}

/** Whether this engine validates relaxed-SIMD code and computes it as specified. */
export const relaxedSimd = relaxedSimdRunsRight();

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
export async function startBuild(builds, kind, { relaxed, paths, module, threads, onProgress, onBuild }) {
  if (module) {
    const webgpu = hasWebgpuImports(module);
    const threaded = !webgpu && isThreadedModule(module);
    const glue = await builds[webgpu ? 'full' : threaded ? 'threads' : 'cpu'].glue();
    await glue.default({ module_or_path: module });
    if (threaded) return { glue, webgpu, threads: await pool(glue, threads) };
    return { glue, webgpu, threads: 1 };
  }
  const build = builds[kind];
  const useRelaxed = relaxed && Boolean(build.relaxed);
  onBuild?.(buildLabel(kind === 'threads', useRelaxed));
  const [beside, file] = useRelaxed ? build.relaxed : build.simd128;
  // A directory, with or without its trailing slash.
  const url = paths ? new URL(file, new URL(String(paths).replace(/\/?$/, '/'), globalThis.location?.href)) : beside;
  const [glue, { response, counted }] = await Promise.all([build.glue(), fetchWasm(url, onProgress)]);
  await Promise.all([glue.default({ module_or_path: response }), counted]);
  if (kind === 'threads') return { glue, webgpu: false, threads: await pool(glue, threads) };
  return { glue, webgpu: kind === 'full', threads: 1 };
}

/** The threaded glue's pool, on Web Workers; how many threads run. */
async function pool(glue, threads) {
  await startPool(glue, threads, spawnWebThread);
  return threads;
}
