// The edge Worker with EfficientNet-Lite0 bundled: one upload, nothing to
// set up, for plain workerd (config.capnp). The model adds 17 MB gzipped,
// over Cloudflare's 10 MB upload limit; there, worker-store.js reads models
// from R2 instead. Everything else is in endpoint.js.

import { edgeWorker } from './endpoint.js';
import lite0Model from '../models/efficientnet-lite0/efficientnet-lite0.onnx';
import lite0Manifest from '../models/efficientnet-lite0/manifest.json';
import lite0Labels from '../models/efficientnet-lite0/imagenet_labels.txt';

// Text modules arrive as strings, which the package would read as URLs.
const bytes = (v) => (typeof v === 'string' ? new TextEncoder().encode(v) : v);

export default edgeWorker({
  'efficientnet-lite0': { model: lite0Model, manifest: lite0Manifest, labels: bytes(lite0Labels) },
});
