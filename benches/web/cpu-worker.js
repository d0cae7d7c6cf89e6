// One row of the CPU benchmark (Lite0 or Lite2), in a dedicated Worker of the cross-origin
// isolated bench page: edgeserve (`edgeserve/cpu`: threaded where `threads`
// > 1, since a Worker may wait for other threads) and onnxruntime-web's wasm
// backend, in the same worker, interleaved run for run (which goes first
// alternates). Every time is wall clock from here, around the call that
// gives the output:
// - tensor: the same Float32Array (the photo preprocessed, NCHW) to
//   edgeserve's `run` and to onnxruntime-web's `session.run`;
// - image: the same PNG as a Blob to the top-5: edgeserve's `classify`
//   against onnxruntime-web plus the preprocessing a user writes in JS
//   (createImageBitmap, one drawImage doing the resize to 256 on the
//   shorter side and the centre crop, getImageData, normalising to NCHW,
//   softmax and top-5).
// edgeserve's own inference time (the report's, measured in Rust) is kept as
// an extra column: the figure the old benchmark compared.
import { Classifier, wasm } from '/pkg/src/cpu.js';
import * as ort from '/ort/ort.wasm.min.mjs';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// The 10th and 90th percentiles (nearest rank): how far a row's runs
// spread around its median. On a 2-core machine a threaded run's time can
// double from one call to the next, so a median alone can mislead.
const spread = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return [at(0.1), at(0.9)];
};
const argmax = (xs) => {
  let best = 0;
  for (let k = 1; k < xs.length; k++) if (xs[k] > xs[best]) best = k;
  return best;
};

// The two bundled EfficientNet-Lite models, by directory under models/.
const MODELS = { lite0: 'efficientnet-lite0', lite2: 'efficientnet-lite2' };

/**
 * The manifest's preprocessing as a user writes it for onnxruntime-web:
 * resize of the shorter side, centre crop to the input's side, mean/std.
 */
async function preprocess(blob, { side, resize, mean, std }) {
  const bitmap = await createImageBitmap(blob);
  const scale = resize / Math.min(bitmap.width, bitmap.height);
  const src = side / scale;
  const canvas = new OffscreenCanvas(side, side);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, (bitmap.width - src) / 2, (bitmap.height - src) / 2, src, src, 0, 0, side, side);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, side, side).data;
  const plane = side * side;
  const out = new Float32Array(3 * plane);
  for (let i = 0, p = 0; p < plane; p++, i += 4) {
    out[p] = (rgba[i] - mean[0]) / std[0];
    out[plane + p] = (rgba[i + 1] - mean[1]) / std[1];
    out[2 * plane + p] = (rgba[i + 2] - mean[2]) / std[2];
  }
  return out;
}

function top5(logits) {
  const max = Math.max(...logits);
  const exp = Array.from(logits, (x) => Math.exp(x - max));
  const sum = exp.reduce((a, b) => a + b, 0);
  return exp
    .map((e, index) => ({ index, score: e / sum }))
    .sort((a, b) => b.score - a.score)
    .slice(0, 5);
}

