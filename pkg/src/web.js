// Browsers and bundlers: the wasm is fetched next to this file on first use
// (bundlers such as Vite see the `new URL(..., import.meta.url)` in the glue
// and ship the file).
import init, { RawClassifier, RawEndpoint, plan } from '../dist/edgeserve.js';
import { makeApi } from './api.js';

let started;
const ready = () => (started ??= init());

export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready, RawClassifier, RawEndpoint, plan });
