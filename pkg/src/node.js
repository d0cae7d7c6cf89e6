// Node: the CPU build (Node has no WebGPU), read from the package directory
// (or `wasm.paths`, a directory as a file: URL or path) and compiled on first
// use, or a compiled `wasm.module`. Threaded (worker_threads) unless
// `wasm.threads` is 1; relaxed SIMD where this Node runs it right (Node 20
// does not without a V8 flag).
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as glue from '../dist/edge/edgeserve.js';
import { hasWebgpuImports, makeApi, wasmLoader } from './api.js';
import { CPU_BUILD, THREADS_BUILD, buildLabel, isThreadedModule, relaxedSimd } from './builds.js';
import { inbox, startPool } from './threads.js';

/**
 * A pool thread: a worker_threads worker running thread-node.js. Once it
 * runs (`started`), it no longer keeps the process alive: the process ends
 * when the caller's work does, as without threads.
 */
function spawnThread() {
  // The process's options, but `--input-type` (a script given with `-e`):
  // inherited by a worker started from a file, it stops the worker.
  const execArgv = process.execArgv.filter((a) => !/^--input-type(=|$)/.test(a));
  const worker = new Worker(new URL('./thread-node.js', import.meta.url), { name: 'edgeserve-thread', execArgv });
  const next = inbox((deliver) => {
    worker.on('message', deliver);
    worker.on('error', (e) => deliver({ error: e.message }));
  });
  return { post: (m) => worker.postMessage(m), next, stop: () => worker.terminate(), started: () => worker.unref() };
}

const loader = wasmLoader({
  relaxedSupported: relaxedSimd,
  threadsUnavailable: null,
  cores: availableParallelism(),
  start: async ({ relaxed, paths, module, threads, onBuild }) => {
    if (module && hasWebgpuImports(module)) throw new Error("wasm.module is the WebGPU build; Node runs the CPU build (dist/edge/)");
    const threaded = module ? isThreadedModule(module) : threads > 1;
    if (!module) {
      onBuild(buildLabel(threaded, relaxed));
      // The file's path under dist/, as the browser entries name it.
      const [, file] = (threaded ? THREADS_BUILD : CPU_BUILD)[relaxed ? 'relaxed' : 'simd128'];
      // A directory, as a URL or a path, with or without its trailing slash.
      const dir = paths === null ? new URL('../dist/', import.meta.url) : paths instanceof URL || /^[a-z]+:/.test(paths) ? new URL(String(paths).replace(/\/?$/, '/')) : pathToFileURL(`${paths}/`);
      module = await WebAssembly.compile(await readFile(new URL(file, dir)));
    }
    if (!threaded) {
      glue.initSync({ module });
      return { glue, webgpu: false, threads: 1 };
    }
    const threadedGlue = await import('../dist/threads/edgeserve.js');
    threadedGlue.initSync({ module });
    await startPool(threadedGlue, threads, spawnThread);
    return { glue: threadedGlue, webgpu: false, threads };
  },
});

export const { wasm } = loader;
export const { Classifier, TensorModel, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue });
