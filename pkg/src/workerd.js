// Workers (workerd): the wasm arrives as a compiled WebAssembly.Module
// imported with the script; compiling from bytes or fetching it is not
// allowed there.
import module from '../dist/edgeserve_bg.wasm';
import { initSync, RawClassifier, plan } from '../dist/edgeserve.js';
import { makeApi } from './api.js';

initSync({ module });

export const { Classifier, EdgeserveError } = makeApi({ ready: async () => {}, RawClassifier, plan });
