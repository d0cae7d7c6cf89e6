// The edge Worker with EfficientNet-Lite0 bundled: one upload, nothing to
// set up, for plain workerd (config.capnp). The model adds 17 MB gzipped,
// over Cloudflare's 10 MB upload limit; there, worker-store.js reads models
// from R2 instead. The Worker itself is the package's `edgeserve/worker`.

import { edgeWorker } from 'edgeserve/worker';
import model from '../models/efficientnet-lite0/efficientnet-lite0.onnx';
import manifest from '../models/efficientnet-lite0/manifest.json';
import labels from '../models/efficientnet-lite0/imagenet_labels.txt';

export default edgeWorker({ 'efficientnet-lite0': { model, manifest, labels } });
