// Node: the CPU build (Node has no WebGPU), read from the package directory
// (or `wasm.paths`, a directory as a file: URL or path) and compiled on first
// use, or a compiled `wasm.module`. Relaxed SIMD where this Node validates
// it (Node 20 does not without a V8 flag).
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import * as glue from '../dist/edge/edgeserve.js';
import { hasWebgpuImports, makeApi, wasmLoader } from './api.js';
import { relaxedSimd } from './builds.js';

const loader = wasmLoader({
  relaxedSupported: relaxedSimd,
  start: async ({ relaxed, paths, module }) => {
    if (!module) {
      const file = relaxed ? 'edge/edgeserve_relaxed_bg.wasm' : 'edge/edgeserve_bg.wasm';
      // A directory, as a URL or a path, with or without its trailing slash.
      const dir = paths === null ? new URL('../dist/', import.meta.url) : paths instanceof URL || /^[a-z]+:/.test(paths) ? new URL(String(paths).replace(/\/?$/, '/')) : pathToFileURL(`${paths}/`);
      module = await WebAssembly.compile(await readFile(new URL(file, dir)));
    } else if (hasWebgpuImports(module)) {
      throw new Error("wasm.module is the WebGPU build; Node runs the CPU build (dist/edge/)");
    }
    glue.initSync({ module });
    return { glue, webgpu: false };
  },
});

export const { wasm } = loader;
export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, glue: loader.glue });
