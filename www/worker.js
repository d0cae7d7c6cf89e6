// The demo's inference, off the page's thread: the page posts
// `{ id, model, backend, image }` (a Blob or an ImageBitmap) and gets back
// progress messages, then `{ id, result }` or `{ id, error }`. One
// Classifier per model and backend, loaded on first use and kept. The CPU
// backend comes from `edgeserve/cpu`, the threaded build on this cross-origin
// isolated page; the others from the default entry, whose WebGPU build is
// single-threaded (a second engine instance, loaded only when asked for).
import { Classifier as CpuClassifier } from '/pkg/src/cpu.js';
import { Classifier } from '/pkg/src/web.js';

const classifiers = new Map();

function classifier(model, backend) {
  const key = `${model}/${backend}`;
  if (!classifiers.has(key)) {
    const loading = (backend === 'cpu' ? CpuClassifier : Classifier).load({
      model: new URL(`/models/${model}/${model}.onnx`, self.location.href),
      backend,
      // The page's origin forwards TF Serving's /v1/ paths (www/serve.mjs).
      remote: { url: self.location.origin, timeoutMs: 20_000, retries: 1 },
      onProgress: ({ loaded, total }) => self.postMessage({ progress: { model, loaded, total } }),
    });
    // A failed load is not kept: the next image tries again (back online, say).
    loading.catch(() => classifiers.delete(key));
    classifiers.set(key, loading);
  }
  return classifiers.get(key);
}

self.onmessage = async ({ data: { id, model, backend, image } }) => {
  try {
    const c = await classifier(model, backend);
    const result = await c.classify(image, { topK: 5 });
    self.postMessage({ id, result });
  } catch (e) {
    self.postMessage({ id, error: { code: e.code ?? 'internal', message: e.message ?? String(e) } });
  } finally {
    image?.close?.();
  }
};
