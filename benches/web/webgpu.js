// Runs in the page: Lite0 batch-1 latency of edgeserve's WebGPU backend and
// onnxruntime-web's WebGPU backend on the same adapter, interleaved run for
// run after warm-up; load time and the first inference after load for
// both; and the GPU dispatches one inference issues, counted by wrapping
// GPUComputePassEncoder.dispatchWorkgroups. The result is left on
// window.benchResult for the driver.
import { Classifier } from '/pkg/src/web.js';
import { median, publish } from './common.js';
import * as ort from '/ort/ort.webgpu.min.mjs';

const q = new URLSearchParams(location.search);
const runs = Number(q.get('runs') ?? 10);
const warmup = Number(q.get('warmup') ?? 2);

let dispatches = 0;
const dispatch = GPUComputePassEncoder.prototype.dispatchWorkgroups;
GPUComputePassEncoder.prototype.dispatchWorkgroups = function (...args) {
  dispatches++;
  return dispatch.apply(this, args);
};
const counted = async (f) => {
  dispatches = 0;
  const r = await f();
  return [r, dispatches];
};

const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);

async function main() {
  const adapter = await navigator.gpu.requestAdapter();
  const info = adapter.info ?? {};
  const input = new Float32Array(await (await fetch('/inputs/chelsea_224_nchw_f32le.bin')).arrayBuffer());
  const modelBytes = new Uint8Array(await (await fetch('/models/efficientnet-lite0/efficientnet-lite0.onnx')).arrayBuffer());
  const manifest = '/models/efficientnet-lite0/manifest.json';
  const tensor = { data: input, dims: [1, 3, 224, 224] };

  let t = performance.now();
  const es = await Classifier.load({ model: modelBytes, manifest, backend: 'webgpu' });
  const esLoad = performance.now() - t;
  // run() takes the same Float32Array onnxruntime-web does; both timed by
  // wall clock around the call that gives the logits. The report's
  // inference time (inside Rust) is kept as an extra column.
  const esInside = [];
  const esRun = async () => {
    const t0 = performance.now();
    const r = await es.run(tensor);
    const ms = performance.now() - t0;
    esInside.push(r.report.timings.inferenceMs);
    return [ms, Array.from(Object.values(r.outputs)[0].data)];
  };
  const [[esFirst], esDispatches] = await counted(esRun);

  ort.env.wasm.wasmPaths = '/ort/';
  t = performance.now();
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' });
  const ortLoad = performance.now() - t;
  const feeds = { input: new ort.Tensor('float32', input, [1, 3, 224, 224]) };
  const ortRun = async () => {
    const t0 = performance.now();
    const o = await session.run(feeds);
    return [performance.now() - t0, o.logits.data];
  };
  const [[ortFirst, ortLogits], ortDispatches] = await counted(ortRun);

  const esTimes = [];
  const ortTimes = [];
  for (let i = 0; i < warmup + runs; i++) {
    const [e, logits] = await esRun();
    const [o] = await ortRun();
    if (i >= warmup) {
      esTimes.push(e);
      ortTimes.push(o);
    }
    if (i === 0 && argmax(logits) !== argmax(Array.from(ortLogits))) {
      throw new Error(`top class differs: edgeserve ${argmax(logits)}, onnxruntime-web ${argmax(Array.from(ortLogits))}`);
    }
  }
  return {
    adapter: { vendor: info.vendor, architecture: info.architecture, isFallbackAdapter: adapter.isFallbackAdapter },
    runs,
    edgeserve: { medianMs: median(esTimes), insideMedianMs: median(esInside.slice(1 + warmup)), minMs: Math.min(...esTimes), loadMs: esLoad, firstMs: esFirst, dispatches: esDispatches },
    onnxruntimeWeb: { medianMs: median(ortTimes), minMs: Math.min(...ortTimes), loadMs: ortLoad, firstMs: ortFirst, dispatches: ortDispatches },
  };
}

publish(main);
