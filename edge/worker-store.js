// The edge Worker with no model inside: LOCAL_MODELS are read from
// MODEL_STORE (R2 on Cloudflare, see wrangler.jsonc; a disk directory under
// plain workerd, see store.capnp), checked against their manifests' SHA-256,
// once per isolate. The upload is the Worker and the CPU wasm alone. The
// Worker itself is the package's `edgeserve/worker`.

import { edgeWorker } from 'edgeserve/worker';

export default edgeWorker();
