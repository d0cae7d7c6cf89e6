// The edge Worker (edge/worker.js) under real workerd with the committed
// edge/config.capnp: Lite0 answered in the isolate, Lite2 forwarded to an
// origin that wants credentials (the fault proxy requiring an
// Authorization header, in front of `edgeserve serve`), and every refusal.
// The same `edgeserve serve` also serves Lite0, so the Worker's local
// answers are compared byte for byte with the native server's: one
// handler, two hosts. Every process is started here on 127.0.0.1 and
// stopped by its pid.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync, gzipSync } from 'node:zlib';
import { bundle } from '../../edge/build.mjs';
import { freePort, rowRequest as row, serveModels, spawnUntilReady, startServer, stopChild } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const bin = process.env.EDGESERVE_BIN;
const proxyBin = process.env.EDGESERVE_FAULT_PROXY_BIN;
const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models;

const ORIGIN_SECRET = 'Bearer origin-secret-7f3a';
const API_KEY = 'client-key-19c2';
const APP = 'https://app.example';

/** The shared fixture's preprocessed tensor as a TF Serving row request. */
const rowRequest = (file, size) => row(readFileSync(path.join(shared, 'fixtures/inputs', file)), size);

/**
 * POSTs an oversized body as curl does, with `Expect: 100-continue`: a
 * server that refuses it by its Content-Length answers before the upload
 * (fetch cannot do this, and a plain upload races the early answer against
 * the reset that follows it). Sent anyway after 1 s without an answer.
 */
function postEarlyAnswer(url, headers, body) {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method: 'POST', agent: false, headers: { ...headers, 'content-length': body.length, expect: '100-continue' } }, (res) => {
      clearTimeout(timer);
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => ok({ status: res.statusCode, text, uploaded: sent }));
    });
    let sent = false;
    const send = () => {
      if (!sent) req.end(body);
      sent = true;
    };
    const timer = setTimeout(send, 1000);
    req.on('continue', send);
    req.on('error', fail);
  });
}

/**
 * Starts workerd on `edge/{config}` with its socket on a free port of
 * 127.0.0.1 and waits until it answers; `{ child, base }`.
 */
async function startWorkerd(config, args, env) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const { child } = await spawnUntilReady(
    path.join(here, 'node_modules/.bin/workerd'),
    ['serve', path.join(root, 'edge', config), '--socket-addr', `http=127.0.0.1:${port}`, ...args],
    { stdio: ['ignore', 'inherit', 'inherit'], cwd: root, env: { ...process.env, ...env } },
    () => fetch(`${base}/v1/models/efficientnet-lite0`).then(() => true),
  );
  return { child, base };
}

const top5 = (logits) => logits.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([, i]) => i);

