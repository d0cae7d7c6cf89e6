// The edge Worker under workerd against its peer, the native `edgeserve
// serve`, on the same Lite0 row request over loopback: requests/s and
// p50/p99 at each concurrency for a fixed time, interleaved host by host;
// the Worker's cold start (process start to the first answered predict),
// with Lite0 bundled and read from a store;
// its peak wasm memory for a Lite0 predict (the edge build in Node: wasm
// memory only grows, so its size after the run is the peak); and the
// compressed size of what a Worker deployment uploads. Not a test.
//
//   node benches/edge_workerd.mjs --server PATH [--seconds 10] [--connections 1,2]

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundle } from '../edge/build.mjs';
import { freePort, rowRequest, serveModels, spawnUntilReady, stopChild } from '../tests/js/support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const { values } = parseArgs({ options: { server: { type: 'string' }, seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '1,2' } } });
if (!values.server) throw new Error('--server PATH (the edgeserve binary) is required');
const seconds = Number(values.seconds);
const connections = values.connections.split(',').map(Number);

const body = rowRequest(readFileSync(path.join(shared, 'fixtures/inputs/chelsea_224_nchw_f32le.bin')), 224);
const PATH = '/v1/models/efficientnet-lite0:predict';

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function load(url, n) {
  const times = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const r = await fetch(url + PATH, { method: 'POST', body });
        if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
        await r.arrayBuffer();
        times.push(performance.now() - t);
      }
    }),
  );
  return { rps: times.length / seconds, p50: quantile(times, 0.5), p99: quantile(times, 0.99), n: times.length };
}

const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-edge-bench-'));
let native;
let workerd;
try {
  const name = 'efficientnet-lite0';
  native = await serveModels(values.server, work, [name]);

  /** Starts workerd on `edge/{config}`; `{ child, url, cold }`, cold = ms from spawn to the first predict answered. */
  const start = async (config) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const t0 = performance.now();
    const { child } = await spawnUntilReady(
      path.join(root, 'tests/js/node_modules/.bin/workerd'),
      ['serve', path.join(root, 'edge', config), '--socket-addr', `http=127.0.0.1:${port}`],
      // No API key in a benchmark on loopback: said explicitly, as the Worker requires.
      { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, env: { ...process.env, PUBLIC_ENDPOINT: 'true' } },
      () => fetch(url + PATH, { method: 'POST', body }).then((r) => r.status === 200),
      { tries: 600, everyMs: 50 },
    );
    return { child, url, cold: performance.now() - t0 };
  };

  // The Worker with no model inside, reading Lite0 from models/ through
  // workerd's disk service: its cold start includes reading the store.
  const storeJs = await bundle('worker-store.js');
  const stored = await start('store.capnp');
  await stopChild(stored.child);

  const workerJs = await bundle();
  const bundled = await start('config.capnp');
  workerd = bundled.child;
  const edge = bundled.url;
  const cold = bundled.cold;

  const rows = [];
  for (const n of connections) {
    const a = await load(edge, n);
    const b = await load(native.url, n);
    rows.push({ connections: n, workerd: a, native: b, ratio: a.rps / b.rps });
  }

  // Peak wasm memory of a Lite0 predict, in the same edge build.
  const glue = await import('../pkg/dist/edge/edgeserve.js');
  const wasm = glue.initSync({ module: await WebAssembly.compile(readFileSync(path.join(root, 'pkg/dist/edge/edgeserve_bg.wasm'))) });
  const before = wasm.memory.buffer.byteLength;
  const m = (f) => readFileSync(path.join(root, 'models', name, f));
  const c = await glue.RawClassifier.open(m(`${name}.onnx`), m('manifest.json').toString(), m('imagenet_labels.txt').toString(), { backend: 'wasm' }, undefined);
  await c.predict(body, undefined);
  const peak = wasm.memory.buffer.byteLength;

  const size = (f) => {
    const bytes = readFileSync(f);
    return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  };
  const code = [size(workerJs), size(path.join(root, 'pkg/dist/edge/edgeserve_bg.wasm')), size(storeJs)];
  const model = size(path.join(root, 'models', name, `${name}.onnx`));
  const mb = (b) => (b / 1e6).toFixed(2);
  console.log(`workerd cold start (process start to the first predict answered): ${cold.toFixed(0)} ms with Lite0 bundled, ${stored.cold.toFixed(0)} ms reading it from the store`);
  for (const r of rows) {
    console.log(
      `${r.connections} connection(s), ${seconds} s each: workerd ${r.workerd.rps.toFixed(1)} req/s (p50 ${r.workerd.p50.toFixed(1)} ms, p99 ${r.workerd.p99.toFixed(1)} ms), ` +
        `edgeserve serve ${r.native.rps.toFixed(1)} req/s (p50 ${r.native.p50.toFixed(1)} ms, p99 ${r.native.p99.toFixed(1)} ms); workerd/native ${r.ratio.toFixed(2)}x`,
    );
  }
  console.log(`peak wasm memory, Lite0 loaded and one predict: ${mb(peak)} MB (${mb(before)} MB at instantiation; limit 64 MB)`);
  console.log(`upload: worker-store.js ${mb(code[2].raw)} MB + edge wasm ${mb(code[1].raw)} MB = ${mb(code[2].gzip + code[1].gzip)} MB gzipped (limit 10 MB); worker.js with Lite0 bundled adds the model's ${mb(model.gzip)} MB gzipped`);
} finally {
  await stopChild(workerd);
  await native?.stop();
  rmSync(work, { recursive: true, force: true });
}
