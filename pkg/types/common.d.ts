// What every entry point of the edgeserve package shares. Hand-written
// (wasm-bindgen's own are for the raw exports, typed `any`); each export
// condition has its own file for the images it takes: browser.d.ts (with
// the DOM's image types), node.d.ts and worker.d.ts (without the DOM).
// Checked by `tsc --strict` without skipLibCheck on a consumer of each
// (tests/js/types/).

// `[Symbol.dispose]` (for `using`): Workers' types and a bare ES2022 lib do
// not declare the symbol; @types/node pulls the same lib.
/// <reference lib="esnext.disposable" />

/** Where to run: `'cpu'` is the CPU backend (in wasm), as `report.backend` names it; `'wasm'` is its older spelling, still accepted. */
export type Backend = 'auto' | 'cpu' | 'webgpu' | 'remote' | 'wasm';

/** The backend that ran, as reports name it. */
export type BackendKind = 'cpu' | 'webgpu' | 'remote';

/** A model file: a URL (absolute, or relative to the page), a fetch Response, or its bytes. */
export type FileSource = string | URL | Response | ArrayBuffer | ArrayBufferView;

/** TF Serving's remote endpoint serving the same model. */
export interface RemoteOptions {
  /** Base URL: `http(s)://host[:port][/prefix]`; `/v1/models/…` is appended. */
  url: string;
  /** The model's name on the server; default: the manifest's name. */
  model?: string;
  /** A version number; default: the latest. Not with `versionLabel`. */
  version?: number;
  /** A version label such as `"stable"`. Not with `version`. */
  versionLabel?: string;
  /** Headers on every request, e.g. `{ Authorization: 'Bearer …' }`. */
  headers?: Record<string, string> | Headers;
  /** Per-attempt timeout in ms; default 30000. */
  timeoutMs?: number;
  /** Retries of connection errors, 429, 502, 503, 504; default 3. */
  retries?: number;
  /** gzip request bodies; default false. */
  gzip?: boolean;
  /** Answers larger than this are refused; default 64 MiB. */
  maxResponseBytes?: number;
  /**
   * `"auto"` (default): the signature from the server's TF Serving metadata,
   * or the manifest's where the server has none (KServe V1, Seldon,
   * BentoML), said in `report.signature`; `"off"`: always the manifest's.
   */
  discovery?: 'auto' | 'off';
  /** The form of the requests `classify` and `run` send: `"row"` (`instances`, default) or `"columnar"` (`inputs`). */
  format?: 'row' | 'columnar';
}

/** Where a remote run's signature came from. */
export interface RemoteSignature {
  from: 'metadata' | 'manifest';
  /** Why the manifest's: the server's answer to the metadata call, or that discovery is off; null for `metadata`. */
  reason: string | null;
}

/** Download progress of one file a load fetches (the wasm only on the load that starts it). */
export interface Progress {
  file: 'wasm' | 'manifest' | 'labels' | 'model';
  /** Bytes received so far. */
  loaded: number;
  /** The file's size, when the server says it. */
  total: number | undefined;
  /** Read from the model cache, not downloaded (one event with the whole size). */
  cached?: boolean;
}

/**
 * The model's manifest (edgeserve.model/v1): what the ONNX file does not
 * say. The package README documents each field, with an example for each
 * preprocessing preset; `edgeserve manifest MODEL.onnx` writes one.
 */
export interface ModelManifest {
  schema: 'edgeserve.model/v1';
  name: string;
  version: number;
  /**
   * The model file. `bytes` and `sha256` may be left out of a manifest given
   * as an object (to try a model): it is then downloaded to learn them,
   * never cached, and reports say `modelVerified: false`.
   */
  model: { file: string; bytes: number; sha256: string } | { file?: string; bytes?: undefined; sha256?: undefined };
  input: {
    name: string;
    layout: 'nchw' | 'nhwc';
    width: number;
    height: number;
    encoding?: 'tensor' | 'image';
  };
  output: { name: string; kind: 'logits' | 'probabilities' };
  preprocessing: {
    resize: { kind: 'shorter_side'; size: number } | { kind: 'exact' };
    crop: 'center' | 'none';
    normalize:
      | { kind: 'mean_std'; mean: [number, number, number]; std: [number, number, number] }
      | { kind: 'scale_offset'; scale: number; offset: number };
    channel_order: 'rgb' | 'bgr';
  };
  labels?: { file: string; sha256?: string };
}

