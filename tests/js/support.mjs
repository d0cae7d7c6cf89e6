// What the JS tests and the benchmarks share: a static file server on
// 127.0.0.1, the flags that run Debian's Chromium headless and offline, and
// starting and stopping the servers the tests talk to.

import { createServer, request as httpRequest } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Flags that keep Chromium off the network (shared/docs/platform.md), with WebGPU on. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-domain-reliability',
  '--enable-unsafe-webgpu',
];

const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.txt': 'text/plain',
};

/**
 * Serves `mounts` (URL prefix → directory, longest prefix first; a plain
 * directory means `{ '/': dir }`) on 127.0.0.1 at a free port. Files go
 * out with their length and MIME type, in 1 MiB pieces so downloads report
 * progress in steps; a directory serves its index.html; anything else is a
 * 404. `seen` lists the request paths; `close()` stops the server. With
 * `forward` (a base URL), TF Serving's paths (`/v1/…`) go to that server as
 * they are, as a site puts its model server behind its own origin.
 */
export async function serveStatic(mounts, { headers = {}, forward } = {}) {
  const table = Object.entries(typeof mounts === 'string' ? { '/': mounts } : mounts).sort(([a], [b]) => b.length - a.length);
  const seen = [];
  const server = createServer((req, res) => {
    seen.push(req.url);
    if (forward && req.url.startsWith('/v1/')) return forwardTo(forward, req, res);
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [prefix, dir] = table.find(([p]) => url.startsWith(p)) ?? [];
    let file = dir && path.join(dir, url.slice(prefix.length));
    if (file && existsSync(file) && statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file || !file.startsWith(dir) || !existsSync(file)) return res.writeHead(404).end('not found');
    const body = readFileSync(file);
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length });
    let at = 0;
    const next = () => (at >= body.length ? res.end() : res.write(body.subarray(at, (at += 1 << 20)), next));
    next();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((ok) => server.close(ok)) };
}

function forwardTo(base, req, res) {
  const to = new URL(base);
  const upstream = httpRequest({ hostname: to.hostname, port: to.port, path: req.url, method: req.method, headers: { ...req.headers, host: to.host } }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on('error', (e) => (res.headersSent ? res.destroy() : res.writeHead(502).end(`forwarding to ${base}: ${e.message}`)));
  req.pipe(upstream);
}

/**
 * Starts `bin` (a server that prints its `http://127.0.0.1:PORT` address on
 * stdout once it listens, and `edgeserve serve` its gRPC one on the same
 * line); `{ url, grpc, stop }`, `stop()` ending it by its process id.
 */
export async function startServer(bin, args) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const { url, grpc } = await new Promise((ok, fail) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      const m = l.match(/(http:\/\/127\.0\.0\.1:\d+)/);
      if (m) ok({ url: m[1], grpc: l.match(/gRPC on (127\.0\.0\.1:\d+)/)?.[1] });
    });
    child.on('exit', (code) => fail(new Error(`${bin} exited (${code}) before printing its address`)));
  });
  return { url, grpc, stop: () => stopChild(child) };
}

/** A free TCP port on 127.0.0.1 (for servers that cannot be told port 0). */
export async function freePort() {
  const server = createTcpServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/** A TF Serving row request (JSON text): one preprocessed NCHW float32 tensor (`3×size×size`, little-endian bytes) as its instance. */
export function rowRequest(bytes, size) {
  const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const plane = size * size;
  const instance = Array.from({ length: 3 }, (_, c) => Array.from({ length: size }, (_, y) => Array.from(x.subarray(c * plane + y * size, c * plane + y * size + size))));
  return JSON.stringify({ instances: [instance] });
}

/**
 * `edgeserve serve` (`bin`) on 127.0.0.1 serving the repository's bundled
 * models `names` (each as version 1, copied under `work`, listed in a TF
 * Serving model_config_list); `stop()` ends it by its pid.
 */
export async function serveModels(bin, work, names) {
  const models = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models');
  const configs = names.map((name) => {
    mkdirSync(path.join(work, name, '1'), { recursive: true });
    for (const f of [`${name}.onnx`, 'manifest.json', 'imagenet_labels.txt']) copyFileSync(path.join(models, name, f), path.join(work, name, '1', f));
    return `  config { name: "${name}" base_path: "${path.join(work, name)}" model_platform: "onnx" }`;
  });
  const file = path.join(work, 'models.config');
  writeFileSync(file, `model_config_list {\n${configs.join('\n')}\n}\n`);
  return startServer(bin, ['serve', '--rest_api_port', '0', '--port', '0', '--model_config_file', file]);
}

/**
 * Stops a child process (one that prints no address, as workerd) by its
 * pid; with `group`, the process group it leads (spawned `detached`).
 */
export async function stopChild(child, { group = false } = {}) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  // A child spawned `detached` leads its own process group: the group's id
  // is its pid, and the signal reaches what it started too.
  process.kill(group ? -child.pid : child.pid, 'SIGTERM');
  await exited;
  // The leader's exit does not wait for the rest of its group.
  for (let i = 0; group && i < 100; i++) {
    try {
      process.kill(-child.pid, 0);
    } catch {
      return;
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
  try {
    if (group) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Gone between the last look and now.
  }
}

/**
 * Spawns `bin args` (`options` as `spawn` takes them; with `group`, as the
 * leader of its own process group) and polls `ready()` every `everyMs` until
 * it gives something truthy, which is returned with the child as `{ child,
 * ready }`. A child that exits first or is not ready after `tries` polls is
 * stopped, and the promise rejects.
 */
export async function spawnUntilReady(bin, args, options, ready, { tries = 200, everyMs = 100, group = false } = {}) {
  const child = spawn(bin, args, { ...options, detached: group });
  for (let i = 0; i < tries && child.exitCode === null; i++) {
    const answer = await ready().catch(() => undefined);
    if (answer) return { child, ready: answer };
    await new Promise((ok) => setTimeout(ok, everyMs));
  }
  await stopChild(child, { group });
  throw new Error(`${path.basename(bin)} ${args.join(' ')}: not ready after ${tries} tries, ${everyMs} ms apart`);
}

/**
 * The package as npm packs it (`npm pack` in pkg/, its prepack check
 * included, over the dist/ already built: EDGESERVE_PACK_BUILD=none): the
 * tarball `./x test` packed (EDGESERVE_TARBALL), or one packed now into
 * `dir`. Resolves to its path.
 */
export function packedTarball(dir) {
  if (process.env.EDGESERVE_TARBALL) return process.env.EDGESERVE_TARBALL;
  const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../pkg');
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: pkg, env: { ...process.env, EDGESERVE_PACK_BUILD: 'none' }, encoding: 'utf8' });
  return path.join(dir, JSON.parse(out)[0].filename);
}

/**
 * A fresh project in `dir` (an ES module package) with the packed
 * `tarball` installed as a user installs it: `npm install <tarball>`, a copy
 * in node_modules, not a link to the source.
 */
export function installInto(dir, tarball) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}
