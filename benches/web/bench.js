// The CPU benchmark's page (cross-origin isolated by the driver): each row
// runs in a dedicated Worker of its own (cpu-worker.js), where edgeserve's
// threaded build may run and both engines start fresh. Parameters come from
// the query string; the rows are left on window.benchResult for the driver.
import { publish } from './common.js';

const q = new URLSearchParams(location.search);
const runs = Number(q.get('runs') ?? 30);
const warmup = Number(q.get('warmup') ?? 5);
// Quiet before each timed call, in ms (cpu-worker.js says why).
const settleMs = Number(q.get('settle') ?? 30);
// Rows as `build:threads:ortThreads`, e.g. relaxed-simd:2:2,simd128:1:1.
const models = (q.get('models') ?? 'lite0').split(',');
const rows = (q.get('rows') ?? 'relaxed-simd:2:2,simd128:2:2,relaxed-simd:1:2').split(',').map((r) => {
  const [build, threads, ortThreads] = r.split(':');
  return { build, threads: Number(threads), ortThreads: Number(ortThreads) };
});

function inWorker(params) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./cpu-worker.js', import.meta.url), { type: 'module' });
    worker.onmessage = ({ data }) => {
      worker.terminate();
      if (data.error) reject(new Error(data.error));
      else resolve(data);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(`the row's worker failed: ${e.message}`));
    };
    worker.postMessage(params);
  });
}

publish(async () => {
  const out = [];
  for (const model of models) for (const row of rows) out.push(await inWorker({ runs, warmup, settleMs, model, ...row }));
  return out;
});