/** Options of {@link Classifier.load}. */
export interface LoadOptions {
  /**
   * The ONNX model. With a URL, the manifest defaults to `manifest.json`
   * beside it. Bytes are read where they are, not copied first: leave them
   * unchanged until the load settles.
   */
  model?: FileSource;
  /** The manifest: an object, or its file. Required when `model` is bytes or a Response. */
  manifest?: ModelManifest | FileSource;
  /** The labels file; default: the manifest's, beside the manifest's URL. */
  labels?: FileSource;
  /** Default `"auto"`: local when the model fits, else the remote. */
  backend?: Backend;
  /** The TF Serving endpoint for the remote backend and fallback. */
  remote?: RemoteOptions;
  /** Under `"auto"`, larger models go to the remote; default 20 000 000 bytes. */
  maxLocalModelBytes?: number;
  /** Under `"auto"`, whether a local failure is answered by the remote; default true. */
  fallback?: boolean;
  /** The device's memory in GiB; default `navigator.deviceMemory` where present. */
  deviceMemory?: number;
  /** Images with more pixels are refused (decompression bombs); default 40 000 000. */
  maxImagePixels?: number;
  /** A call with more images is refused before any is decoded; default 64. */
  maxImagesPerRequest?: number;
  /** A call whose images hold more pixels together is refused, each charged from its header before it is decoded; default 200 000 000. */
  maxRequestPixels?: number;
  /** Most images run through the model at once; a call with more runs in chunks (the model's activations grow with the batch); default 64. */
  maxImagesPerRun?: number;
  /** Called as each file downloads: the wasm (on the first load), the manifest, the labels, the model. */
  onProgress?: (progress: Progress) => void;
  /**
   * Keep the model and labels in the Cache API, keyed by the manifest's
   * SHA-256 and checked on every read (a copy that differs is dropped and
   * downloaded again), and the manifest by its URL for loads without a
   * network. Only what is downloaded: a model or labels given as bytes
   * are used as they are, never kept. Default: true in browsers; Node and
   * Workers have no cache.
   */
  cache?: boolean;
  /** Aborts the download and the load. */
  signal?: AbortSignal;
}

/** Raw pixels, as `ImageData` holds them (`rgba`, the default) or packed RGB. */
export interface Pixels {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
  format?: 'rgba' | 'rgb';
}

/** An image in every host: encoded bytes (PNG, JPEG, WebP, GIF, BMP), a Blob, or pixels. */
export type BinaryImage = ArrayBuffer | ArrayBufferView | Blob | Pixels;

/** Why a backend was chosen. */
export type Why =
  | { kind: 'requested' }
  | { kind: 'no_remote' }
  | { kind: 'within_budget'; modelBytes: number; budget: number }
  | { kind: 'over_budget'; modelBytes: number; budget: number }
  | { kind: 'over_budget_no_remote'; modelBytes: number; budget: number }
  | { kind: 'over_device_memory'; needed: number; deviceMemory: number }
  | { kind: 'over_device_memory_no_remote'; needed: number; deviceMemory: number }
  | { kind: 'local_load_failed'; backend: BackendKind; error: string }
  | { kind: 'local_run_failed'; backend: BackendKind; error: string };

/** One local backend `auto` tried at load. */
export interface Candidate {
  backend: BackendKind;
  /** One batch-1 run after warmup, when both local backends loaded (there was a choice). */
  runMs: number | null;
  /** Why it could not run the model (no WebGPU here, over the adapter's limits, an op it lacks). */
  error: string | null;
}

/** What ran, why, and how long each step took (ms). */
export interface Report {
  backend: BackendKind;
  why: Why;
  /** Under `auto`, how the local backend was chosen: each one tried, the one kept first. */
  local: { candidates: Candidate[] } | null;
  /** For a remote run, where its signature came from; null for local runs. */
  signature: RemoteSignature | null;
  /** `backend: why` in words, e.g. `remote: model 24.3 MB > local budget 20.0 MB`, then `; local backends: cpu 40.1 ms, webgpu 912.0 ms` under `auto`. */
  reason: string;
  timings: { decodeMs: number; preprocessMs: number; inferenceMs: number; transferMs: number };
  /** The threads the CPU backend ran on (1 but in the threaded build); `null` for the other backends. */
  threads: number | null;
  /**
   * Whether the model that ran was checked against its manifest's size and
   * SHA-256: false for a manifest without them, null when it ran remotely
   * (nothing was downloaded here).
   */
  modelVerified: boolean | null;
}

