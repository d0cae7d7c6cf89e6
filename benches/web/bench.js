// Runs in the page: batch-1 Lite0 latency of edgeserve's wasm CPU backend
// and onnxruntime-web's wasm backend on the same photo, interleaved run for
// run, after warm-up. Parameters come from the query string; the result is
// left on window.benchResult for the driver.
import { Classifier, wasm } from '/pkg/src/web.js';
import { median, publish } from './common.js';
import * as ort from '/ort/ort.wasm.min.mjs';

const q = new URLSearchParams(location.search);
const runs = Number(q.get('runs') ?? 30);
const warmup = Number(q.get('warmup') ?? 5);
const threads = Number(q.get('threads') ?? 1);
// Which of the package's wasm builds: relaxed-simd (the default here) or simd128.
wasm.relaxedSimd = (q.get('build') ?? 'relaxed-simd') === 'relaxed-simd';

async function main() {
  const photo = new Uint8Array(await (await fetch('/samples/chelsea_orig.png')).arrayBuffer());
  const input = new Float32Array(await (await fetch('/inputs/chelsea_224_nchw_f32le.bin')).arrayBuffer());
  const modelBytes = new Uint8Array(await (await fetch('/models/efficientnet-lite0/efficientnet-lite0.onnx')).arrayBuffer());

  let t = performance.now();
  const es = await Classifier.load({ model: '/models/efficientnet-lite0/efficientnet-lite0.onnx', backend: 'wasm' });
  const esLoad = performance.now() - t;
  t = performance.now();
  const first = await es.classify(photo);
  const esFirst = performance.now() - t;

  // Warm start: the model already fetched (as from the Cache API) and the
  // engine's code already compiled, to the first result.
  t = performance.now();
  const warm = await Classifier.load({ model: modelBytes, manifest: '/models/efficientnet-lite0/manifest.json', backend: 'wasm' });
  const esWarmLoad = performance.now() - t;
  await warm.classify(photo);
  const esWarm = performance.now() - t;
  warm.dispose();

  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  t = performance.now();
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const ortLoad = performance.now() - t;
  const feeds = { input: new ort.Tensor('float32', input, [1, 3, 224, 224]) };

  const esTimes = [];
  const ortTimes = [];
  for (let i = 0; i < warmup + runs; i++) {
    const r = await es.classify(photo);
    t = performance.now();
    const o = await session.run(feeds);
    const ortMs = performance.now() - t;
    if (i >= warmup) {
      esTimes.push(r.report.timings.inferenceMs);
      ortTimes.push(ortMs);
    }
    if (i === 0) {
      // Same model, same photo: the same top class, or the comparison is void.
      const logits = o.logits.data;
      let best = 0;
      for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
      if (best !== r.classes[0].index) throw new Error(`top class differs: edgeserve ${r.classes[0].index}, onnxruntime-web ${best}`);
    }
  }
  return {
    build: wasm.build,
    threads,
    crossOriginIsolated,
    runs,
    edgeserve: { medianMs: median(esTimes), minMs: Math.min(...esTimes), loadMs: esLoad, firstResultMs: esFirst, warmStartMs: esWarm, warmLoadMs: esWarmLoad, top: first.classes[0].label },
    onnxruntimeWeb: { medianMs: median(ortTimes), minMs: Math.min(...ortTimes), loadMs: ortLoad },
  };
}

publish(main);
