// Workers (workerd): the wasm arrives as a compiled WebAssembly.Module
// imported with the script; compiling from bytes or fetching it is not
// allowed there. The edge build: CPU only, without burn/wgpu (Workers have
// no WebGPU), so smaller.
import module from '../dist/edge/edgeserve_bg.wasm';
import { initSync, RawClassifier, RawEndpoint, plan } from '../dist/edge/edgeserve.js';
import { makeApi } from './api.js';

initSync({ module });

export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: async () => {}, RawClassifier, RawEndpoint, plan });
