// `edgeserve/worker`: a Worker that *is* a TF Serving REST endpoint, as a
// library (`export default edgeWorker({ … })`; the repository's edge/ is the
// example that uses it, and types/edge-worker.d.ts types it).
// Models named in LOCAL_MODELS run here, on the package's CPU-only edge
// build, through the same request handler as `edgeserve serve`; models in
// PROXY_MODELS go to the origin TF Serving with the origin's credentials,
// which never reach the client. Models in MODELS go where edgeserve's
// routing (`Classifier.plan`, the same decision `Classifier.load` makes)
// sends them by their manifest: here when they fit MAX_LOCAL_MODEL_BYTES,
// else to the origin; their answers say which and why (`x-edgeserve-route`).
// Everything else is refused: no open proxy.
//
// edge/ has two Workers built on it: worker.js bundles Lite0 with the
// Worker (one upload, no store; 17 MB gzipped more, over Cloudflare's
// 10 MB), worker-store.js bundles no model and reads them from a store.
//
// Bindings (wrangler.jsonc `vars`/secrets, or config.capnp):
//   LOCAL_MODELS          comma-separated names of the models served here:
//                         bundled ones (image classifiers, or tensor models
//                         bundled with `tensors: true`), or else read from
//                         the model store
//                         (default, when neither it nor MODELS is set: the
//                         bundled models)
//   MODEL_STORE           the model store: an R2 bucket or a service binding
//                         (workerd's disk service, or a Worker in front of
//                         any storage), with the keys `{name}/manifest.json`
//                         and `{name}/{file}` for the files it names
//   PROXY_MODELS          comma-separated names forwarded to the origin
//   MODELS                comma-separated names routed by edgeserve: bundled
//                         or stored like LOCAL_MODELS, run here or forwarded
//   MAX_LOCAL_MODEL_BYTES models in MODELS larger than this (the manifest's
//                         model.bytes) go to the origin (default: the
//                         package's maxLocalModelBytes, 20 MB)
//   ORIGIN                a service binding to the origin TF Serving, or
//   ORIGIN_URL            its base URL (http(s)://host[:port])
//   ORIGIN_AUTHORIZATION  secret: the Authorization header sent to the origin
//   ALLOWED_ORIGINS       comma-separated browser origins allowed (CORS)
//   API_KEY               secret: when set, clients must send it as X-API-Key
//   PUBLIC_ENDPOINT       "true" to serve without an API_KEY; without either
//                         the Worker refuses every request (misconfigured),
//                         so a forgotten secret never opens it to anyone
//   MAX_BODY_BYTES        larger request bodies get 413 (default 16 MB)
//
// Stored models are checked against their manifest's SHA-256 and size by
// the package before they load, once per isolate.

import { Classifier, Endpoint } from './workerd.js';

const DEFAULT_MAX_BODY_BYTES = 16_000_000;
// What a client may send on to the origin; nothing else (cookies, its own
// Authorization, the API key) is forwarded.
const FORWARDED_REQUEST_HEADERS = ['content-type', 'content-encoding', 'accept'];
const FORWARDED_RESPONSE_HEADERS = ['content-type'];

const list = (v) => new Set(String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean));

