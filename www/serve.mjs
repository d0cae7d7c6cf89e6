// Serves the demo on 127.0.0.1: the page (www/), the npm package (pkg/),
// the bundled models (models/), and TF Serving's REST paths (/v1/…)
// forwarded to a TF Serving endpoint (`--remote URL`, e.g. `edgeserve
// serve`), so the page's remote backend is same-origin and needs no CORS.
// Prints `demo: http://127.0.0.1:PORT/` once it listens; stops on SIGINT or
// SIGTERM.
//
//   node www/serve.mjs [--port 8080] [--remote http://127.0.0.1:8501]

import { createServer, request as httpRequest } from 'node:http';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { values } = parseArgs({
  options: { port: { type: 'string', default: '8080' }, remote: { type: 'string' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: expected 0-65535, got ${values.port}`);
  process.exit(2);
}
const remote = values.remote ? new URL(values.remote) : undefined;
if (remote && remote.protocol !== 'http:') {
  console.error(`--remote: expected an http:// URL, got ${values.remote}`);
  process.exit(2);
}

// Longest prefix first.
const MOUNTS = [
  ['/pkg/', path.join(root, 'pkg')],
  ['/models/', path.join(root, 'models')],
  ['/', here],
];
// What may be served from those trees (not serve.mjs, not package sources).
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function version() {
  const files = [
    ...readdirSync(here).map((f) => path.join(here, f)),
    ...['pkg/dist/edgeserve.js', 'pkg/dist/edgeserve_bg.wasm', 'pkg/dist/edgeserve_relaxed_bg.wasm', 'pkg/dist/edge/edgeserve.js', 'pkg/dist/edge/edgeserve_bg.wasm', 'pkg/dist/edge/edgeserve_relaxed_bg.wasm', 'pkg/dist/threads/edgeserve.js', 'pkg/dist/threads/edgeserve_bg.wasm', 'pkg/dist/threads/edgeserve_relaxed_bg.wasm', 'pkg/src/web.js', 'pkg/src/cpu.js', 'pkg/src/api.js', 'pkg/src/builds.js', 'pkg/src/threads.js', 'pkg/src/thread-web.js'].map((f) => path.join(root, f)),
  ];
  const hash = createHash('sha256');
  for (const f of files) if (existsSync(f) && statSync(f).isFile()) hash.update(`${f} ${statSync(f).size} ${statSync(f).mtimeMs}\n`);
  return hash.digest('hex').slice(0, 12);
}

function tfError(res, status, message) {
  const body = JSON.stringify({ error: message });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function forward(req, res) {
  if (!remote) return tfError(res, 503, 'this demo was started without a remote TF Serving endpoint (--remote)');
  const upstream = httpRequest(
    { hostname: remote.hostname, port: remote.port || 80, path: req.url, method: req.method, headers: { ...req.headers, host: remote.host } },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (e) => (res.headersSent ? res.destroy() : tfError(res, 502, `the remote TF Serving endpoint did not answer: ${e.message}`)));
  req.pipe(upstream);
}

// Cross-origin isolation (COOP and COEP), so that the page may share memory
// between threads: the engine's CPU backend then runs threaded.
const ISOLATED = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

const server = createServer((req, res) => {
  for (const [k, v] of Object.entries(ISOLATED)) res.setHeader(k, v);
  const url = new URL(req.url, 'http://x');
  if (url.pathname.startsWith('/v1/')) return forward(req, res);
  if (req.method !== 'GET' && req.method !== 'HEAD') return res.writeHead(405, { Allow: 'GET, HEAD' }).end();
  let pathname;
  try {
    pathname = decodeURIComponent(url.pathname);
  } catch {
    return res.writeHead(400).end('bad path');
  }
  const [prefix, dir] = MOUNTS.find(([p]) => pathname.startsWith(p));
  let file = path.join(dir, pathname.slice(prefix.length));
  if (file === here || file === `${here}${path.sep}`) file = path.join(here, 'index.html');
  const type = TYPES[path.extname(file)];
  if (!file.startsWith(dir) || !type || file.endsWith('serve.mjs') || !existsSync(file) || !statSync(file).isFile()) {
    return res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  }
  if (pathname === '/sw.js') {
    // A service worker is reinstalled only when its script changes, so its
    // cache is named after what it caches: a rebuilt package or an edited
    // page gets a fresh cache on the next visit.
    const body = readFileSync(file, 'utf8').replace("'edgeserve-demo-v1'", `'edgeserve-demo-${version()}'`);
    return res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-cache' }).end(body);
  }
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': statSync(file).size, 'Cache-Control': 'no-cache' });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file).pipe(res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`demo: http://127.0.0.1:${server.address().port}/${remote ? ` (remote: ${remote.origin})` : ''}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)).closeAllConnections());
