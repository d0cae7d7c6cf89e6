// The package's public API, shared by the browser, Node and workerd entry
// points; each gives it the wasm exports and a way to initialise them.
// Rust checks every input that reaches the model; this layer fetches files
// (with progress and cancellation), turns browser images into pixels, and
// makes every failure an EdgeserveError.

import { autoThreads } from './threads.js';

const MAX_MANIFEST_BYTES = 1 << 20;
const MAX_LABELS_BYTES = 16 << 20;
// An Endpoint's request bodies: a 1024×1024 RGB float tensor as JSON is ~40 MB;
// a b64 photo is a few MB.
const DEFAULT_MAX_BODY_BYTES = 64 << 20;
// What one request may make an Endpoint spend, sized for a Worker's 128 MB
// isolate with Lite0 loaded (~55 MB): a decoded image of 4 MP costs ~28 MB
// (RGBA then RGB), a JSON value kept while parsing 32 to 64 bytes. (The
// native server's defaults, sized for a machine, are 10 to 40 times these.)
const ENDPOINT_LIMITS = Object.freeze({
  maxImagePixels: 4_000_000,
  maxImagesPerRequest: 16,
  maxRequestPixels: 16_000_000,
  // Lite0's activations take ~6 MB an image at their widest: 16 at once
  // were measured at 107 MB over the isolate's size under workerd.
  maxImagesPerRun: 4,
  maxInflatedBytes: 16 << 20,
  maxJsonValues: 1 << 19,
});

/** An error from edgeserve: `code` is stable, `status` is TF Serving's. */
export class EdgeserveError extends Error {
  constructor(code, message, { status = 'UNKNOWN', cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'EdgeserveError';
    this.code = code;
    this.status = status;
  }
}

const fail = (code, status, message, cause) => new EdgeserveError(code, message, { status, cause });
const invalid = (message) => fail('invalid_options', 'INVALID_ARGUMENT', message);

/** Any thrown value as an EdgeserveError (Rust's errors carry code and status). */
function asEdgeserveError(e, signal) {
  if (e instanceof EdgeserveError) return e;
  if (signal?.aborted || e?.name === 'AbortError') {
    return fail('aborted', 'CANCELLED', `the call was aborted: ${reason(signal?.reason ?? e)}`, signal?.reason ?? e);
  }
  if (e instanceof Error && typeof e.code === 'string' && typeof e.status === 'string') {
    return fail(e.code, e.status, e.message, e.cause);
  }
  if (e instanceof WebAssembly.RuntimeError) {
    return fail('internal', 'INTERNAL', `the wasm instance trapped (a bug, please report): ${e.message}`, e);
  }
  return fail('internal', 'INTERNAL', reason(e), e);
}

function reason(v) {
  if (v instanceof Error) return v.message;
  return v === undefined ? 'aborted' : String(v);
}

function describe(v) {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v !== 'object') return `a ${typeof v}`;
  return `a ${v.constructor?.name || 'object'}`;
}

function checkSignal(signal, where) {
  if (signal !== undefined && !(typeof AbortSignal !== 'undefined' && signal instanceof AbortSignal)) {
    throw invalid(`${where}.signal: expected an AbortSignal, got ${describe(signal)}`);
  }
  if (signal?.aborted) throw asEdgeserveError(undefined, signal);
}

/** A string or URL as an absolute URL (relative to the page where there is one). */
function toUrl(v, where) {
  try {
    return new URL(v, globalThis.location?.href);
  } catch (e) {
    throw invalid(`${where}: ${clip(String(v))} is not a URL${globalThis.location ? '' : ' (relative URLs need a page to resolve against; give an absolute URL)'}`);
  }
}

/** A value quoted in an error message, cut to a readable length. */
const clip = (text) => (text.length > 80 ? `${text.slice(0, 80)}… (${text.length} characters)` : text);

function bytesOf(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) {
    // A detached buffer cannot be viewed; it holds nothing, so it reads as empty.
    try {
      return new Uint8Array(v);
    } catch {
      return new Uint8Array(0);
    }
  }
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

/** The body of `response`, streamed, reporting progress, refusing more than `limit` bytes. */
async function readBody(response, { url, what, limit, onProgress, signal }) {
  if (!response.ok) {
    const status = response.status === 404 ? 'NOT_FOUND' : response.status === 401 || response.status === 403 ? 'PERMISSION_DENIED' : 'UNAVAILABLE';
    throw fail('fetch_failed', status, `${what} ${url ?? response.url}: HTTP ${response.status} ${response.statusText}`.trimEnd());
  }
  return readLimited(response, { url: url ?? response.url, what, limit, onProgress, signal });
}

/** The body of a Response or Request, streamed, refusing more than `limit` bytes. */
async function readLimited(message, { url, what, limit, onProgress, signal }) {
  // A compressed transfer's Content-Length is not the size of what we read.
  const length = message.headers.get('content-encoding') ? NaN : Number(message.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : undefined;
  if (total !== undefined && total > limit) {
    throw fail('fetch_failed', 'FAILED_PRECONDITION', `${what} ${url}: ${total} bytes, over the ${limit} expected`);
  }
  const chunks = [];
  let loaded = 0;
  const reader = message.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      loaded += value.byteLength;
      if (loaded > limit) {
        throw fail('fetch_failed', 'FAILED_PRECONDITION', `${what} ${url}: more than the ${limit} bytes expected`);
      }
      chunks.push(value);
      onProgress?.({ file: what, loaded, total });
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw asEdgeserveError(e, signal);
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * The bytes of a model, manifest or labels file given as bytes, a URL or a
 * Response; with the URL it came from, to resolve the files it names.
 * `onRequest`, where given, is called once a URL's request is out, for work
 * this thread can do while the answer comes (`manifestFile` and
 * `cachedFile` pass it on).
 */
async function load(source, { what, limit, onProgress, signal, where, onRequest }) {
  const bytes = bytesOf(source);
  if (bytes) return { bytes };
  if (typeof Response !== 'undefined' && source instanceof Response) {
    if (source.bodyUsed) throw invalid(`${where}: the Response body was already read`);
    return { bytes: await readBody(source, { what, limit, onProgress, signal }), url: source.url || undefined };
  }
  if (typeof source === 'string' || source instanceof URL) {
    const url = toUrl(source, where);
    let response;
    try {
      const request = fetch(url, { signal });
      // The request is out: work this thread does now runs while it waits.
      onRequest?.();
      response = await request;
    } catch (e) {
      if (signal?.aborted) throw asEdgeserveError(e, signal);
      throw fail('fetch_failed', 'UNAVAILABLE', `${what} ${url}: ${reason(e)}${e?.cause ? ` (${reason(e.cause)})` : ''}`, e);
    }
    return { bytes: await readBody(response, { url: String(url), what, limit, onProgress, signal }), url };
  }
  throw invalid(`${where}: expected a URL, a Response or bytes (ArrayBuffer, Uint8Array), got ${describe(source)}`);
}

// The Cache API store of models and labels, keyed by their SHA-256 (a
// synthetic URL: the Cache API keys by URL, and these are never fetched).
const CACHE_NAME = 'edgeserve-models-v1';
const CACHE_ORIGIN = 'https://edgeserve.invalid';

async function openCache() {
  try {
    return typeof caches === 'undefined' ? undefined : await caches.open(CACHE_NAME);
  } catch {
    // Storage off (a private window, a sandboxed frame): load without it.
    return undefined;
  }
}

/** SHA-256 of `bytes` by WebCrypto, or undefined where there is none (insecure contexts). */
async function sha256Of(bytes) {
  return globalThis.crypto?.subtle ? new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)) : undefined;
}

