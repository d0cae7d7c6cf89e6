// The edge Worker (edgeserve/worker, with Lite0 bundled) and one fault: a
// request with `x-test-trap: 1` reaches the package's real wasm with a
// pointer outside its memory, so the instance traps as it would on a bug.
// The glue is the file the package's workerd entry imports, so the patched
// class is the one the Worker's Endpoint uses. For tests only.
import { edgeWorker } from 'edgeserve/worker';
import { RawEndpoint } from '../../../pkg/dist/edge/edgeserve.js';
import model from './model.onnx';
import manifest from './manifest.json';
import labels from './labels.txt';

let trapNext = false;
const handle = RawEndpoint.prototype.handle;
RawEndpoint.prototype.handle = function (...args) {
  if (!trapNext) return handle.apply(this, args);
  trapNext = false;
  const ptr = this.__wbg_ptr;
  this.__wbg_ptr = 0xfffffff0;
  try {
    return handle.apply(this, args);
  } finally {
    this.__wbg_ptr = ptr;
  }
};

const worker = edgeWorker({ 'efficientnet-lite0': { model, manifest, labels } });

export default {
  fetch(request, env) {
    trapNext = request.headers.get('x-test-trap') === '1';
    return worker.fetch(request, env);
  },
};