// Model names and the file names manifests give become store keys: plain
// names only, nothing that could climb out of `{name}/`.
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** The Worker's configuration, read once per isolate; a bad one is an error on every request. */
function configure(env, bundled) {
  const proxied = list(env.PROXY_MODELS);
  const routed = list(env.MODELS);
  // With neither list set, the models bundled with the Worker are served
  // here: a Worker that bundles one needs no configuration to serve it.
  const local = env.LOCAL_MODELS === undefined && env.MODELS === undefined ? new Set(Object.keys(bundled).filter((n) => !proxied.has(n))) : list(env.LOCAL_MODELS);
  const store = storeOf(env);
  for (const [binding, names] of [['LOCAL_MODELS', local], ['MODELS', routed]]) {
    for (const name of names) {
      if (!bundled[name] && !store) {
        const have = Object.keys(bundled).join(', ') || 'none';
        throw new Error(`${binding} names ${name}, which is not bundled (bundled: ${have}) and there is no MODEL_STORE to read it from`);
      }
      if (!PLAIN_NAME.test(name)) throw new Error(`${binding}: ${JSON.stringify(name)} is not a plain model name`);
      if (proxied.has(name)) throw new Error(`${name} is in both ${binding} and PROXY_MODELS`);
    }
  }
  for (const name of routed) {
    if (local.has(name)) throw new Error(`${name} is in both LOCAL_MODELS and MODELS`);
    // Routing reads a manifest's model size, which a tensor model has not.
    if (bundled[name]?.tensors) throw new Error(`MODELS names ${name}, a tensor model: routing needs a manifest; put it in LOCAL_MODELS or PROXY_MODELS`);
  }
  const hasOrigin = Boolean(env.ORIGIN || env.ORIGIN_URL);
  if (proxied.size > 0 && !hasOrigin) throw new Error('PROXY_MODELS needs ORIGIN (a service binding) or ORIGIN_URL');
  const maxLocalModelBytes = env.MAX_LOCAL_MODEL_BYTES ? Number(env.MAX_LOCAL_MODEL_BYTES) : undefined;
  if (maxLocalModelBytes !== undefined && (!Number.isSafeInteger(maxLocalModelBytes) || maxLocalModelBytes < 0)) {
    throw new Error(`MAX_LOCAL_MODEL_BYTES: expected a byte count, got ${env.MAX_LOCAL_MODEL_BYTES}`);
  }
  const origin = env.ORIGIN_URL ? new URL(env.ORIGIN_URL) : undefined;
  if (origin && origin.protocol !== 'http:' && origin.protocol !== 'https:') throw new Error(`ORIGIN_URL: expected http(s), got ${env.ORIGIN_URL}`);
  if (!env.API_KEY && env.PUBLIC_ENDPOINT !== 'true') {
    throw new Error('API_KEY is not set: set it (clients then send X-API-Key), or set PUBLIC_ENDPOINT to "true" to serve anyone');
  }
  const maxBodyBytes = env.MAX_BODY_BYTES ? Number(env.MAX_BODY_BYTES) : DEFAULT_MAX_BODY_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) throw new Error(`MAX_BODY_BYTES: expected a positive integer, got ${env.MAX_BODY_BYTES}`);
  return {
    local,
    store,
    proxied,
    routed,
    hasOrigin,
    maxLocalModelBytes,
    origin,
    originFetcher: env.ORIGIN,
    originAuthorization: env.ORIGIN_AUTHORIZATION,
    allowedOrigins: list(env.ALLOWED_ORIGINS),
    apiKey: env.API_KEY || undefined,
    maxBodyBytes,
  };
}

/** How files are read from the configured model store, or undefined without one. */
function storeOf(env) {
  const store = env.MODEL_STORE;
  if (!store) return undefined;
  if (typeof store.fetch === 'function') {
    // A service binding: the host part of the URL is not used.
    return { name: 'MODEL_STORE', read: (key) => store.fetch(new Request(`http://model-store/${key}`)) };
  }
  if (typeof store.head === 'function') {
    return {
      name: 'MODEL_STORE (R2)',
      read: async (key) => {
        const object = await store.get(key);
        return object ? new Response(object.body, { headers: { 'content-length': String(object.size) } }) : undefined;
      },
    };
  }
  throw new Error('MODEL_STORE: expected an R2 bucket or a service binding');
}

/** A file of a stored model, as a Response; a missing or unreadable one is an error naming it. */
async function storedFile(store, key) {
  let response;
  try {
    response = await store.read(key);
  } catch (e) {
    throw new Error(`${store.name}: reading ${key} failed: ${e.message}`);
  }
  if (!response || !response.ok) {
    await response?.body?.cancel().catch(() => {});
    throw new Error(`${store.name} has no ${key}${response ? ` (status ${response.status})` : ''}`);
  }
  return response;
}

/** A stored model's manifest, parsed. */
async function storedManifest(store, name) {
  const manifestKey = `${name}/manifest.json`;
  try {
    return await (await storedFile(store, manifestKey)).json();
  } catch (e) {
    throw new Error(e.message.startsWith(store.name) ? e.message : `${manifestKey}: not JSON (${e.message})`);
  }
}

/** A stored model's files: its manifest first, then the files it names. */
async function storedModel(store, name, manifest) {
  const manifestKey = `${name}/manifest.json`;
  manifest ??= await storedManifest(store, name);
  const file = (field) => {
    const value = manifest?.[field]?.file;
    if (typeof value !== 'string' || !PLAIN_NAME.test(value)) {
      throw new Error(`${manifestKey}: ${field}.file must be a plain file name, got ${JSON.stringify(value)}`);
    }
    return `${name}/${value}`;
  };
  const model = await storedFile(store, file('model'));
  const labels = manifest?.labels ? await storedFile(store, file('labels')) : undefined;
  return { name, model, manifest, labels };
}