const hex = (digest) => {
  if (!digest) throw fail('invalid_manifest', 'FAILED_PRECONDITION', 'a manifest without sha256 needs WebCrypto to hash the model, which this page lacks (not a secure context); give model.bytes and model.sha256');
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
};

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The last path segment of a URL, when it is a plain file name a manifest may hold. */
function fileName(url) {
  const name = url?.pathname.split('/').pop();
  return name && /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name) ? name : undefined;
}

/**
 * A model or labels file: from the Cache API when `cache`, the file is to
 * be downloaded (not given as bytes) and a copy whose SHA-256 is `sha256`
 * is there (a copy that differs is dropped and fetched again), else
 * fetched, and kept there when it matches `sha256`. Resolves to `{ bytes,
 * cached, digest }` (the SHA-256 where it was computed, so that the load
 * does not hash the model twice).
 */
async function cachedFile(source, { what, limit, onProgress, signal, cache, sha256, where, onRequest }) {
  // Bytes given are used as they are: nothing is downloaded, so nothing is
  // kept, nor is a kept copy read in their place. The load waited for
  // that read, or for the write of a copy, the size of the model.
  const key = cache && sha256 && !bytesOf(source) ? `${CACHE_ORIGIN}/${what}/${sha256}` : undefined;
  const store = key && (await openCache());
  if (store) {
    const hit = await store.match(key).catch(() => undefined);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      const digest = await sha256Of(bytes);
      if (digest && hex(digest) === sha256) {
        onProgress?.({ file: what, loaded: bytes.byteLength, total: bytes.byteLength, cached: true });
        return { bytes, cached: true, digest };
      }
      await store.delete(key).catch(() => {});
    }
  }
  const { bytes } = await load(source, { what, limit, onProgress, signal, where, onRequest });
  if (!store) return { bytes, cached: false };
  const digest = await sha256Of(bytes);
  // Only what the manifest vouches for is kept; a wrong file is refused by
  // the load itself.
  if (digest && hex(digest) === sha256) await store.put(key, new Response(bytes)).catch(() => {});
  return { bytes, cached: false, digest };
}

/**
 * A manifest file: fetched (it may change), kept in the Cache API by its URL
 * when `cache`, and read from there when the network fails, so that a page
 * that loaded a model once loads it again offline.
 */
