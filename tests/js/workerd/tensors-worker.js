// The edge Worker (edgeserve/worker) with a tensor model bundled beside an
// image classifier: TF Serving's half_plus_two (ONNX) as `tensors: true`,
// served on its graph's signature, and Lite0 with its manifest.
import { edgeWorker } from 'edgeserve/worker';
import halfPlusTwo from './half_plus_two.onnx';
import model from './model.onnx';
import manifest from './manifest.json';
import labels from './labels.txt';

export default edgeWorker({
  half_plus_two: { model: halfPlusTwo, tensors: true },
  'efficientnet-lite0': { model, manifest, labels },
});