/** One class of a result. */
export interface ClassScore {
  index: number;
  label: string | null;
  score: number;
}

/** The top classes of an image. */
export interface Classification {
  classes: ClassScore[];
  report: Report;
}

/** A tensor value in TF Serving's JSON: numbers, strings, `{ b64 }`, nested lists. */
export type TensorValue = number | boolean | string | { b64: string } | TensorValue[];

/** TF Serving's REST PredictRequest: row (`instances`) or columnar (`inputs`) format. */
export type PredictRequest =
  | { signature_name?: string; instances: TensorValue[] | Record<string, TensorValue>[] }
  | { signature_name?: string; inputs: TensorValue | Record<string, TensorValue> };

/** TF Serving's REST PredictResponse, in the format of the request. */
export type PredictResponse =
  | { predictions: TensorValue[] | Record<string, TensorValue>[] }
  | { outputs: TensorValue | Record<string, TensorValue> };

/** One tensor of a signature, as TF Serving's metadata gives it. */
export interface TensorInfo {
  dtype: string;
  tensor_shape: { dim: { size: string; name: string }[]; unknown_rank?: boolean };
  name: string;
}

/** TF Serving's GetModelMetadata response. */
export interface ModelMetadata {
  model_spec: { name: string; signature_name: string; version: string };
  metadata: {
    signature_def: {
      signature_def: Record<string, { inputs: Record<string, TensorInfo>; outputs: Record<string, TensorInfo>; method_name: string }>;
    };
  };
}

/** The `code` of an {@link EdgeserveError}. */
export type ErrorCode =
  | 'invalid_options'
  | 'invalid_model'
  | 'invalid_manifest'
  | 'invalid_image'
  | 'integrity'
  | 'unsupported_op'
  | 'request'
  | 'remote'
  | 'run_failed'
  | 'fetch_failed'
  | 'aborted'
  | 'disposed'
  | 'backend_unavailable'
  | 'instance_lost'
  | 'internal';

/** Every failure: a stable `code`, TF Serving's `status`, the message from Rust. */
export class EdgeserveError extends Error {
  readonly name: 'EdgeserveError';
  readonly code: ErrorCode;
  /** TF Serving's canonical code name, e.g. `INVALID_ARGUMENT`. */
  readonly status: string;
}

/** The SIMD flavour of the wasm build started: relaxed SIMD (fused multiply-adds), simd128 only, or the `wasm.module` given. */
export type WasmBuild = 'relaxed-simd' | 'simd128' | 'module';

/**
 * The engine's wasm. The first model load starts one build; settings are
 * fixed from then on (setting another value throws `invalid_options`). A
 * build that does not start (its `.wasm` did not download) rejects that
 * load with `fetch_failed` and is not remembered: the next load tries
 * again.
 */
export interface WasmSettings {
  /**
   * Use the relaxed-SIMD build where supported; default: whether it is
   * supported. Its multiply-adds are fused or not depending on the CPU, so
   * results may differ in the last bits between machines: set `false`
   * before the first load for the same bits on every machine.
   */
  relaxedSimd: boolean;
  /**
   * Whether this entry point has a relaxed-SIMD build and the engine runs
   * it right: it validates relaxed-SIMD code and computes a probe of the
   * int8 dot product as specified.
   */
  readonly relaxedSimdSupported: boolean;
  /** The build started; `null` until a load has started one. */
  readonly build: WasmBuild | null;
  /**
   * Which build the default browser entry starts: `'auto'` (default) the
   * WebGPU build where `navigator.gpu` gives an adapter, else the CPU build;
   * `true` or `false` to choose. Other entry points have the CPU build only:
   * `false`, and setting `true` throws.
   */
  webgpu: 'auto' | boolean;
  /** Whether the build started has the WebGPU backend; `null` until one started. */
  readonly webgpuBuild: boolean | null;
  /**
   * Threads for the CPU backend: `'auto'` (default) the host's cores
   * (`navigator.hardwareConcurrency`, Node's `os.availableParallelism()`),
   * at most 4; or a number from 1 to 64. More than one starts the threaded
   * build (simd128, a pool of Web Workers or Node `worker_threads`) where
   * `threadsSupported`; elsewhere one thread. The WebGPU build is
   * single-threaded: for threads in a browser, use `edgeserve/cpu`, or
   * `webgpu: false`. Set before the first load.
   */
  threads: 'auto' | number;
  /**
   * Whether the threaded build can run here: always in Node; in a browser
   * only in a dedicated Worker of a cross-origin isolated page (COOP
   * `same-origin`, COEP `require-corp`), since a thread that waits for the
   * pool blocks, which a page's main thread may not. Workers (workerd):
   * never.
   */
  readonly threadsSupported: boolean;
  /** Why `threadsSupported` is false, in words; `null` where it is true. */
  readonly threadsUnavailable: string | null;
  /** The threads the started build runs the CPU backend on; `null` until one started. */
  readonly threadsUsed: number | null;
  /**
   * Where the `.wasm` files are, instead of beside the package's code: the
   * URL of a directory laid out as the package's `dist/`
   * (`edgeserve_bg.wasm`, `edgeserve_relaxed_bg.wasm`, `edge/…`, `threads/…`), e.g. a
   * CDN's copy; in Node a directory path or `file:` URL too. `null`: beside
   * the code.
   */
  paths: string | URL | null;
  /**
   * An already compiled build (`WebAssembly.compileStreaming` of one of the
   * package's `.wasm` files), used instead of fetching one; its imports say
   * whether it is the WebGPU build. In Workers, the module imported with the
   * script is used when this is `null`.
   */
  module: CompiledModule | null;
}