async function manifestFile(source, { onProgress, signal, cache, onRequest }) {
  const args = { what: 'manifest', limit: MAX_MANIFEST_BYTES, onProgress, signal, where: 'options.manifest', onRequest };
  const url = typeof source === 'string' || source instanceof URL ? toUrl(source, 'options.manifest') : undefined;
  const store = cache && url && (await openCache());
  if (!store) return load(source, args);
  const key = `${CACHE_ORIGIN}/manifest?url=${encodeURIComponent(url)}`;
  try {
    const got = await load(url, args);
    await store.put(key, new Response(got.bytes)).catch(() => {});
    return got;
  } catch (e) {
    const offline = e instanceof EdgeserveError && e.code === 'fetch_failed' && e.status === 'UNAVAILABLE' && !signal?.aborted;
    const hit = offline && (await store.match(key).catch(() => undefined));
    if (!hit) throw e;
    return { bytes: new Uint8Array(await hit.arrayBuffer()), url };
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(bytes, where) {
  try {
    return utf8.decode(bytes);
  } catch {
    throw fail('invalid_manifest', 'INVALID_ARGUMENT', `${where}: not UTF-8 text`);
  }
}

const LOAD_KEYS = new Set(['model', 'manifest', 'labels', 'onProgress', 'signal', 'cache']);

/** Browser image sources, drawn to a canvas to read their pixels. */
function drawable(image) {
  const is = (name) => typeof globalThis[name] === 'function' && image instanceof globalThis[name];
  if (is('HTMLImageElement') || is('SVGImageElement')) return { w: image.naturalWidth || image.width, h: image.naturalHeight || image.height, img: image };
  if (is('HTMLVideoElement')) return { w: image.videoWidth, h: image.videoHeight };
  if (is('VideoFrame')) return { w: image.displayWidth, h: image.displayHeight };
  if (is('HTMLCanvasElement') || is('OffscreenCanvas') || is('ImageBitmap')) return { w: image.width, h: image.height };
  return undefined;
}

/**
 * `image` as the wasm exports take it: encoded bytes or pixels. Synchronous
 * for bytes and pixels (so a call made before dispose() still runs); a
 * promise for a Blob or a browser image, which must be read or drawn first.
 */
function toPixels(image) {
  const bytes = bytesOf(image);
  if (bytes) return bytes;
  if (typeof Blob !== 'undefined' && image instanceof Blob) return image.arrayBuffer().then((b) => new Uint8Array(b));
  const d = drawable(image);
  if (d) return draw(image, d);
  // ImageData and ImageData-like objects go to Rust, which checks them.
  return image;
}

async function draw(image, d) {
  if (d.img && !image.complete) await image.decode();
  const w = d.w || image.naturalWidth || image.width;
  const h = d.h || image.naturalHeight || image.height;
  if (!w || !h) throw fail('invalid_image', 'INVALID_ARGUMENT', `image: the ${describe(image).slice(2)} has no pixels yet (${w}×${h})`);
  const canvas = typeof OffscreenCanvas === 'function' ? new OffscreenCanvas(w, h) : Object.assign(document.createElement('canvas'), { width: w, height: h });
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(image, 0, 0, w, h);
  const { data } = ctx.getImageData(0, 0, w, h);
  return { width: w, height: h, data };
}

/** JSON text with TF Serving's bare NaN / Infinity tokens, parsed. */
function parseTfJson(body) {
  try {
    return JSON.parse(body);
  } catch {
    const tag = '\u0000edgeserve-number:';
    const marked = body.replace(/("(?:[^"\\]|\\.)*")|-?Infinity|NaN/g, (m, str) => str ?? JSON.stringify(tag + m));
    return JSON.parse(marked, (_, v) => (typeof v === 'string' && v.startsWith(tag) ? Number(v.slice(tag.length)) : v));
  }
}

/**
 * The `wasm` settings object an entry point exports, and `ready(onProgress)`,
 * which starts the wasm once (the first model load) and resolves to its
 * glue (the wasm-bindgen exports). Settings are fixed once a start begins.
 *
 * `relaxedSupported`: this entry point ships a relaxed-SIMD build and the
 * engine runs relaxed-SIMD code right (builds.js's probe). `webgpu`: `'auto'` where the entry
 * ships the WebGPU build too (browsers), else `false`. `start({ relaxed,
 * webgpu, paths, module, onProgress })` instantiates one build and resolves
 * to `{ glue, webgpu }`: its exports and whether it has WebGPU.
 */
/** A PredictRequest object or its JSON text, as the JSON text Rust reads. */
function requestBody(request) {
  if (typeof request === 'string') return request;
  if (request !== null && typeof request === 'object' && !Array.isArray(request)) {
    try {
      return JSON.stringify(request);
    } catch (e) {
      throw fail('request', 'INVALID_ARGUMENT', `request: not representable as JSON: ${reason(e)}`, e);
    }
  }
  throw fail('request', 'INVALID_ARGUMENT', `request: expected a PredictRequest object or its JSON text, got ${describe(request)}`);
}

export function wasmLoader({ relaxedSupported, webgpu: offered = false, threadsUnavailable = 'this entry point has no threaded build', cores = 1, start }) {
  const chosen = { relaxedSimd: relaxedSupported, webgpu: offered, paths: null, module: null, threads: 'auto' };
  let build = null;
  let webgpuBuild = null;
  let threadsUsed = null;
  let started;
  let glue;
  // A setting may change until a build starts; after that only to the value it has.
  const setter = (name, check) => (v) => {
    check(v);
    if (started && v !== chosen[name]) {
      throw fail('invalid_options', 'FAILED_PRECONDITION', `wasm.${name}: the wasm was already started by the first model load; set it before that`);
    }
    chosen[name] = v;
  };
  const settings = Object.defineProperties(
    {},
    {
      relaxedSimd: {
        get: () => chosen.relaxedSimd,
        set: setter('relaxedSimd', (v) => {
          if (typeof v !== 'boolean') throw invalid(`wasm.relaxedSimd: expected a boolean, got ${describe(v)}`);
        }),
        enumerable: true,
      },
      relaxedSimdSupported: { get: () => relaxedSupported, enumerable: true },
      build: { get: () => build, enumerable: true },
      webgpu: {
        get: () => chosen.webgpu,
        set: setter('webgpu', (v) => {
          if (v !== 'auto' && typeof v !== 'boolean') throw invalid(`wasm.webgpu: expected 'auto', true or false, got ${describe(v)}`);
          if (v !== false && offered === false) throw invalid('wasm.webgpu: this entry point has no WebGPU build (only the default browser entry does)');
        }),
        enumerable: true,
      },
      webgpuBuild: { get: () => webgpuBuild, enumerable: true },
      paths: {
        get: () => chosen.paths,
        set: setter('paths', (v) => {
          if (v !== null && typeof v !== 'string' && !(v instanceof URL)) throw invalid(`wasm.paths: expected the URL of a directory (a string or URL), got ${describe(v)}`);
        }),
        enumerable: true,
      },
      threads: {
        get: () => chosen.threads,
        set: setter('threads', (v) => {
          if (v !== 'auto' && !(Number.isSafeInteger(v) && v >= 1 && v <= 64)) throw invalid(`wasm.threads: expected 'auto' or a whole number from 1 to 64, got ${describe(v)}`);
        }),
        enumerable: true,
      },
      threadsSupported: { get: () => threadsUnavailable === null, enumerable: true },
      threadsUnavailable: { get: () => threadsUnavailable, enumerable: true },
      threadsUsed: { get: () => threadsUsed, enumerable: true },
      module: {
        get: () => chosen.module,
        set: setter('module', (v) => {
          if (v !== null && !(v instanceof WebAssembly.Module)) throw invalid(`wasm.module: expected a WebAssembly.Module, got ${describe(v)}`);
        }),
        enumerable: true,
      },
    },
  );
  // A failed start (the wasm file did not download, say) is not kept: the
  // next load tries again, and until one starts the settings stay open.
  const ready = (onProgress) =>
    (started ??= (async () => {
      // More than one thread only where the threaded build can run; then it
      // starts instead of the single-threaded one.
      const threads = threadsUnavailable !== null ? 1 : chosen.threads === 'auto' ? autoThreads(cores) : chosen.threads;
      const relaxed = chosen.relaxedSimd && relaxedSupported;
      // The SIMD flavour of the build, threaded or not.
      const flavour = relaxed ? 'relaxed-simd' : 'simd128';
      // What is being started, for the error if it fails: the entry names
      // the build once it has chosen one (`onBuild`).
      let which = chosen.module ? 'given' : flavour;
      const onBuild = (label) => (which = label);
      try {
        const got = await start({ relaxed, webgpu: chosen.webgpu, paths: chosen.paths, module: chosen.module, threads, onProgress, onBuild });
        glue = got.glue;
        webgpuBuild = got.webgpu;
        threadsUsed = got.threads ?? 1;
      } catch (e) {
        throw fail('fetch_failed', 'UNAVAILABLE', `the ${which} wasm build did not start (the next load tries again): ${reason(e)}`, e);
      }
      build = chosen.module ? 'module' : flavour;
      return glue;
    })().catch((e) => {
      started = undefined;
      throw e;
    }));
  return { wasm: settings, ready, glue: () => glue };
}

/**
 * A `.wasm` file's response for streaming compilation (`instantiateStreaming`
 * compiles while it downloads), and `counted`, which settles once the
 * download's progress (`file: 'wasm'`) has all been reported, rejecting with
 * what `onProgress` threw.
 *
 * The compiler gets the response `fetch` gave, not one made here: Chromium
 * keeps a module's compiled code, and the optimised code V8 makes of its hot
 * functions as it runs, in its code cache only for a response that came from
 * `fetch` with the type `application/wasm` (the cache is keyed by its URL and
 * HTTP cache entry; `new Response(stream)` has neither), and a later visit
 * then starts with that code instead of compiling again and running the
 * baseline tier's. Progress is read from a clone of the body, which keeps the
 * cache's link. Only a response of another type, which streaming compilation
 * refuses and no browser caches, is made again with that type.
 */
export async function fetchWasm(url, onProgress) {
  const response = await fetch(url);
  // Vite's dev server pre-bundles dependencies into node_modules/.vite/,
  // where no .wasm is beside the code, and answers for the missing file
  // with its index page: say what fixes it.
  const vite = " (Vite's dev server pre-bundled edgeserve? add `optimizeDeps: { exclude: ['edgeserve'] }` to vite.config)";
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}${String(url).includes('/.vite/') ? vite : ''}`);
  const type = response.headers.get('content-type') ?? '';
  if (/^text\/html/.test(type)) {
    response.body?.cancel().catch(() => {});
    throw new Error(`${url}: the server answered with an HTML page, not the wasm${vite}`);
  }
  const length = response.headers.get('content-encoding') ? NaN : Number(response.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : undefined;
  if (type.toLowerCase() !== 'application/wasm') {
    const body = onProgress && response.body ? response.body.pipeThrough(progressCounter(onProgress, total)) : response.body;
    return { response: new Response(body, { headers: { 'content-type': 'application/wasm' } }), counted: Promise.resolve() };
  }
  if (!onProgress || !response.body) return { response, counted: Promise.resolve() };
  const counted = response
    .clone()
    .body.pipeThrough(progressCounter(onProgress, total))
    .pipeTo(new WritableStream());
  // Handled here too: the caller awaits it only once the glue has loaded.
  counted.catch(() => {});
  return { response, counted };
}

/** A stream passing a download through, reporting it to `onProgress` as `file: 'wasm'`. */
function progressCounter(onProgress, total) {
  let loaded = 0;
  return new TransformStream({
    transform(chunk, out) {
      loaded += chunk.byteLength;
      onProgress({ file: 'wasm', loaded, total });
      out.enqueue(chunk);
    },
  });
}

/** Whether a compiled module is a build with WebGPU (its imports name WebGPU's calls). */
export function hasWebgpuImports(module) {
  return WebAssembly.Module.imports(module).some((i) => /requestAdapter/.test(i.name));
}

/** The load options the wasm side reads (routing, limits, remote), as it takes them. */
function routingOptions(options) {
  const rest = {};
  for (const [k, v] of Object.entries(options)) if (!LOAD_KEYS.has(k) && v !== undefined) rest[k] = v;
  if (rest.deviceMemory === undefined && typeof navigator !== 'undefined' && typeof navigator.deviceMemory === 'number') {
    rest.deviceMemory = navigator.deviceMemory;
  }
  if (rest.remote && typeof rest.remote === 'object' && typeof Headers !== 'undefined' && rest.remote.headers instanceof Headers) {
    rest.remote = { ...rest.remote, headers: Object.fromEntries(rest.remote.headers) };
  }
  return rest;
}

/** Whether `manifest` is the manifest itself (an object), not a file to read it from. */
function isManifestObject(manifest) {
  return (
    manifest !== null &&
    typeof manifest === 'object' &&
    !bytesOf(manifest) &&
    !(manifest instanceof URL) &&
    !(typeof Response !== 'undefined' && manifest instanceof Response)
  );
}

/**
 * The API over the wasm an entry point starts: `ready(onProgress)` starts it
 * once and resolves to its glue (wasm-bindgen's exports: `RawClassifier`,
 * `RawEndpoint`, `plan`, and `__wbg_reset_state`, which replaces the
 * instance with a fresh one of the same module); `glue()` is that glue once
 * started. `cache`: whether loads keep models in the Cache API by default
 * (the browser entries).
 */
export function makeApi({ ready, glue, cache: cacheByDefault = false }) {
  const token = Symbol('edgeserve');
  // Each Classifier's raw export, for Endpoint.create to move it in.
  const raws = new WeakMap();
  // Which wasm instance objects live in: a trap leaves the instance's
  // memory in whatever state the trap found it (a lock held, an allocator
  // mid-update), so it is never called again. The trap replaces it and
  // bumps the generation; objects of an older one refuse every call.
  let generation = 0;
  // Why the last replacement failed, if it did (a browser's main thread may
  // refuse to instantiate a large module synchronously): nothing is loaded
  // into a trapped instance again.
  let broken;
  const readyLive = async (onProgress) => {
    const g = await ready(onProgress);
    if (broken) throw fail('instance_lost', 'UNAVAILABLE', `the wasm instance trapped and could not be replaced here (${broken}); reload the page or restart the process`);
    return g;
  };

  /** Any thrown value as an EdgeserveError, replacing the instance after a trap. */
  function failure(e, signal) {
    if (!(e instanceof WebAssembly.RuntimeError)) return asEdgeserveError(e, signal);
    let replaced;
    try {
      // The pool's threads run in the instance's shared memory: a fresh
      // instance would need fresh threads, and these cannot be stopped
      // from here while they may hold its locks.
      if (glue().threads_start) throw new Error('a threaded instance cannot be replaced while its pool threads share its memory');
      glue().__wbg_reset_state();
      broken = undefined;
      replaced = 'it was replaced by a fresh instance: load the models again';
    } catch (again) {
      broken = reason(again);
      replaced = `replacing it failed (${broken})`;
    }
    generation += 1;
    return fail('internal', 'INTERNAL', `the wasm instance trapped (a bug, please report): ${e.message}; ${replaced}`, e);
  }

  // The instance's asynchronous calls not yet settled. A trap inside one
  // comes out of the microtask that polled its future (wasm-bindgen's
  // futures queue), not out of the call, and its promise would never
  // settle. Browsers report it as the global scope's error event: there it
  // fails every pending call the way a trap thrown by a call fails that
  // call (`failure`), once the instance says a poll of its own trapped
  // (`trapped_in_a_call`), so that another module's trap is left alone.
  // Node has no such event: the uncaught trap ends its process.
  const pending = new Set();
  const onGlobalError = (event) => {
    if (!(event?.error instanceof WebAssembly.RuntimeError) || pending.size === 0) return;
    let ours = false;
    try {
      ours = glue().trapped_in_a_call() === true;
    } catch {
      // No instance to ask: not ours to fail.
    }
    if (!ours) return;
    const error = failure(event.error);
    const calls = [...pending];
    pending.clear();
    globalThis.removeEventListener('error', onGlobalError);
    for (const reject of calls) reject(error);
  };
  /** `promise` (a call into the instance), failed by a trap inside it where the host reports one. */
  const settled = (promise) => {
    if (typeof globalThis.addEventListener !== 'function') return promise;
    return new Promise((resolve, reject) => {
      try {
        if (pending.size === 0) globalThis.addEventListener('error', onGlobalError);
      } catch {
        // A host without a global error event (workerd's may refuse one).
        promise.then(resolve, reject);
        return;
      }
      pending.add(reject);
      const done = () => {
        if (pending.delete(reject) && pending.size === 0) globalThis.removeEventListener('error', onGlobalError);
      };
      promise.then(
        (value) => {
          done();
          resolve(value);
        },
        (e) => {
          done();
          reject(e);
        },
      );
    });
  };

  const lost = (what) =>
    fail('instance_lost', 'UNAVAILABLE', `the wasm instance this ${what} lived in trapped during an earlier call and was replaced; ${what === 'endpoint' ? 'create the endpoint' : 'load the model'} again`);

  // What a Classifier and a TensorModel share: the raw export each wraps,
  // the instance it lives in, TF Serving predict requests, and freeing it.
  let liveRaw;
  let finishReport;
  class LoadedModel {
    #raw;
    #generation = generation;
    #what;
    #finish;

    /** `finish` completes a report from Rust with what JS knows (in place). */
    constructor(raw, what, finish = (report) => report) {
      this.#raw = raw;
      this.#what = what;
      this.#finish = finish;
    }

    static {
      // The raw export for a subclass's calls, refused once its instance
      // was replaced or it was disposed. A closure, not a member: nothing
      // public hands out the raw object.
      liveRaw = (model) => {
        // Asked first: any question to a replaced instance's object is itself a call into it.
        if (model.#generation !== generation && !model.#raw.gone) throw lost(model.#what);
        if (model.#raw.disposed) throw fail('disposed', 'FAILED_PRECONDITION', `the ${model.#what} was disposed; load the model again to use it`);
        return model.#raw;
      };
      finishReport = (model, report) => model.#finish(report);
    }

    /** A TF Serving PredictResponse for a TF Serving PredictRequest. */
    async predict(request, options = {}) {
      return (await this.predictWithReport(request, options)).response;
    }

    /** `predict`, with the report of what ran and why. */
    async predictWithReport(request, options = {}) {
      if (options === null || typeof options !== 'object') throw invalid(`predict: expected an options object, got ${describe(options)}`);
      const { signal } = options;
      try {
        checkSignal(signal, 'predict options');
        const out = await settled(liveRaw(this).predict(requestBody(request), signal));
        return { response: parseTfJson(out.body), report: this.#finish(out.report) };
      } catch (e) {
        throw failure(e, signal);
      }
    }

    /** Whether dispose() has run. */
    get disposed() {
      if (this.#generation !== generation && !this.#raw.gone) return false;
      return this.#raw.disposed;
    }

    /** Frees the model's memory; later calls fail with code "disposed". */
    dispose() {
      if (this.#raw.gone) return;
      // A replaced instance's memory went with it: nothing to free.
      if (this.#generation === generation && !this.#raw.disposed) {
        this.#raw.dispose();
        this.#raw.free();
      }
      this.#raw = { gone: true, disposed: true };
    }

    [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
      this.dispose();
    }
  }

  class Classifier extends LoadedModel {
    constructor(key, raw, { verified }) {
      if (key !== token) throw new TypeError('use `await Classifier.load(options)` to make a Classifier');
      // Every report says whether the model was checked against its manifest's size and SHA-256.
      super(raw, 'classifier', (report) => Object.assign(report, { modelVerified: verified }));
      raws.set(this, raw);
    }

    /**
     * Where `Classifier.load(options)` would run the model, as edgeserve's
     * routing decides it from the manifest alone (nothing is downloaded):
     * `{ runs: 'local' | 'remote', reason }`.
     */
    static async plan(options) {
      if (options === null || typeof options !== 'object') {
        throw invalid(`Classifier.plan: expected an options object, got ${describe(options)}`);
      }
      const { manifest } = options;
      const manifestText = typeof manifest === 'string' ? manifest : isManifestObject(manifest) ? JSON.stringify(manifest) : undefined;
      if (manifestText === undefined) throw invalid(`options.manifest: expected the manifest (an object or its JSON text), got ${describe(manifest)}`);
      if (isManifestObject(manifest) && !Number.isSafeInteger(manifest.model?.bytes)) {
        throw fail('invalid_manifest', 'INVALID_ARGUMENT', 'options.manifest.model.bytes: needed to plan without downloading the model (routing compares it with maxLocalModelBytes)');
      }
      try {
        const g = await readyLive();
        const { backend, reason } = g.plan(manifestText, routingOptions(options));
        return { runs: backend === 'remote' ? 'remote' : 'local', reason };
      } catch (e) {
        throw failure(e);
      }
    }

    /** Loads a model: see index.d.ts for the options. */
    static async load(options) {
      if (options === null || typeof options !== 'object') {
        throw invalid(`Classifier.load: expected an options object, got ${describe(options)}`);
      }
      const { model, manifest, labels, onProgress, signal, cache = cacheByDefault } = options;
      checkSignal(signal, 'options');
      if (onProgress !== undefined && typeof onProgress !== 'function') {
        throw invalid(`options.onProgress: expected a function, got ${describe(onProgress)}`);
      }
      if (typeof cache !== 'boolean') throw invalid(`options.cache: expected a boolean, got ${describe(cache)}`);
      if (cache && !cacheByDefault) throw invalid('options.cache: this entry point has no Cache API to keep models in (Node and Workers read them from where they are)');
      const rest = routingOptions(options);
      // A load begun on the pool's other thread, until `open_loading` takes it.
      let loading;
      try {
        const g = await readyLive(onProgress);
        if (model === undefined && manifest === undefined) throw invalid('options.model: required (a URL, a Response or the ONNX bytes)');
        // A model given as bytes (which are then the bytes loaded) is hashed
        // while the manifest (or else the labels) downloads: Chromium's
        // WebCrypto hashes on this thread, in the call (Lite2: 32 ms), so
        // started once the request is out it overlaps the wait rather than
        // following it (the caller leaves the bytes unchanged until the
        // load settles: see `LoadOptions.model`). Not where only the remote
        // runs the model, which never needs its bytes.
        const atHand = rest.backend === 'remote' ? undefined : bytesOf(model);
        let earlyDigest;
        const hashAtHand = atHand ? () => (earlyDigest ??= sha256Of(atHand)) : undefined;
        // Better still, in the threaded build, while the pool's other thread
        // loads them (Lite2: 51–88 ms, longer than the hash): the load
        // starts there first, and the hash after it.
        const canLoadBeside = Boolean(globalThis.crypto?.subtle && g.RawLoadingModel?.possible());
        const beside = Boolean(atHand) && canLoadBeside;
        // The manifest: given, or `manifest.json` beside a model URL.
        const modelUrl = typeof model === 'string' || model instanceof URL ? toUrl(model, 'options.model') : undefined;
        const inline = isManifestObject(manifest);
        // A manifest to download: the load starts now, planned on the
        // bytes' own size (all a plan reads from a manifest; the manifest's
        // size and hash are checked once it is read), so that it overlaps
        // the downloads of the manifest and the labels. The hash still
        // starts at the labels' request: started at the manifest's, it
        // held up the labels' request behind it (Lite2 in Chromium, warm
        // starts after the runs: 193–228 ms against 169–193 ms).
        if (beside && !inline && manifest !== undefined) loading = g.RawLoadingModel.start_unread(atHand, rest);
        let parsed;
        let manifestUrl;
        let manifestText;
        if (inline) {
          parsed = manifest;
          manifestText = JSON.stringify(manifest);
        } else {
          const source = manifest ?? (modelUrl && new URL('manifest.json', modelUrl));
          if (source === undefined) throw invalid('options.manifest: required when the model is given as bytes or a Response');
          const got = await manifestFile(source, { onProgress, signal, cache, onRequest: beside ? undefined : hashAtHand });
          manifestUrl = got.url;
          manifestText = text(got.bytes, 'options.manifest');
          try {
            parsed = JSON.parse(manifestText);
          } catch {
            // Not JSON: Rust's reader says where.
            g.plan(manifestText, rest);
          }
        }
        // A manifest object without the model's size and SHA-256 (written
        // by hand to try a model): the model is downloaded to learn them,
        // and the report says it was not verified. A manifest file must
        // have them (Rust's reader refuses one without).
        const verified = isObject(parsed) && Number.isSafeInteger(parsed.model?.bytes) && typeof parsed.model?.sha256 === 'string';
        let modelBytes;
        let digest;
        // The model's SHA-256: of the bytes at hand (hashed once), else of
        // those fetched.
        const hashModel = () => hashAtHand?.() ?? sha256Of(modelBytes);
        const fetchModel = async (limit, sha256) => {
          const source = model ?? (manifestUrl && parsed.model?.file && new URL(parsed.model.file, manifestUrl));
          if (source === undefined) throw invalid('options.model: required to run the model locally');
          const got = await cachedFile(source, { what: 'model', limit, onProgress, signal, cache: cache && sha256, sha256, where: 'options.model' });
          digest = got.digest;
          return got.bytes;
        };
        // Every manifest is checked whole before anything is downloaded: one
        // without hashes with placeholders where they will go.
        const placeholder = { bytes: 0, sha256: '0'.repeat(64) };
        if (verified || !inline) {
          g.plan(manifestText, rest);
          // Undefined where the model does not load on this device's CPU.
          if (beside && verified && !loading) loading = g.RawLoadingModel.start(atHand, manifestText, rest);
        } else if (isObject(parsed)) {
          const labelsSpec = isObject(parsed.labels) ? { labels: { sha256: placeholder.sha256, ...parsed.labels } } : {};
          g.plan(JSON.stringify({ ...parsed, model: { file: 'model.onnx', ...parsed.model, ...placeholder }, ...labelsSpec }), { ...rest, backend: 'cpu' });
        }
        if (!verified && inline) {
          const file = parsed.model?.file ?? fileName(modelUrl) ?? 'model.onnx';
          if (rest.backend === 'remote') {
            // Never downloaded nor run here: the size and hash are moot.
            parsed = { ...parsed, model: { file, ...placeholder } };
          } else {
            modelBytes = await fetchModel(Infinity, undefined);
            digest = await hashModel();
            parsed = { ...parsed, model: { file, bytes: modelBytes.byteLength, sha256: hex(digest) } };
          }
          manifestText = JSON.stringify(parsed);
        }
        // The labels: given, or the manifest's file beside the manifest.
        let labelsText;
        const labelsSource = labels ?? (parsed.labels?.file && (manifestUrl ?? modelUrl) ? new URL(parsed.labels.file, manifestUrl ?? modelUrl) : undefined);
        if (labelsSource !== undefined) {
          const sha256 = typeof parsed.labels?.sha256 === 'string' ? parsed.labels.sha256 : undefined;
          const got = await cachedFile(labelsSource, { what: 'labels', limit: MAX_LABELS_BYTES, onProgress, signal, cache: cache && sha256, sha256, where: 'options.labels', onRequest: hashAtHand });
          labelsText = text(got.bytes, 'options.labels');
        }
        if (inline && isObject(parsed.labels) && parsed.labels.sha256 === undefined) {
          // Labels named without a hash (an unverified manifest): what
          // arrived is what is used; none arrived, none are named.
          const { labels: _, ...without } = parsed;
          const sha256 = labelsText === undefined ? undefined : hex(await sha256Of(new TextEncoder().encode(labelsText)));
          manifestText = JSON.stringify(sha256 ? { ...parsed, labels: { ...parsed.labels, sha256 } } : without);
        }
        const where = g.plan(manifestText, rest);
        if (where.needsModel && modelBytes === undefined && !loading) {
          modelBytes = await fetchModel(Number(parsed.model?.bytes) || Infinity, parsed.model?.sha256);
        }
        // A model downloaded and not hashed yet (no model cache to keep it
        // in) loads beside its hash too.
        if (!loading && !atHand && verified && modelBytes && !digest && canLoadBeside) {
          loading = g.RawLoadingModel.start(modelBytes, manifestText, rest);
        }
        if (loading && where.needsModel) {
          checkSignal(signal, 'options');
          const started = loading;
          loading = undefined;
          // The loading thread's wake comes through `Atomics.waitAsync`,
          // which does not keep Node's event loop alive: with nothing else
          // pending, Node would end the process before it came.
          const alive = setInterval(() => {}, 60_000);
          try {
            const raw = await settled(g.RawClassifier.open_loading(started, manifestText, labelsText, rest, hashModel));
            return new Classifier(token, raw, { verified });
          } finally {
            clearInterval(alive);
          }
        }
        // The browser's native SHA-256 when it has one (secure contexts,
        // Node, workerd): hashing 18.5 MB in wasm took ~350 ms of a cold load.
        if (modelBytes && !digest) digest = await hashModel();
        checkSignal(signal, 'options');
        const raw = await settled(g.RawClassifier.open(modelBytes, manifestText, labelsText, rest, digest));
        return new Classifier(token, raw, { verified: where.needsModel ? verified : null });
      } catch (e) {
        throw failure(e, signal);
      } finally {
        // Not taken (a failure, or no local run after all): its thread's
        // work is dropped when it ends.
        loading?.free();
      }
    }

    /** Deletes every model and labels file the package kept in the Cache API; whether there was anything. */
    static async clearCache() {
      if (!cacheByDefault || typeof caches === 'undefined') return false;
      return caches.delete(CACHE_NAME);
    }

    #live() {
      return liveRaw(this);
    }

    /** The top classes of one image, with what ran and why. */
    async classify(image, options = {}) {
      if (options === null || typeof options !== 'object') throw invalid(`classify: expected an options object, got ${describe(options)}`);
      const { topK, signal } = options;
      try {
        checkSignal(signal, 'classify options');
        this.#live();
        let input = toPixels(image);
        if (input instanceof Promise) input = await input;
        const result = await settled(this.#live().classify(input, topK, signal));
        finishReport(this, result.report);
        return result;
      } catch (e) {
        throw failure(e, signal);
      }
    }

    /**
     * Runs the model on one float tensor: `{ data: Float32Array, dims }`
     * (an onnxruntime-web `Tensor` is one), the signature's input in TF
     * Serving's row form. Resolves to `{ outputs: { name: { data:
     * Float32Array, dims } }, report }`: the tensor path, without JSON.
     */
    async run(tensor, options = {}) {
      if (options === null || typeof options !== 'object') throw invalid(`run: expected an options object, got ${describe(options)}`);
      const { signal } = options;
      try {
        checkSignal(signal, 'run options');
        if (tensor === null || typeof tensor !== 'object') throw fail('request', 'INVALID_ARGUMENT', `run: expected a tensor { data: Float32Array, dims }, got ${describe(tensor)}`);
        const result = await settled(this.#live().run(tensor.data, tensor.dims, signal));
        finishReport(this, result.report);
        return result;
      } catch (e) {
        throw failure(e, signal);
      }
    }

    /** TF Serving's GetModelMetadata response for the model. */
    metadata() {
      try {
        return JSON.parse(this.#live().metadata());
      } catch (e) {
        throw failure(e);
      }
    }

    /** The backend in use: `"cpu"`, `"webgpu"` or `"remote"`. */
    get backend() {
      return this.#live().backend();
    }

    /** The model's name and version (the manifest's). */
    get model() {
      return this.#live().model();
    }

  }

  const TENSOR_KEYS = new Set(['model', 'name', 'version', 'backend', 'onProgress', 'signal']);
  // Each TensorModel's raw export, for Endpoint.create to move it in.
  const tensorRaws = new WeakMap();

  /**
   * A model served as tensors in, tensors out: any ONNX model, its
   * signature read from the graph, no manifest and no image preprocessing
   * (what `edgeserve serve` does with a bare `model.onnx` that is not an
   * image classifier). It runs on the CPU backend.
   */
  class TensorModel extends LoadedModel {
    #name;
    #version;

    constructor(key, raw, name, version) {
      if (key !== token) throw new TypeError('use `await TensorModel.load(options)` to make a TensorModel');
      super(raw, 'tensor model');
      this.#name = name;
      this.#version = version;
      tensorRaws.set(this, raw);
    }

    /** Loads a model: see index.d.ts for the options. */
    static async load(options) {
      if (options === null || typeof options !== 'object') throw invalid(`TensorModel.load: expected an options object, got ${describe(options)}`);
      for (const k of Object.keys(options)) if (!TENSOR_KEYS.has(k)) throw invalid(`options.${k}: unknown option (expected one of ${[...TENSOR_KEYS].join(', ')})`);
      const { model, name = 'model', version = 1, backend = 'cpu', onProgress, signal } = options;
      checkSignal(signal, 'options');
      if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid(`options.onProgress: expected a function, got ${describe(onProgress)}`);
      if (typeof name !== 'string' || name === '') throw invalid(`options.name: expected a model name, got ${describe(name)}`);
      if (!Number.isSafeInteger(version) || version < 1) throw invalid(`options.version: expected a positive integer, got ${typeof version === 'number' ? version : describe(version)}`);
      // Said, not ignored: WebGPU and the remote serve image classifiers.
      if (backend !== 'cpu' && backend !== 'auto') throw invalid(`options.backend: a tensor model runs on the CPU backend ("cpu" or "auto"), got ${describe(backend)}`);
      if (model === undefined) throw invalid('options.model: required (a URL, a Response or the ONNX bytes)');
      try {
        const g = await readyLive(onProgress);
        const { bytes } = await load(model, { what: 'model', limit: Infinity, onProgress, signal, where: 'options.model' });
        checkSignal(signal, 'options');
        return new TensorModel(token, g.RawTensorModel.open(bytes), name, version);
      } catch (e) {
        throw failure(e, signal);
      }
    }

    #live() {
      return liveRaw(this);
    }

    /** TF Serving's GetModelMetadata response: the graph's signature as `serving_default`. */
    metadata() {
      try {
        return JSON.parse(this.#live().metadata(this.#name, this.#version));
      } catch (e) {
        throw failure(e);
      }
    }

    /** The backend in use: always `"cpu"`. */
    get backend() {
      this.#live();
      return 'cpu';
    }

    /** The name and version the metadata gives (`options.name`, `options.version`). */
    get model() {
      return { name: this.#name, version: this.#version };
    }

  }

  const ENDPOINT_KEYS = new Set(['models', 'cors', 'maxBodyBytes', 'limits']);
  const MODEL_KEYS = new Set(['name', 'version', 'model', 'manifest', 'labels', 'tensors']);

  /** A TF Serving REST endpoint over models loaded here (see index.d.ts). */
  class Endpoint {
    #raw;
    #cors;
    #maxBodyBytes;
    #generation = generation;

    constructor(key, raw, cors, maxBodyBytes) {
      if (key !== token) throw new TypeError('use `await Endpoint.create(options)` to make an Endpoint');
      this.#raw = raw;
      this.#cors = cors;
      this.#maxBodyBytes = maxBodyBytes;
    }

    /** Loads every model (on the CPU) and serves them by name and version. */
    static async create(options) {
      if (options === null || typeof options !== 'object') throw invalid(`Endpoint.create: expected an options object, got ${describe(options)}`);
      for (const k of Object.keys(options)) if (!ENDPOINT_KEYS.has(k)) throw invalid(`options.${k}: unknown option (expected one of ${[...ENDPOINT_KEYS].join(', ')})`);
      const { models, cors = false, maxBodyBytes = DEFAULT_MAX_BODY_BYTES, limits: given = {} } = options;
      if (!Array.isArray(models)) throw invalid(`options.models: expected an array, got ${describe(models)}`);
      if (typeof cors !== 'boolean') throw invalid(`options.cors: expected a boolean, got ${describe(cors)}`);
      if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) throw invalid(`options.maxBodyBytes: expected a positive integer, got ${String(maxBodyBytes)}`);
      if (given === null || typeof given !== 'object') throw invalid(`options.limits: expected an object, got ${describe(given)}`);
      for (const [k, v] of Object.entries(given)) {
        if (!(k in ENDPOINT_LIMITS)) throw invalid(`options.limits.${k}: unknown limit (expected one of ${Object.keys(ENDPOINT_LIMITS).join(', ')})`);
        if (!Number.isSafeInteger(v) || v < 1) throw invalid(`options.limits.${k}: expected a positive integer, got ${typeof v === 'number' ? v : describe(v)}`);
      }
      const limits = { ...ENDPOINT_LIMITS, ...given };
      const g = await readyLive();
      const raw = new g.RawEndpoint();
      raw.setLimits(limits.maxInflatedBytes, limits.maxJsonValues);
      try {
        for (const [i, m] of models.entries()) {
          const where = `options.models[${i}]`;
          if (m === null || typeof m !== 'object') throw invalid(`${where}: expected an object, got ${describe(m)}`);
          for (const k of Object.keys(m)) if (!MODEL_KEYS.has(k)) throw invalid(`${where}.${k}: unknown option (expected one of ${[...MODEL_KEYS].join(', ')})`);
          const { name, version = 1, model, manifest, labels, tensors = false } = m;
          if (typeof name !== 'string' || name === '') throw invalid(`${where}.name: expected a model name, got ${describe(name)}`);
          if (typeof tensors !== 'boolean') throw invalid(`${where}.tensors: expected a boolean, got ${describe(tensors)}`);
          if (tensors) {
            // Served on its graph's signature: a manifest or labels would
            // be ignored, so they are refused.
            if (manifest !== undefined || labels !== undefined) throw invalid(`${where}: a tensor model (tensors: true) takes no ${manifest !== undefined ? 'manifest' : 'labels'}; its signature is the graph's`);
            // Served under the endpoint's name and version (addTensors checks them, as add does a classifier's).
            const loaded = await TensorModel.load({ model });
            try {
              raw.addTensors(name, version, tensorRaws.get(loaded));
            } catch (e) {
              loaded.dispose();
              throw failure(e);
            }
            continue;
          }
          const classifier = await Classifier.load({
            model,
            manifest,
            labels,
            backend: 'cpu',
            maxImagePixels: limits.maxImagePixels,
            maxImagesPerRequest: limits.maxImagesPerRequest,
            maxRequestPixels: limits.maxRequestPixels,
            maxImagesPerRun: limits.maxImagesPerRun,
          });
          try {
            raw.add(name, version, raws.get(classifier));
          } catch (e) {
            classifier.dispose();
            throw failure(e);
          }
        }
      } catch (e) {
        const error = failure(e);
        if (error.code !== 'internal' && error.code !== 'instance_lost') raw.free();
        throw error;
      }
      return new Endpoint(token, raw, cors, maxBodyBytes);
    }

    /** The model a TF Serving path names (`/v1/models/NAME…`), or undefined. */
    static modelOf(method, path) {
      if (typeof method !== 'string' || typeof path !== 'string') throw invalid('Endpoint.modelOf: expected a method and a path (strings)');
      const g = glue();
      if (!g) throw fail('invalid_options', 'FAILED_PRECONDITION', 'Endpoint.modelOf: the wasm is not started yet; call it after Endpoint.create');
      return g.RawEndpoint.modelOf(method, path);
    }

    /** The names of the models served. */
    get models() {
      return this.#live().models();
    }

    #live() {
      if (!this.#raw) throw fail('disposed', 'FAILED_PRECONDITION', 'the endpoint was disposed; create it again to use it');
      if (this.#generation !== generation) throw lost('endpoint');
      return this.#raw;
    }

    /**
     * Answers a fetch `Request` as TF Serving's REST API does; a body over
     * `maxBodyBytes` gets 413 with TF Serving's `{"error": …}` body.
     */
    async handle(request) {
      this.#live();
      if (typeof Request === 'undefined' || !(request instanceof Request)) throw invalid(`Endpoint.handle: expected a Request, got ${describe(request)}`);
      const url = new URL(request.url);
      let body;
      try {
        body = request.body ? await readLimited(request, { url: url.pathname, what: 'request body', limit: this.#maxBodyBytes }) : new Uint8Array(0);
      } catch (e) {
        if (e instanceof EdgeserveError && e.code === 'fetch_failed' && e.status === 'FAILED_PRECONDITION') {
          // A body refused by its Content-Length was never read: say so, or
          // the host may wait for it before answering.
          if (!request.bodyUsed) await request.body?.cancel().catch(() => {});
          return Response.json({ error: `the request body is over the ${this.#maxBodyBytes} bytes allowed` }, { status: 413 });
        }
        throw asEdgeserveError(e);
      }
      const header = (name) => request.headers.get(name) ?? undefined;
      let out;
      try {
        // Every answer, refusals included, comes back as a response: what
        // throws here is a trap (or a lost instance), never the request.
        out = await settled(this.#live().handle(request.method, url.pathname + url.search, header('origin'), header('content-encoding'), body, this.#cors));
      } catch (e) {
        throw failure(e);
      }
      const headers = new Headers(out.headers);
      headers.set('content-type', out.contentType);
      return new Response(request.method === 'HEAD' ? null : out.body, { status: out.status, headers });
    }

    /** Frees every model; later calls fail with code "disposed". */
    dispose() {
      if (this.#generation === generation) this.#raw?.free();
      this.#raw = undefined;
    }
  }

  return { Classifier, TensorModel, Endpoint, EdgeserveError };
}