test('the Worker serves Lite0 itself, proxies Lite2 with the origin credentials, and refuses the rest', { timeout: 300_000, skip: !(bin && proxyBin) && 'EDGESERVE_BIN and EDGESERVE_FAULT_PROXY_BIN are not set (./x test sets them)' }, async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-edge-'));
  let tfs;
  let origin;
  let workerd;
  try {
    await bundle();
    tfs = await serveModels(bin, work, ['efficientnet-lite0', 'efficientnet-lite2']);
    origin = await startServer(proxyBin, ['--upstream', new URL(tfs.url).host, '--require-header', `authorization:${ORIGIN_SECRET}`]);
    let base;
    ({ child: workerd, base } = await startWorkerd('config.capnp', ['--external-addr', `origin=${new URL(origin.url).host}`], {
      ORIGIN_AUTHORIZATION: ORIGIN_SECRET,
      ALLOWED_ORIGINS: `${APP}, https://other.example`,
      API_KEY,
      MAX_BODY_BYTES: '4000000',
    }));

    const call = (p, { method = 'GET', body, headers = {} } = {}) => fetch(`${base}${p}`, { method, body, headers: { 'x-api-key': API_KEY, ...headers } });
    const direct = (p, { method = 'GET', body } = {}) => fetch(`${tfs.url}${p}`, { method, body });
    // The Worker's answer and the native server's: the same status, type
    // and bytes; predictions only within 1e-4 (wasm's SIMD kernels and
    // AVX-512's round differently).
    const same = async (p, options) => {
      const [a, b] = await Promise.all([call(p, options), direct(p, options)]);
      const [ta, tb] = [await a.text(), await b.text()];
      assert.equal(a.status, b.status, `${p}: ${ta}`);
      assert.equal(a.headers.get('content-type'), b.headers.get('content-type'));
      if (a.status === 200 && p.endsWith(':predict')) {
        const [pa, pb] = [JSON.parse(ta).predictions.flat(), JSON.parse(tb).predictions.flat()];
        assert.equal(pa.length, pb.length);
        assert.ok(pa.every((v, i) => Math.abs(v - pb[i]) < 1e-4), p);
      } else {
        assert.equal(ta, tb, p);
      }
      return [a.status, ta];
    };
    const lite0Row = rowRequest('chelsea_224_nchw_f32le.bin', 224);
    const stillWorks = async () => {
      const r = await call('/v1/models/efficientnet-lite0:predict', { method: 'POST', body: lite0Row });
      assert.equal(r.status, 200);
      assert.deepEqual(top5((await r.json()).predictions[0]), reference['efficientnet-lite0.onnx'].results.chelsea.top5.map((c) => c.index));
    };

    await t.test('Lite0 runs in the isolate: the photo as a row request gives the reference top-5, as the native server answers', async () => {
      await stillWorks();
      const [status, body] = await same('/v1/models/efficientnet-lite0:predict', { method: 'POST', body: lite0Row });
      assert.equal(status, 200);
      assert.ok(body.length > 1000);
      await same('/v1/models/efficientnet-lite0');
      await same('/v1/models/efficientnet-lite0/metadata');
      await same('/v1/models/efficientnet-lite0/versions/1/metadata');
    });

    await t.test('Lite2 goes to the origin with its credentials, which never come back', async () => {
      const lite2Row = rowRequest('chelsea_260_nchw_f32le.bin', 260);
      const viaWorker = await call('/v1/models/efficientnet-lite2:predict', { method: 'POST', body: lite2Row, headers: { authorization: 'Bearer client-guess', origin: APP } });
      const text = await viaWorker.text();
      assert.equal(viaWorker.status, 200, text);
      assert.equal(viaWorker.headers.get('x-origin-saw'), null);
      assert.ok(!text.includes('origin-secret'));
      assert.equal(viaWorker.headers.get('access-control-allow-origin'), APP);
      const answer = JSON.parse(text);
      assert.deepEqual(top5(answer.predictions[0]), reference['efficientnet-lite2.onnx'].results.chelsea.top5.map((c) => c.index));
      // The same request straight to the native server: the same answer.
      assert.deepEqual(answer, await (await direct('/v1/models/efficientnet-lite2:predict', { method: 'POST', body: lite2Row })).json());
      // The origin does refuse requests without the secret, and it saw the
      // Worker's, not the client's.
      assert.equal((await fetch(`${origin.url}/v1/models/efficientnet-lite2`)).status, 401);
      const log = await (await fetch(`${origin.url}/faults/log`)).text();
      assert.match(log, /^POST \/v1\/models\/efficientnet-lite2:predict Pass$/m);
      const meta = await call('/v1/models/efficientnet-lite2/metadata');
      assert.equal(meta.status, 200);
      assert.equal((await meta.json()).model_spec.name, 'efficientnet-lite2');
    });

    await t.test('refusals: unknown model, body over the limit, API key, CORS origin, malformed JSON; the isolate keeps working', async () => {
      // Unknown model: TF Serving's 404, as the native server words it.
      const [status] = await same('/v1/models/resnet50:predict', { method: 'POST', body: lite0Row });
      assert.equal(status, 404);
      await stillWorks();

      for (const model of ['efficientnet-lite0', 'efficientnet-lite2']) {
        const big = await postEarlyAnswer(`${base}/v1/models/${model}:predict`, { 'x-api-key': API_KEY }, Buffer.alloc(5_000_000));
        assert.equal(big.status, 413, big.text);
        assert.equal(big.uploaded, false, 'refused by its Content-Length, before the upload');
        assert.match(JSON.parse(big.text).error, /over the 4000000 bytes allowed/);
      }
      await stillWorks();

      const noKey = await fetch(`${base}/v1/models/efficientnet-lite0`);
      assert.equal(noKey.status, 401);
      assert.match((await noKey.json()).error, /API key is required/);
      const badKey = await call('/v1/models/efficientnet-lite0', { headers: { 'x-api-key': 'guess' } });
      assert.equal(badKey.status, 401);
      assert.match((await badKey.json()).error, /not valid/);

      const preflight = await fetch(`${base}/v1/models/efficientnet-lite0:predict`, { method: 'OPTIONS', headers: { origin: APP, 'access-control-request-method': 'POST' } });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), APP);
      assert.match(preflight.headers.get('access-control-allow-headers'), /X-API-Key/);
      const evil = await call('/v1/models/efficientnet-lite0', { headers: { origin: 'https://evil.example' } });
      assert.equal(evil.status, 403);
      assert.equal(evil.headers.get('access-control-allow-origin'), null);
      const evilPreflight = await fetch(`${base}/v1/models/efficientnet-lite0:predict`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
      assert.equal(evilPreflight.status, 403);

      // Malformed JSON: TF Serving's 400 and error body, word for word.
      const [bad, body] = await same('/v1/models/efficientnet-lite0:predict', { method: 'POST', body: '{"instances": [1, 2' });
      assert.equal(bad, 400);
      assert.ok(JSON.parse(body).error.length > 0);
      await same('/v1/models/efficientnet-lite0:predict', { method: 'POST', body: '{"inputs": {"wrong": [1]}}' });
      await same('/v1/models/efficientnet-lite0/versions/7');
      await stillWorks();
    });
  } finally {
    await stopChild(workerd);
    await origin?.stop();
    await tfs?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

test('the store-backed Worker reads Lite0 from a directory, checks its SHA-256, and names a bad or missing file', { timeout: 300_000 }, async (t) => {
  await bundle('worker-store.js');
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-store-'));
  // Three stores: the model as shipped, one byte of it changed, and no model file.
  const lite0 = path.join(root, 'models/efficientnet-lite0');
  const store = (name, change) => {
    const dir = path.join(work, name, 'efficientnet-lite0');
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(lite0)) copyFileSync(path.join(lite0, f), path.join(dir, f));
    change?.(dir);
    return path.join(work, name);
  };
  const good = store('good');
  const tampered = store('tampered', (dir) => {
    const file = path.join(dir, 'efficientnet-lite0.onnx');
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(file, bytes);
  });
  const missing = store('missing', (dir) => rmSync(path.join(dir, 'efficientnet-lite0.onnx')));
  const body = rowRequest('chelsea_224_nchw_f32le.bin', 224);
  const predict = (base) => fetch(`${base}/v1/models/efficientnet-lite0:predict`, { method: 'POST', body });
  const withStore = async (dir, check) => {
    const { child, base } = await startWorkerd('store.capnp', ['--directory-path', `model-store=${dir}`], { PUBLIC_ENDPOINT: 'true' });
    try {
      await check(base);
    } finally {
      await stopChild(child);
    }
  };
  try {
    await t.test('the stored model answers with the reference top-5', () =>
      withStore(good, async (base) => {
        const r = await predict(base);
        assert.equal(r.status, 200);
        assert.deepEqual(top5((await r.json()).predictions[0]), reference['efficientnet-lite0.onnx'].results.chelsea.top5.map((c) => c.index));
        assert.equal((await fetch(`${base}/v1/models/efficientnet-lite2`)).status, 404);
      }));
    await t.test('a changed byte fails the SHA-256 check: 503 naming it, on every request, and the isolate still answers', () =>
      withStore(tampered, async (base) => {
        for (let i = 0; i < 2; i++) {
          const r = await predict(base);
          assert.equal(r.status, 503);
          assert.match((await r.json()).error, /could not be loaded: model file does not match its manifest: efficientnet-lite0\.onnx has sha256 [0-9a-f]{64}, the manifest says ad5c487b/);
        }
      }));
    await t.test('a missing model file: 503 naming the store key', () =>
      withStore(missing, async (base) => {
        const r = await predict(base);
        assert.equal(r.status, 503);
        assert.match((await r.json()).error, /MODEL_STORE has no efficientnet-lite0\/efficientnet-lite0\.onnx \(status 404\)/);
      }));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('MODELS are routed by edgeserve: Lite2 over the 20 MB budget goes to the origin, within a larger one it runs here, and each answer says why', { timeout: 600_000, skip: !bin && 'EDGESERVE_BIN is not set (./x test sets it)' }, async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-route-'));
  let tfs;
  try {
    await bundle('worker-store.js');
    tfs = await serveModels(bin, work, ['efficientnet-lite2']);
    const lite2Row = rowRequest('chelsea_260_nchw_f32le.bin', 260);
    const want = reference['efficientnet-lite2.onnx'].results.chelsea.top5.map((c) => c.index);
    const withRoutes = async (env, check) => {
      const { child, base } = await startWorkerd('store.capnp', ['--directory-path', `model-store=${path.join(root, 'models')}`, '--external-addr', `origin=${new URL(tfs.url).host}`], {
        PUBLIC_ENDPOINT: 'true',
        ...env,
      });
      try {
        await check(base);
      } finally {
        await stopChild(child);
      }
    };
    const predict = async (base) => {
      const r = await fetch(`${base}/v1/models/efficientnet-lite2:predict`, { method: 'POST', body: lite2Row });
      const text = await r.text();
      assert.equal(r.status, 200, text);
      assert.deepEqual(top5(JSON.parse(text).predictions[0]), want);
      return r.headers.get('x-edgeserve-route');
    };
    await t.test('over the default budget: the origin answers, and the route says so', () =>
      withRoutes({ MODELS: 'efficientnet-lite2' }, async (base) => {
        assert.equal(await predict(base), 'remote: model 24.3 MB > local budget 20.0 MB');
        const status = await fetch(`${base}/v1/models/efficientnet-lite2`);
        assert.equal(status.headers.get('x-edgeserve-route'), 'remote: model 24.3 MB > local budget 20.0 MB');
        // The model configured to run here is unaffected, and says nothing.
        const lite0 = await fetch(`${base}/v1/models/efficientnet-lite0:predict`, { method: 'POST', body: rowRequest('chelsea_224_nchw_f32le.bin', 224) });
        assert.equal(lite0.status, 200);
        assert.equal(lite0.headers.get('x-edgeserve-route'), null);
      }));
    await t.test('within MAX_LOCAL_MODEL_BYTES: it runs in the isolate', () =>
      withRoutes({ MODELS: 'efficientnet-lite2', MAX_LOCAL_MODEL_BYTES: '30000000' }, async (base) => {
        assert.equal(await predict(base), 'cpu: model 24.3 MB <= local budget 30.0 MB');
      }));
    await t.test('a name in both LOCAL_MODELS and MODELS, or a bad budget, is a misconfiguration', async () => {
      await withRoutes({ MODELS: 'efficientnet-lite0' }, async (base) => {
        const r = await fetch(`${base}/v1/models/efficientnet-lite0`);
        assert.equal(r.status, 500);
        assert.match((await r.json()).error, /efficientnet-lite0 is in both LOCAL_MODELS and MODELS/);
      });
      await withRoutes({ MODELS: 'efficientnet-lite2', MAX_LOCAL_MODEL_BYTES: 'lots' }, async (base) => {
        const r = await fetch(`${base}/v1/models/efficientnet-lite2`);
        assert.equal(r.status, 500);
        assert.match((await r.json()).error, /MAX_LOCAL_MODEL_BYTES: expected a byte count, got lots/);
      });
    });
  } finally {
    await tfs?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

/** A PNG of one grey level, `width`×`height`, made by hand (a few KB for millions of pixels). */
function greyPng(width, height) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // 8-bit greyscale
  const row = Buffer.alloc(width + 1, 0x80);
  row[0] = 0;
  const idat = deflateSync(Buffer.concat(Array.from({ length: height }, () => row)), { level: 9 });
  return Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

/** A GIF whose logical screen is `side`² around a 1-pixel frame: a few dozen bytes, a whole screen decoded. */
function screenGif(side) {
  const le = (n) => [n & 0xff, n >> 8];
  return Buffer.from([...Buffer.from('GIF89a'), ...le(side), ...le(side), 0x80, 0, 0, 0, 0, 0, 255, 255, 255, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3b]);
}

/** A baseline grey JPEG header of `side`² cut off 2,000 bytes into its scan (no end marker). */
function truncatedJpeg(side) {
  const be = (n) => [n >> 8, n & 0xff];
  const dht = (tableClass) => [0xff, 0xc4, 0, 20, tableClass, 1, ...new Array(15).fill(0), 0];
  return Buffer.from([
    0xff, 0xd8,
    0xff, 0xdb, 0, 67, 0, ...new Array(64).fill(1),
    0xff, 0xc0, 0, 11, 8, ...be(side), ...be(side), 1, 1, 0x11, 0,
    ...dht(0x00), ...dht(0x10),
    0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0,
    ...new Array(2000).fill(0),
  ]);
}

/** The process that is workerd itself: `pid`, or the one its npm launcher started. */
function workerdPid(pid) {
  if (!path.basename(readlinkSync(`/proc/${pid}/exe`)).startsWith('node')) return pid;
  return Number(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]);
}

const statusMb = (pid, field) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))[1]) / 1024;

/**
 * Runs `send()` with the process's peak resident size reset first (Linux's
 * clear_refs 5); `{ answer, growth }`: what `send` gave, and how far the peak
 * rose above the resident size before, in MB.
 */
async function peakGrowth(pid, send) {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const before = statusMb(pid, 'VmRSS');
  const answer = await send();
  return { answer, growth: statusMb(pid, 'VmHWM') - before };
}

// Why Python and not node:http: a server that refuses an upload mid-stream
// answers and then resets the connection, and Node destroys a socket on the
// first failed write (EPIPE), dropping an answer that had already arrived.
// A Python socket survives the failed send, and Linux still hands over the
// bytes received before the reset.
const POST_CHUNKED_PY = `
import json, select, socket, sys
host, port, target, headers, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection((host, port), timeout=60)
head = f"POST {target} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\nTransfer-Encoding: chunked\\r\\nConnection: close\\r\\n"
head += "".join(f"{k}: {v}\\r\\n" for k, v in headers.items()) + "\\r\\n"
chunk = b"10000\\r\\n" + b"0" * 65536 + b"\\r\\n"
sent = 0
try:
    s.sendall(head.encode())
    while sent < size and not select.select([s], [], [], 0)[0]:
        s.sendall(chunk)
        sent += 65536
    s.sendall(b"0\\r\\n\\r\\n")
except OSError:
    pass
got = b""
try:
    while (b := s.recv(65536)):
        got += b
except OSError:
    pass
top, _, body = got.partition(b"\\r\\n\\r\\n")
lines = top.decode("latin-1").split("\\r\\n")
fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
if fields.get("transfer-encoding", "").lower() == "chunked":
    text, rest = b"", body
    while True:
        n, _, rest = rest.partition(b"\\r\\n")
        n = int(n.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        text, rest = text + rest[:n], rest[n + 2:]
else:
    text = body[: int(fields.get("content-length", len(body)))]
print(json.dumps({"status": int(lines[0].split()[1]) if lines[0] else 0, "sent": sent, "text": text.decode("utf-8", "replace")}))
`;

/** POSTs up to `size` bytes with no Content-Length (chunked, 64 KiB at a time, stopping once an answer arrives); `{ status, sent, text }`. */
function postChunked(url, headers, size) {
  const u = new URL(url);
  return new Promise((ok, fail) => {
    execFile('python3', ['-c', POST_CHUNKED_PY, u.hostname, u.port, u.pathname, JSON.stringify(headers), String(size)], { timeout: 120_000 }, (e, stdout, stderr) => {
      if (e) return fail(new Error(`the chunked upload failed: ${e.message}\n${stderr}`));
      ok(JSON.parse(stdout));
    });
  });
}

test('hostile configurations and origins: no API_KEY without PUBLIC_ENDPOINT, chunked bodies over the limit, redirects and dead origins', { timeout: 300_000, skip: !(bin && proxyBin) && 'EDGESERVE_BIN and EDGESERVE_FAULT_PROXY_BIN are not set (./x test sets them)' }, async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-edge-hostile-'));
  let tfs;
  let origin;
  let workerd;
  try {
    await bundle();
    await t.test('without API_KEY the Worker refuses every request unless PUBLIC_ENDPOINT says it is public', async () => {
      const { child, base } = await startWorkerd('config.capnp', ['--external-addr', 'origin=127.0.0.1:9'], {});
      try {
        const r = await fetch(`${base}/v1/models/efficientnet-lite0`);
        assert.equal(r.status, 500);
        assert.match((await r.json()).error, /misconfigured: API_KEY is not set: set it .*or set PUBLIC_ENDPOINT to "true"/);
      } finally {
        await stopChild(child);
      }
    });

    tfs = await serveModels(bin, work, ['efficientnet-lite2']);
    // The origin answers the first POST with a redirect, then passes.
    origin = await startServer(proxyBin, ['--upstream', new URL(tfs.url).host, '--post', '307,pass']);
    let base;
    ({ child: workerd, base } = await startWorkerd('config.capnp', ['--external-addr', `origin=${new URL(origin.url).host}`], {
      ORIGIN_AUTHORIZATION: ORIGIN_SECRET,
      API_KEY,
      MAX_BODY_BYTES: '4000000',
    }));
    const lite2 = `${base}/v1/models/efficientnet-lite2:predict`;
    const body = rowRequest('chelsea_260_nchw_f32le.bin', 260);
    const post = () => fetch(lite2, { method: 'POST', body, headers: { 'x-api-key': API_KEY } });

    await t.test('a redirect from the origin is not followed: 502, and the next request passes', async () => {
      const r = await post();
      assert.equal(r.status, 502);
      assert.equal((await r.json()).error, 'the origin TF Serving answered with a redirect (307), which is not followed');
      assert.equal((await post()).status, 200);
    });

    await t.test('a chunked body over MAX_BODY_BYTES is refused while it streams', async () => {
      const big = await postChunked(lite2, { 'x-api-key': API_KEY }, 6_000_000);
      assert.equal(big.status, 413, big.text);
      assert.match(JSON.parse(big.text).error, /over the 4000000 bytes allowed/);
      const log = await (await fetch(`${origin.url}/faults/log`)).text();
      assert.equal(log.trim().split('\n').filter((l) => l.startsWith('POST')).length, 2, `only the two requests above reached the origin:\n${log}`);
    });

    await t.test("the isolate's budgets: every hostile row is refused or answered within 72 MB over the isolate's size, and Lite0 still answers", async () => {
      const lite0 = (verb, body, headers = {}) => fetch(`${base}/v1/models/efficientnet-lite0:${verb}`, { method: 'POST', body, headers: { 'x-api-key': API_KEY, ...headers } });
      const images = (list, context) => JSON.stringify({ ...(context && { context: { 'image/encoded': { b64: context.toString('base64') } } }), examples: list.map((b) => (b ? { 'image/encoded': { b64: b.toString('base64') } } : {})) });
      const photo = readFileSync(path.join(shared, 'fixtures/images/coffee_orig.png'));
      const espresso = async () => {
        const ok = await lite0('classify', images([photo]));
        assert.equal(ok.status, 200);
        assert.equal((await ok.json()).results[0][0][0], 'espresso');
      };
      await espresso();
      // Each row: what is sent, the answer wanted, and its error's text.
      const rows = [
        ['2100² PNG, over the 4 MP limit', () => lite0('classify', images([greyPng(2100, 2100)])), 400, /the image is 2100x2100 = 4410000 pixels, over the limit of 4000000 pixels/],
        ['1 × 3,999,999 PNG (one pixel wide)', () => lite0('classify', images([greyPng(1, 3_999_999)])), 200],
        ['1900² context, 16 examples', () => lite0('classify', images(new Array(16).fill(undefined), greyPng(1900, 1900))), 200],
        ['17 examples', () => lite0('classify', images(new Array(17).fill(undefined), greyPng(8, 8))), 400, /the request has 17 images, over the limit of 16 a request/],
        ['16 GIFs of a 1900² screen', () => lite0('classify', images(new Array(16).fill(screenGif(1900)))), 400, /the request's images hold more than 16000000 pixels together/],
        ['16 cut-off JPEGs of 1900²', () => lite0('classify', images(new Array(16).fill(truncatedJpeg(1900)))), 400, /cannot decode the JPEG image: the data ends after 2138 bytes/],
        ['gzip of 2M zeros', () => lite0('predict', gzipSync(`{"instances": [0${',0'.repeat(2_000_000)}]}`), { 'content-encoding': 'gzip' }), 400, /The request holds more than 524288 JSON values/],
        ['60 KB model name', () => fetch(`${base}/v1/models/${'m'.repeat(60_000)}:predict`, { method: 'POST', body: '{"instances": [1]}', headers: { 'x-api-key': API_KEY } }), 404, /^(?=[^]{1,400}$)[^]*mmm/],
      ];
      const pid = workerdPid(workerd.pid);
      const table = [];
      for (const [row, send, status, text] of rows) {
        const { answer, growth } = await peakGrowth(pid, send);
        const body = await answer.json();
        assert.equal(answer.status, status, `${row}: ${JSON.stringify(body).slice(0, 300)}`);
        if (text) assert.match(body.error, text, row);
        if (status === 200) assert.equal(body.results.length, row.includes('16 examples') ? 16 : 1, row);
        table.push(`${row}: ${answer.status}, peak ${growth.toFixed(1)} MB over ${statusMb(pid, 'VmRSS').toFixed(0)} MB resident`);
        // A Worker has 128 MB; Lite0 loaded takes ~56 of them.
        assert.ok(growth <= 72, `${row}: the peak rose ${growth.toFixed(1)} MB`);
        await espresso();
      }
      console.log(`workerd, per hostile row:\n  ${table.join('\n  ')}`);
    });

    await t.test('an origin that does not answer: 502 without the reason (it stays in the log)', async () => {
      await origin.stop();
      origin = undefined;
      const r = await post();
      assert.equal(r.status, 502);
      assert.deepEqual(await r.json(), { error: 'the origin TF Serving did not answer' });
      // The isolate still serves its own model.
      assert.equal((await fetch(`${base}/v1/models/efficientnet-lite0`, { headers: { 'x-api-key': API_KEY } })).status, 200);
    });
  } finally {
    await stopChild(workerd);
    await origin?.stop();
    await tfs?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

/** Runs wrangler (tests/js's, 4.86: the last for Node 20) with `args`; its output. */
function wrangler(args) {
  return new Promise((ok, fail) => {
    const child = spawn(path.join(here, 'node_modules/.bin/wrangler'), args, { cwd: root, env: WRANGLER_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', fail);
    child.on('exit', (code) => (code === 0 ? ok(out) : fail(new Error(`wrangler ${args.join(' ')} exited with ${code}:\n${out}`))));
  });
}

// No metrics, no update checks that would need the network.
const WRANGLER_ENV = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };

test('wrangler.jsonc: wrangler bundles the store Worker under the upload limit, and under wrangler dev it serves Lite0 from a local R2 bucket', { timeout: 300_000 }, async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-wrangler-'));
  const config = path.join(root, 'edge/wrangler.jsonc');
  let dev;
  try {
    await t.test('deploy --dry-run: the bundle and its size', async () => {
      const out = await wrangler(['deploy', '--dry-run', '--outdir', path.join(work, 'bundle'), '-c', config]);
      const [, , gzipKiB] = out.match(/Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/) ?? [];
      assert.ok(gzipKiB, out);
      assert.ok(Number(gzipKiB) < 10 * 1024, `${gzipKiB} KiB gzipped is over Workers' 10 MB`);
      assert.match(out, /env\.MODEL_STORE \(edgeserve-models\)\s+R2 Bucket/);
      const files = readdirSync(path.join(work, 'bundle'));
      assert.ok(files.includes('worker-store.js'), files.join(', '));
      assert.ok(files.some((f) => f.endsWith('edgeserve_bg.wasm')), files.join(', '));
      // No model inside: the Worker and the edge wasm alone.
      assert.ok(!files.some((f) => f.endsWith('.onnx')), files.join(', '));
    });

    await t.test('wrangler dev with the bucket filled as the comments say: the reference top-5', async () => {
      const state = path.join(work, 'state');
      const lite0 = path.join(root, 'models/efficientnet-lite0');
      for (const f of ['manifest.json', 'efficientnet-lite0.onnx', 'imagenet_labels.txt']) {
        await wrangler(['r2', 'object', 'put', `edgeserve-models/efficientnet-lite0/${f}`, '--file', path.join(lite0, f), '--local', '--persist-to', state, '-c', config]);
      }
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      // Its own process group: wrangler runs workerd as a child of its own.
      let status;
      ({ child: dev, ready: status } = await spawnUntilReady(
        path.join(here, 'node_modules/.bin/wrangler'),
        ['dev', '-c', config, '--ip', '127.0.0.1', '--port', String(port), '--persist-to', state, '--show-interactive-dev-session=false', '--var', 'PUBLIC_ENDPOINT:true'],
        { cwd: root, env: WRANGLER_ENV, stdio: ['ignore', 'inherit', 'inherit'] },
        () => fetch(`${base}/v1/models/efficientnet-lite0`).then((r) => r.status),
        { tries: 600, group: true },
      ));
      assert.equal(status, 200, 'wrangler dev did not serve the model status');
      const r = await fetch(`${base}/v1/models/efficientnet-lite0:predict`, { method: 'POST', body: rowRequest('chelsea_224_nchw_f32le.bin', 224) });
      assert.equal(r.status, 200);
      assert.deepEqual(top5((await r.json()).predictions[0]), reference['efficientnet-lite0.onnx'].results.chelsea.top5.map((c) => c.index));
      // Not in LOCAL_MODELS or PROXY_MODELS: refused, as TF Serving does.
      assert.equal((await fetch(`${base}/v1/models/resnet50`)).status, 404);
    });
  } finally {
    await stopChild(dev, { group: true });
    rmSync(work, { recursive: true, force: true });
  }
});
