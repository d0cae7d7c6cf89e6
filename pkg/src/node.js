// Node: the wasm is read from the package directory and compiled on first use.
import { readFile } from 'node:fs/promises';
import { initSync, RawClassifier, plan } from '../dist/edgeserve.js';
import { makeApi } from './api.js';

let started;
const ready = () =>
  (started ??= readFile(new URL('../dist/edgeserve_bg.wasm', import.meta.url))
    .then((bytes) => WebAssembly.compile(bytes))
    .then((module) => {
      initSync({ module });
    }));

export const { Classifier, EdgeserveError } = makeApi({ ready, RawClassifier, plan });