let state; // { config, routes, endpoint: Promise<Endpoint> } per isolate

/**
 * Which models run here and which go to the origin: LOCAL_MODELS and
 * PROXY_MODELS as configured, and each of MODELS where edgeserve's routing
 * puts it (its manifest's size against MAX_LOCAL_MODEL_BYTES; with no
 * origin, everything runs here and the reason says so).
 */
async function route(config, bundled) {
  const local = [...config.local];
  const proxied = new Set(config.proxied);
  const reasons = new Map();
  const manifests = new Map();
  for (const name of config.routed) {
    const manifest = bundled[name]?.manifest ?? (await storedManifest(config.store, name));
    const { runs, reason } = await Classifier.plan({
      manifest,
      maxLocalModelBytes: config.maxLocalModelBytes,
      // Only whether there is one matters here: requests go to the origin
      // as they came (proxy), not through the package's remote client.
      remote: config.hasOrigin ? { url: 'http://origin.invalid' } : undefined,
    });
    if (runs === 'remote') {
      proxied.add(name);
      reasons.set(name, `remote: ${reason}`);
    } else {
      local.push(name);
      manifests.set(name, manifest);
      reasons.set(name, `cpu: ${reason}`);
    }
  }
  return { local, proxied, reasons, manifests };
}

function setUp(env, bundled) {
  if (!state) {
    const config = configure(env, bundled);
    const routes = route(config, bundled);
    const endpoint = routes.then(async ({ local, manifests }) => {
      const models = [];
      for (const name of local) {
        const model = bundled[name] ? { name, ...bundled[name] } : await storedModel(config.store, name, manifests.get(name));
        models.push(model);
      }
      return Endpoint.create({ models, maxBodyBytes: config.maxBodyBytes });
    });
    state = { config, routes, endpoint };
    // A failed load is not kept: the next request tries again.
    endpoint.catch(() => (state = undefined));
  }
  return state;
}

/** TF Serving's error body. */
const refuse = (status, message, headers = {}) => Response.json({ error: message }, { status, headers });

function corsHeaders(config, origin) {
  if (!origin || !config.allowedOrigins.has(origin)) return {};
  return { 'access-control-allow-origin': origin, vary: 'Origin' };
}

function withHeaders(response, headers) {
  const out = new Response(response.body, response);
  for (const [k, v] of Object.entries(headers)) out.headers.set(k, v);
  return out;
}

