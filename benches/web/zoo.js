// Runs in the page: each model of the zoo (tests/zoo/) through the package's
// WebGPU backend and through onnxruntime-web's WebGPU provider, on the same
// adapter, batch 1 on the chelsea photo's 64x64 tensor (channels last for
// the Keras family). Per model and side:
// load (bytes at hand to a session ready), the first run after load, and
// the median of `runs` runs after `warmup`, the two sides interleaved run
// for run. Every time is wall clock from the caller around the call that
// gives the logits, on the same input form: one Float32Array, to
// edgeserve's `run` and to onnxruntime-web's `session.run`. `insideMs` (the
// report's timings.inferenceMs: the engine run alone, measured in Rust) is
// given beside edgeserve's wall time. A side that cannot run a model
// says why. The result is left on window.benchResult for the driver.
import { Classifier } from '/pkg/src/web.js';
import { median, publish } from './common.js';
import * as ort from '/ort/ort.webgpu.min.mjs';

const q = new URLSearchParams(location.search);
const runs = Number(q.get('runs') ?? 5);
const warmup = Number(q.get('warmup') ?? 1);
const only = q.get('only');

const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);
const ms = async (f) => {
  const t0 = performance.now();
  const r = await f();
  return [performance.now() - t0, r];
};
const why = (e) => String(e?.message ?? e).slice(0, 200);

// The manifest a user would write for a classifier of this input; the
// benchmark sends tensors, so the preprocessing is never used.
const manifest = (name, layout) => ({
  schema: 'edgeserve.model/v1',
  name,
  version: 1,
  model: { file: 'model.onnx' },
  input: { name: 'input', layout, width: 64, height: 64 },
  output: { name: 'logits', kind: 'logits' },
  labels: { file: 'labels.txt' },
  preprocessing: {
    resize: { kind: 'shorter_side', size: 73 },
    crop: 'center',
    normalize: { kind: 'mean_std', mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] },
    channel_order: 'rgb',
  },
});

async function edgeserveSide(file, bytes, tensor, labels, layout) {
  const [loadMs, es] = await ms(() => Classifier.load({ model: bytes, manifest: manifest(file.replace(/\.onnx$/, ''), layout), labels, backend: 'webgpu' }));
  const run = async () => {
    const [wall, r] = await ms(() => es.run(tensor));
    return { ms: wall, insideMs: r.report.timings.inferenceMs, logits: Array.from(Object.values(r.outputs)[0].data) };
  };
  return { loadMs, run, dispose: () => es.dispose() };
}

async function ortSide(bytes, input, dims) {
  const [loadMs, session] = await ms(() => ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' }));
  const feeds = { input: new ort.Tensor('float32', input, dims) };
  const run = async () => {
    const [wall, o] = await ms(() => session.run(feeds));
    return { ms: wall, logits: Array.from(o.logits.data) };
  };
  return { loadMs, run, dispose: () => session.release() };
}

async function main() {
  const adapter = await navigator.gpu.requestAdapter();
  const info = adapter.info ?? {};
  ort.env.wasm.wasmPaths = '/ort/';
  const reference = await (await fetch('/zoo/reference.json')).json();
  const input = new Float32Array(await (await fetch('/zoo/inputs/chelsea_64_nchw_f32le.bin')).arrayBuffer());
  // The Keras family takes its input channels last.
  const nhwc = Float32Array.from({ length: input.length }, (_, i) => input[(i % 3) * 4096 + Math.floor(i / 3)]);
  const labels = new TextEncoder().encode(Array.from({ length: 100 }, (_, i) => `class ${i}`).join('\n') + '\n');
  const rows = [];
  for (const [file, model] of Object.entries(reference.models)) {
    if (only && !file.includes(only)) continue;
    const bytes = new Uint8Array(await (await fetch(`/zoo/${file}`)).arrayBuffer());
    const tensor = model.input[3] === 3 ? nhwc : input;
    const want = argmax(model.results.chelsea.logits);
    const row = { file, referenceTop1: want };
    const sides = {};
    for (const [name, start] of [
      ['edgeserve', () => edgeserveSide(file, bytes, { data: tensor, dims: model.input }, labels, model.input[3] === 3 ? 'nhwc' : 'nchw')],
      ['onnxruntimeWeb', () => ortSide(bytes, tensor, model.input)],
    ]) {
      try {
        const side = await start();
        const [firstMs, first] = await ms(side.run);
        sides[name] = side;
        row[name] = { loadMs: side.loadMs, firstMs, top1: argmax(first.logits), times: [], inside: [] };
      } catch (e) {
        row[name] = { error: why(e) };
      }
    }
    for (let i = 0; i < warmup + runs; i++) {
      for (const name of Object.keys(sides)) {
        try {
          const r = await sides[name].run();
          if (i >= warmup) {
            row[name].times.push(r.ms);
            if (r.insideMs !== undefined) row[name].inside.push(r.insideMs);
          }
        } catch (e) {
          row[name] = { error: why(e) };
          delete sides[name];
        }
      }
    }
    for (const [name, side] of Object.entries(sides)) {
      const s = row[name];
      s.medianMs = median(s.times);
      if (s.inside.length) s.insideMs = median(s.inside);
      delete s.times;
      delete s.inside;
      await side.dispose();
    }
    rows.push(row);
  }
  return { adapter: { vendor: info.vendor, architecture: info.architecture, isFallbackAdapter: adapter.isFallbackAdapter }, runs, warmup, rows };
}

publish(main);
