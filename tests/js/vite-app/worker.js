// The package in a dedicated Worker, as an app that wants threads loads it:
// on a cross-origin isolated page the threaded build starts here (a
// page's main thread may not wait for other threads). Classifies the photo
// it is sent and answers with what ran. `edgeserve/cpu`, as the package's
// README says for CPU threads: the default entry's WebGPU build (which a
// Chromium with an adapter would load) is single-threaded.
import { Classifier, wasm } from 'edgeserve/cpu';

// Two threads whatever the machine has, so the test knows what to expect
// (`'auto'`, the default, takes the cores, at most 4).
wasm.threads = 2;

self.onmessage = async ({ data: file }) => {
  try {
    const model = new URL('/efficientnet-lite0/efficientnet-lite0.onnx', location.href);
    const classifier = await Classifier.load({ model, backend: 'cpu' });
    const result = await classifier.classify(file, { topK: 5 });
    // The model's bytes at hand, as an app that keeps them itself gives
    // them with its manifest's URL: loaded on the pool's other thread while
    // this one hashes them, used as they are, and not put in the package's
    // model cache. Bytes that are not the manifest's model are refused.
    const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());
    const manifest = new URL('manifest.json', model);
    await Classifier.clearCache();
    const fromBytes = await (await Classifier.load({ model: bytes, manifest, backend: 'cpu' })).classify(file, { topK: 5 });
    const kept = await (await caches.open('edgeserve-models-v1')).keys();
    const damaged = bytes.slice();
    damaged[damaged.length >> 1] ^= 1;
    const refused = await Classifier.load({ model: damaged, manifest, backend: 'cpu' }).then(
      () => null,
      (e) => ({ code: e.code, message: e.message }),
    );
    self.postMessage({
      result,
      fromBytes,
      keptAfterBytes: kept.map((r) => new URL(r.url).pathname),
      refused,
      isolated: self.crossOriginIsolated,
      cores: navigator.hardwareConcurrency,
      threadsSupported: wasm.threadsSupported,
      threadsUnavailable: wasm.threadsUnavailable,
      threadsUsed: wasm.threadsUsed,
      wasmBuild: wasm.build,
    });
  } catch (e) {
    self.postMessage({ error: `${e.code}: ${e.message}` });
  }
};