/** Constant-time enough for a key compare: no early exit on the first difference. */
function sameKey(a, b) {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** The body, read as it streams, or undefined once it passes `max` bytes (the rest is not read). */
async function bodyWithin(body, max) {
  const reader = body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

async function proxy(request, config, url) {
  const length = Number(request.headers.get('content-length'));
  if (Number.isFinite(length) && length > config.maxBodyBytes) {
    // Said explicitly, so that workerd answers at once instead of waiting
    // for a body nobody reads.
    await request.body?.cancel().catch(() => {});
    return refuse(413, `the request body is over the ${config.maxBodyBytes} bytes allowed`);
  }
  const headers = new Headers();
  for (const name of FORWARDED_REQUEST_HEADERS) if (request.headers.has(name)) headers.set(name, request.headers.get(name));
  if (config.originAuthorization) headers.set('authorization', config.originAuthorization);
  // A chunked body has no length to check first: it is counted as it
  // arrives and refused once past the limit, never buffered whole.
  const reads = request.method !== 'GET' && request.method !== 'HEAD' && request.body;
  const body = reads ? await bodyWithin(request.body, config.maxBodyBytes) : undefined;
  if (reads && !body) return refuse(413, `the request body is over the ${config.maxBodyBytes} bytes allowed`);
  const target = config.origin ? new URL(url.pathname + url.search, config.origin) : new URL(url.pathname + url.search, 'http://origin');
  let answer;
  try {
    // A redirect is not followed: it would carry the origin's credential
    // to wherever the origin (or whoever answers for it) points.
    answer = await (config.originFetcher ?? globalThis).fetch(new Request(target, { method: request.method, headers, body, redirect: 'manual' }));
  } catch (e) {
    // The reason stays in the Worker's log: it can name internal hosts.
    console.error(`edgeserve: the origin did not answer: ${e.message}`);
    return refuse(502, 'the origin TF Serving did not answer');
  }
  if (answer.status >= 300 && answer.status < 400) {
    await answer.body?.cancel().catch(() => {});
    return refuse(502, `the origin TF Serving answered with a redirect (${answer.status}), which is not followed`);
  }
  // Only the body and its type come back: nothing the origin sets (cookies,
  // auth challenges, its own CORS) reaches the client.
  const out = new Headers();
  for (const name of FORWARDED_RESPONSE_HEADERS) if (answer.headers.has(name)) out.set(name, answer.headers.get(name));
  return new Response(answer.body, { status: answer.status, headers: out });
}

async function handle(request, env, bundled) {
  let config;
  let routing;
  let endpoint;
  try {
    ({ config, routes: routing, endpoint } = setUp(env, bundled));
  } catch (e) {
    return refuse(500, `the Worker is misconfigured: ${e.message}`);
  }
  const origin = request.headers.get('origin');
  if (origin && !config.allowedOrigins.has(origin)) return refuse(403, `origin ${origin} is not allowed`);
  const cors = corsHeaders(config, origin);
  if (request.method === 'OPTIONS') {
    return new Response(null, {
      status: 204,
      headers: {
        ...cors,
        'access-control-allow-methods': 'GET, POST',
        'access-control-allow-headers': 'Content-Type, Content-Encoding, X-API-Key',
        'access-control-max-age': '600',
      },
    });
  }
  if (config.apiKey && !sameKey(request.headers.get('x-api-key'), config.apiKey)) {
    return refuse(401, request.headers.has('x-api-key') ? 'the API key is not valid' : 'an API key is required (X-API-Key)', cors);
  }
  const url = new URL(request.url);
  const model = Endpoint.modelOf(request.method, url.pathname + url.search);
  let routes;
  try {
    routes = await routing;
  } catch (e) {
    return refuse(503, `the models could not be routed: ${e.message}`, cors);
  }
  const said = model === undefined ? undefined : routes.reasons.get(model);
  const headers = said ? { ...cors, 'x-edgeserve-route': said } : cors;
  let response;
  if (model !== undefined && routes.proxied.has(model)) {
    response = await proxy(request, config, url);
  } else {
    // Local models, unknown ones and paths that name none: the endpoint
    // answers exactly as TF Serving (404 for a model it does not serve).
    let local;
    try {
      local = await endpoint;
    } catch (e) {
      return refuse(503, `the local models could not be loaded: ${e.message}`, cors);
    }
    try {
      response = await local.handle(request);
    } catch (e) {
      // The endpoint answers every request, refusals included; what throws
      // is a trap, after which the package has replaced the wasm instance
      // and this endpoint is gone with the old one: the next request loads
      // the models into the new one instead of reusing this.
      if (state?.endpoint === endpoint) state = undefined;
      console.error(`edgeserve: the local endpoint failed: ${e.message}`);
      return refuse(500, `the request stopped the model runtime, which was restarted: ${e.message}`, cors);
    }
  }
  return withHeaders(response, headers);
}

/**
 * The Worker, with `bundled` the models that ship inside it:
 * `{ [name]: { model, manifest, labels } }` as module imports (wrangler's
 * `Data` rule gives an ArrayBuffer, a JSON import the object, a `Text`
 * rule a string, which is taken as the labels' text, not as a URL), or
 * `{ [name]: { model, tensors: true } }` for a model served as tensors on
 * its graph's signature (predict only, no manifest).
 */
export function edgeWorker(bundled = {}) {
  if (bundled === null || typeof bundled !== 'object') throw new TypeError(`edgeWorker: expected { [name]: { model, manifest, labels } }, got ${bundled === null ? 'null' : typeof bundled}`);
  const models = {};
  for (const [name, m] of Object.entries(bundled)) {
    if (m === null || typeof m !== 'object' || m.model === undefined) throw new TypeError(`edgeWorker: model ${name}: expected { model, manifest, labels? } or { model, tensors: true }`);
    if (m.tensors !== undefined && typeof m.tensors !== 'boolean') throw new TypeError(`edgeWorker: model ${name}: tensors must be a boolean`);
    if (m.tensors) {
      if (m.manifest !== undefined || m.labels !== undefined) throw new TypeError(`edgeWorker: model ${name}: a tensor model (tensors: true) takes no manifest or labels; its signature is the graph's`);
      models[name] = { model: m.model, tensors: true };
      continue;
    }
    const asBytes = (v) => (typeof v === 'string' ? new TextEncoder().encode(v) : v);
    models[name] = { model: m.model, manifest: typeof m.manifest === 'string' ? JSON.parse(m.manifest) : m.manifest, labels: asBytes(m.labels) };
  }
  return { fetch: (request, env) => handle(request, env, models) };
}
