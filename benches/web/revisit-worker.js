// One visit of benches/warm_revisit.mjs, in a dedicated Worker of a cross-origin
// isolated page: the threaded relaxed-SIMD build starts with a Lite0 load
// (load + classify, timed together; the wasm's download progress counted),
// then Lite2 is loaded `n` times from bytes at hand with its manifest's URL,
// each followed by one classify, after 150 ms of quiet: the warm start, as
// cpu-worker.js times it.
import { Classifier, wasm } from '/pkg/src/cpu.js';

self.onmessage = async ({ data: { n } }) => {
  try {
    wasm.threads = 2;
    wasm.relaxedSimd = true;
    const get = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
    const lite0 = await get('/models/efficientnet-lite0/efficientnet-lite0.onnx');
    const lite2 = await get('/models/efficientnet-lite2/efficientnet-lite2.onnx');
    const png = await (await fetch('/samples/chelsea_orig.png')).blob();
    let t = performance.now();
    // With a progress callback, as a page with a progress bar starts it.
    let wasmBytes = 0;
    const onProgress = (p) => p.file === 'wasm' && (wasmBytes = p.loaded);
    const first = await Classifier.load({ model: lite0, manifest: '/models/efficientnet-lite0/manifest.json', backend: 'cpu', cache: false, onProgress });
    await first.classify(png);
    const startMs = performance.now() - t;
    first.dispose();
    const warm = [];
    for (let i = 0; i < n; i++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      t = performance.now();
      const c = await Classifier.load({ model: lite2, manifest: '/models/efficientnet-lite2/manifest.json', backend: 'cpu', cache: false });
      const loadMs = performance.now() - t;
      await c.classify(png);
      warm.push({ loadMs, ms: performance.now() - t });
      c.dispose();
    }
    self.postMessage({ startMs, wasmBytes, warm });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