/**
 * `WebAssembly.Module` where the host's types declare it (the DOM, Workers);
 * a bare ES2022 lib with @types/node does not, and gets any object.
 */
export type CompiledModule = typeof globalThis extends { WebAssembly: { Module: abstract new (...args: never[]) => infer M } } ? M : object;

/** The engine's wasm: which build, and where it comes from. */
export declare const wasm: WasmSettings;

/** Options of `classify`. */
export interface ClassifyOptions {
  /** How many classes; default 5. */
  topK?: number;
  signal?: AbortSignal;
}

/** A Classifier's members, but `classify`, whose image type is the entry point's. */
export interface ClassifierMembers {
  /** A TF Serving PredictResponse for a PredictRequest (object or JSON text). */
  predict(request: PredictRequest | string, options?: { signal?: AbortSignal }): Promise<PredictResponse>;
  /**
   * Runs the model on one float tensor (an onnxruntime-web `Tensor` is
   * one), the signature's input in TF Serving's row form, without JSON:
   * each float output as a `Float32Array` with its dims.
   */
  run(
    tensor: { data: Float32Array; dims: readonly number[] },
    options?: { signal?: AbortSignal },
  ): Promise<{ outputs: Record<string, { data: Float32Array; dims: number[] }>; report: Report }>;
  /** `predict`, with the report of what ran and why. */
  predictWithReport(
    request: PredictRequest | string,
    options?: { signal?: AbortSignal },
  ): Promise<{ response: PredictResponse; report: Report }>;
  /** TF Serving's metadata for the model. */
  metadata(): ModelMetadata;
  /** The backend in use. */
  readonly backend: BackendKind;
  /** The model's name and version (the manifest's). */
  readonly model: { name: string; version: number };
  /** Whether dispose() has run. */
  readonly disposed: boolean;
  /** Frees the model; later calls reject with code `disposed`. */
  dispose(): void;
  [Symbol.dispose](): void;
}

/** `Classifier`'s static side. */
export interface ClassifierStatic<C> {
  /** Loads a model (downloading it only when it will run locally). */
  load(options: LoadOptions): Promise<C>;
  /**
   * Where `load` with these options would run the model, as edgeserve's
   * routing decides it from the manifest alone (its size against
   * `maxLocalModelBytes`, the device's memory, the backend asked for, whether
   * a remote is configured); nothing is downloaded. `reason` is the text
   * reports give, e.g. "model 24.3 MB > local budget 20.0 MB".
   */
  plan(options: Omit<LoadOptions, 'manifest'> & { manifest: ModelManifest | string }): Promise<{ runs: 'local' | 'remote'; reason: string }>;
  /** Deletes every model and labels file loads kept in the Cache API; resolves to whether there was a cache. */
  clearCache(): Promise<boolean>;
}

/** Options for `TensorModel.load`. */
export interface TensorModelOptions {
  /** The ONNX model: a URL, a Response or its bytes. */
  model: FileSource;
  /** The name its metadata gives; default `"model"`. */
  name?: string;
  /** The version its metadata gives; default 1. */
  version?: number;
  /** `"cpu"` (the default) or `"auto"`: a tensor model runs on the CPU; any other backend is refused. */
  backend?: 'cpu' | 'auto';
  /** Called as the model downloads. */
  onProgress?: (progress: Progress) => void;
  /** Cancels the load. */
  signal?: AbortSignal;
}

