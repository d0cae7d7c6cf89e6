// Node: the wasm is read from the package directory and compiled on first
// use. The edge build (CPU only): Node has no WebGPU.
import { readFile } from 'node:fs/promises';
import { initSync, RawClassifier, RawEndpoint, plan } from '../dist/edge/edgeserve.js';
import { makeApi } from './api.js';

let started;
const ready = () =>
  (started ??= readFile(new URL('../dist/edge/edgeserve_bg.wasm', import.meta.url))
    .then((bytes) => WebAssembly.compile(bytes))
    .then((module) => {
      initSync({ module });
    }));

export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready, RawClassifier, RawEndpoint, plan });
