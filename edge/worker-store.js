// The edge Worker with no model inside: LOCAL_MODELS are read from
// MODEL_STORE (R2 on Cloudflare, see wrangler.jsonc; a disk directory under
// plain workerd, see store.capnp), checked against their manifests' SHA-256,
// once per isolate. The upload is the Worker and the edge wasm alone.
// Everything else is in endpoint.js.

import { edgeWorker } from './endpoint.js';

export default edgeWorker();