/** What ran a tensor model's request. */
export interface TensorReport {
  backend: 'cpu';
  /** Why it ran there, in words. */
  reason: string;
  /** The threads the CPU backend ran on (1 but in the threaded build). */
  threads: number;
}

/**
 * A model served as tensors in, tensors out: any ONNX model (regression,
 * embeddings, TF Serving's `half_plus_two`), its signature read from the
 * graph, no manifest and no image preprocessing; as `edgeserve serve` serves
 * a bare `model.onnx` that is not an image classifier. It runs on the CPU.
 */
export class TensorModel {
  private constructor();
  /** Loads a model. */
  static load(options: TensorModelOptions): Promise<TensorModel>;
  /** A TF Serving PredictResponse for a PredictRequest (object or JSON text), read against the graph's signature. */
  predict(request: PredictRequest | string, options?: { signal?: AbortSignal }): Promise<PredictResponse>;
  /** `predict`, with the report of what ran. */
  predictWithReport(
    request: PredictRequest | string,
    options?: { signal?: AbortSignal },
  ): Promise<{ response: PredictResponse; report: TensorReport }>;
  /** TF Serving's metadata: the graph's signature as `serving_default`. */
  metadata(): ModelMetadata;
  /** Always `"cpu"`. */
  readonly backend: 'cpu';
  /** The name and version its metadata gives. */
  readonly model: { name: string; version: number };
  /** Whether dispose() has run. */
  readonly disposed: boolean;
  /** Frees the model; later calls reject with code `disposed`. */
  dispose(): void;
  [Symbol.dispose](): void;
}

/** One model an Endpoint serves. */
export interface EndpointModel {
  /** The name in URLs (`/v1/models/{name}`). */
  name: string;
  /** Its version number; default 1. */
  version?: number;
  /** The ONNX model. */
  model: FileSource;
  /** Its manifest; default `manifest.json` beside a model URL. */
  manifest?: ModelManifest | FileSource;
  /** Its labels; default the manifest's file. */
  labels?: FileSource;
  /**
   * Serve it as tensors in, tensors out on its graph's signature (a
   * `TensorModel`: predict only, no manifest or labels); default false, an
   * image classifier.
   */
  tensors?: boolean;
}

/** Options for `Endpoint.create`. */
export interface EndpointOptions {
  /** The models, loaded once on the CPU (wasm). */
  models: EndpointModel[];
  /** TF Serving's `--rest_api_enable_cors_support` headers on every `/v1/` reply; default false. */
  cors?: boolean;
  /** Larger request bodies get 413; default 64 MiB. */
  maxBodyBytes?: number;
  /** What one request may make the endpoint spend; defaults sized for a Worker's 128 MB isolate. */
  limits?: EndpointLimits;
}

/** What one request may make an Endpoint spend; a request over a limit gets TF Serving's 400 naming it. */
export interface EndpointLimits {
  /** Pixels of one image, from its header, before it is decoded; default 4 000 000. */
  maxImagePixels?: number;
  /** Images in one request; default 16. */
  maxImagesPerRequest?: number;
  /** Pixels of a request's images together; default 16 000 000. */
  maxRequestPixels?: number;
  /** Images run through a model at once (more run in chunks); default 4. */
  maxImagesPerRun?: number;
  /** Bytes a gzip request body may inflate to; default 16 MiB. */
  maxInflatedBytes?: number;
  /** JSON values (numbers, strings, arrays, objects) in a predict or classify body; default 524 288. */
  maxJsonValues?: number;
}

/**
 * TF Serving's REST API (status, metadata, predict, classify, regress; its
 * paths, bodies, errors and status codes) over models loaded here: the same
 * request handler as `edgeserve serve`, for Workers and other fetch hosts.
 */
export class Endpoint {
  private constructor();
  /** Loads every model and serves them. */
  static create(options: EndpointOptions): Promise<Endpoint>;
  /** The model a TF Serving path names, or undefined when it is not one of TF Serving's paths. */
  static modelOf(method: string, path: string): string | undefined;
  /** The names of the models served. */
  readonly models: string[];
  /** Answers a request exactly as `edgeserve serve` would. */
  handle(request: Request): Promise<Response>;
  /** Frees every model; later calls reject with code `disposed`. */
  dispose(): void;
}
