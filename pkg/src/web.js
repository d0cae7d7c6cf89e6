// Browsers and bundlers: the wasm is fetched next to this file on first use
// (bundlers such as Vite see the `new URL(..., import.meta.url)` below and
// ship both files).
import init, { RawClassifier, RawEndpoint, plan, __wbg_reset_state } from '../dist/edgeserve.js';
import { makeApi, wasmLoader } from './api.js';

// The smallest module using relaxed SIMD: one function returning
// f32x4.relaxed_madd of three zero vectors. An engine without relaxed SIMD
// refuses to validate it, as it would refuse the whole relaxed build.
const RELAXED_PROBE = (() => {
  const zeros = () => [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0, ...zeros(), ...zeros(), ...zeros(), 0xfd, 0x85, 0x02, 0x0b];
  const types = [1, 5, 1, 0x60, 0, 1, 0x7b];
  return Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, 3, 2, 1, 0, 10, body.length + 2, 1, body.length, ...body);
})();

// Two builds of the same code: one with simd128 only, one that may also use
// relaxed SIMD (fused multiply-adds in the convolution kernels); the glue
// is the same for both, so either module instantiates with it.
const loader = wasmLoader({
  supported: WebAssembly.validate(RELAXED_PROBE),
  start: (relaxed) =>
    init({
      module_or_path: relaxed ? new URL('../dist/edgeserve_relaxed_bg.wasm', import.meta.url) : new URL('../dist/edgeserve_bg.wasm', import.meta.url),
    }),
});

export const { wasm } = loader;
export const { Classifier, Endpoint, EdgeserveError } = makeApi({ ready: loader.ready, reset: __wbg_reset_state, RawClassifier, RawEndpoint, plan });