async function row({ runs, warmup, threads, build, ortThreads, settleMs, model: modelName = 'lite0' }) {
  const dir = MODELS[modelName];
  if (!dir) throw new Error(`unknown model ${modelName}: lite0 or lite2`);
  const modelUrl = `/models/${dir}/${dir}.onnx`;
  const manifest = `/models/${dir}/manifest.json`;
  // What the JS side preprocesses to, from the manifest edgeserve reads too
  // (both models: shorter-side resize, centre crop, mean/std).
  const spec = await (await fetch(manifest)).json();
  const side = spec.input.width;
  const { resize, normalize } = spec.preprocessing;
  const model = { side, resize: resize.size, mean: normalize.mean, std: normalize.std };
  wasm.threads = threads;
  wasm.relaxedSimd = build === 'relaxed-simd';
  const png = await (await fetch('/samples/chelsea_orig.png')).blob();
  const input = new Float32Array(await (await fetch(`/inputs/chelsea_${side}_nchw_f32le.bin`)).arrayBuffer());
  const modelBytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const tensor = { data: input, dims: [1, 3, side, side] };

  // Cold: the engine's code downloaded and compiled, the model fetched.
  let t = performance.now();
  const es = await Classifier.load({ model: modelUrl, backend: 'cpu', cache: false });
  const esLoad = performance.now() - t;
  t = performance.now();
  await es.classify(png);
  const esFirst = performance.now() - t;
  // Warm start: the model's bytes at hand (as from the Cache API) and the
  // engine's code compiled, to the first result. Once here, one run after
  // the first load, while V8 still runs much of the code in its baseline
  // tier (it compiles hot functions with its optimiser as they run); and
  // again after the timed runs, whose inference code is then optimised but
  // whose load code has run twice. Then eight more: the load's code is
  // optimised too by about the seventh (in Node, loads ran 144, 83, 83, 70
  // … 58 ms with V8's tiering, and 55 ms once everything was optimised).
  const warmStart = async () => {
    const t0 = performance.now();
    const warm = await Classifier.load({ model: modelBytes, manifest, backend: 'cpu', cache: false });
    const loadMs = performance.now() - t0;
    await warm.classify(png);
    const ms = performance.now() - t0;
    warm.dispose();
    return { ms, loadMs };
  };
  const early = await warmStart();

  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = ortThreads;
  ort.env.wasm.simd = true;
  t = performance.now();
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const ortLoad = performance.now() - t;
  const inputName = session.inputNames[0];

  const esTensor = async () => {
    const t0 = performance.now();
    const r = await es.run(tensor);
    return { ms: performance.now() - t0, insideMs: r.report.timings.inferenceMs, logits: Object.values(r.outputs)[0].data, threads: r.report.threads };
  };
  const ortTensor = async () => {
    const t0 = performance.now();
    const o = await session.run({ [inputName]: new ort.Tensor('float32', input, [1, 3, side, side]) });
    return { ms: performance.now() - t0, logits: o[session.outputNames[0]].data };
  };
  const esImage = async () => {
    const t0 = performance.now();
    const r = await es.classify(png, { topK: 5 });
    return { ms: performance.now() - t0, top: r.classes.map((c) => c.index), r };
  };
  const ortImage = async () => {
    const t0 = performance.now();
    const x = await preprocess(png, model);
    const o = await session.run({ [inputName]: new ort.Tensor('float32', x, [1, 3, side, side]) });
    const top = top5(o[session.outputNames[0]].data);
    return { ms: performance.now() - t0, top: top.map((c) => c.index) };
  };

  const times = { esTensor: [], esInside: [], ortTensor: [], esImage: [], esImageInside: [], ortImage: [] };
  let threadsRan;
  // Each timed call starts after `settleMs` of quiet: a pool's threads spin
  // a while after a run (onnxruntime-web's, and edgeserve's until its
  // inference ends), and on a machine with as many cores as threads that
  // spinning would slow whichever side ran next.
  const settle = () => new Promise((resolve) => setTimeout(resolve, settleMs));
  for (let i = 0; i < warmup + runs; i++) {
    // Which side goes first alternates, for each path.
    const both = async (es, other) => {
      await settle();
      if (i % 2) {
        const e = await es();
        await settle();
        return [e, await other()];
      }
      const o = await other();
      await settle();
      return [await es(), o];
    };
    const [et, ot] = await both(esTensor, ortTensor);
    const [ei, oi] = await both(esImage, ortImage);
    if (i === 0) {
      // Same model, same input: the same top class, or the comparison is void.
      if (argmax(et.logits) !== argmax(ot.logits)) throw new Error(`tensor: top class differs: edgeserve ${argmax(et.logits)}, onnxruntime-web ${argmax(ot.logits)}`);
      if (ei.top[0] !== oi.top[0]) throw new Error(`image: top class differs: edgeserve ${ei.top[0]}, onnxruntime-web + JS preprocessing ${oi.top[0]}`);
      threadsRan = et.threads;
    }
    if (i >= warmup) {
      times.esTensor.push(et.ms);
      times.esInside.push(et.insideMs);
      times.ortTensor.push(ot.ms);
      times.esImage.push(ei.ms);
      times.esImageInside.push(ei.r.report.timings.decodeMs + ei.r.report.timings.preprocessMs + ei.r.report.timings.inferenceMs);
      times.ortImage.push(oi.ms);
    }
  }
  const late = [];
  for (let i = 0; i < 11; i++) {
    // After quiet, as the timed calls: onnxruntime-web's threads may still
    // spin from its last run.
    await settle();
    late.push(await warmStart());
  }
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  return {
    model: modelName,
    build: wasm.build,
    threads: wasm.threadsUsed,
    threadsRan,
    ortThreads,
    settleMs,
    crossOriginIsolated: self.crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
    runs,
    medians: m,
    spread: { esTensor: spread(times.esTensor), ortTensor: spread(times.ortTensor) },
    edgeserve: {
      loadMs: esLoad,
      firstResultMs: esFirst,
      warmStartMs: early.ms,
      warmLoadMs: early.loadMs,
      // The median of the first three after the runs.
      warmStartAfterMs: median(late.slice(0, 3).map((w) => w.ms)),
      warmLoadAfterMs: median(late.slice(0, 3).map((w) => w.loadMs)),
      // The median of the last five of eleven, the load's code optimised.
      warmStartTieredMs: median(late.slice(6).map((w) => w.ms)),
      warmLoadTieredMs: median(late.slice(6).map((w) => w.loadMs)),
    },
    onnxruntimeWeb: { loadMs: ortLoad },
  };
}

self.onmessage = ({ data }) =>
  row(data).then(
    (r) => self.postMessage(r),
    (e) => self.postMessage({ error: String(e?.stack ?? e) }),
  );
