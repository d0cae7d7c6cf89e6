// Types of `edgeserve/worker`: the edge Worker (a TF Serving REST endpoint
// in a Worker) as a library.

import type { ModelManifest } from './common.js';

/**
 * A binding to a store of model files: an R2 bucket (`get(key)` →
 * `{ arrayBuffer() }` or null), or a service (`fetch`), with the keys
 * `{name}/manifest.json` and `{name}/{file}` for the files it names.
 */
export type ModelStore =
  | { get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null> }
  | { fetch(input: Request | string, init?: RequestInit): Promise<Response> };

/** The Worker's bindings (wrangler.jsonc `vars` and secrets, or workerd's config). */
export interface Env {
  /** Comma-separated names of the models served in the isolate: bundled ones, or read from MODEL_STORE; default (neither this nor MODELS set): the bundled models. */
  LOCAL_MODELS?: string;
  /** Comma-separated names forwarded to the origin TF Serving. */
  PROXY_MODELS?: string;
  /** Comma-separated names routed by edgeserve: in the isolate within MAX_LOCAL_MODEL_BYTES, else to the origin (image classifiers: routing reads their manifest). */
  MODELS?: string;
  /** Models in MODELS larger than this (the manifest's model.bytes) go to the origin; default 20 MB. */
  MAX_LOCAL_MODEL_BYTES?: string;
  /** Where models not bundled are read from. */
  MODEL_STORE?: ModelStore;
  /** A service binding to the origin TF Serving. */
  ORIGIN?: { fetch(input: Request | string, init?: RequestInit): Promise<Response> };
  /** The origin's base URL (http(s)://host[:port]), when there is no ORIGIN binding. */
  ORIGIN_URL?: string;
  /** Secret: the Authorization header sent to the origin. */
  ORIGIN_AUTHORIZATION?: string;
  /** Comma-separated browser origins allowed (CORS). */
  ALLOWED_ORIGINS?: string;
  /** Secret: when set, clients must send it as X-API-Key. */
  API_KEY?: string;
  /** `"true"` to serve without an API_KEY; without either, every request is refused. */
  PUBLIC_ENDPOINT?: string;
  /** Larger request bodies get 413; default 16 MB. */
  MAX_BODY_BYTES?: string;
}

/** A model bundled with the Worker, as module imports give its files. */
export interface BundledModel {
  /** The ONNX file (wrangler's `Data` rule: an ArrayBuffer). */
  model: ArrayBuffer | ArrayBufferView;
  /** Its manifest: a JSON import, or its text. */
  manifest: ModelManifest | string;
  /** Its labels: a `Text` import (the text itself) or bytes. */
  labels?: string | ArrayBuffer | ArrayBufferView;
}

/** A tensor model bundled with the Worker: served on its graph's signature (predict only), no manifest. */
export interface BundledTensorModel {
  /** The ONNX file (wrangler's `Data` rule: an ArrayBuffer). */
  model: ArrayBuffer | ArrayBufferView;
  tensors: true;
}

/** The Worker's module: `export default edgeWorker({ … })`. */
export interface EdgeWorker {
  fetch(request: Request, env: Env): Promise<Response>;
}

/** The edge Worker, serving `bundled` models and those its `Env` names. */
export declare function edgeWorker(bundled?: Record<string, BundledModel | BundledTensorModel>): EdgeWorker;
