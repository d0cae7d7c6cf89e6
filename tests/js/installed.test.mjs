// The package as a user meets it: `npm pack` (with its prepack check), the
// tarball installed with `npm install` into fresh projects (a copy in
// node_modules, never a link to pkg/), and used there as each kind of
// project uses it: a Node ESM script, three TypeScript projects under
// `tsc --strict` (DOM, Node, Workers), a plain page that imports it through
// an import map as from a CDN (with a module Web Worker and the model
// cache, in Chromium), and the README's Worker under `wrangler dev`. Every
// one classifies the sample photo to onnxruntime's top-5.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS, freePort, installInto, packedTarball, serveStatic, spawnUntilReady, stopChild } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const want = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite0.onnx'].results.coffee.top5.map((c) => c.index);
const lite0 = path.join(root, 'models/efficientnet-lite0');
const coffee = path.join(root, 'www/samples/coffee_orig.png');
const pkgJson = JSON.parse(readFileSync(path.join(root, 'pkg/package.json'), 'utf8'));

const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-installed-'));
const tarball = packedTarball(work);
const project = installInto(path.join(work, 'consumer'), tarball);
const installed = path.join(project, 'node_modules/edgeserve');
test.after(() => rmSync(work, { recursive: true, force: true }));

test('npm pack: every file the package names is in the tarball, with LICENSE and the registry fields', () => {
  const listed = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  for (const f of pkgJson.files.filter((f) => f.includes('.'))) assert.ok(listed.includes(f), `${f} is not in the tarball: ${listed.join(', ')}`);
  for (const f of ['LICENSE', 'package.json', 'README.md', 'src/worker.js', 'src/cpu.js', 'types/browser.d.ts', 'types/node.d.ts', 'types/worker.d.ts', 'types/edge-worker.d.ts']) assert.ok(listed.includes(f), f);
  // Nothing from the build that the package does not use.
  assert.ok(!listed.some((f) => f.endsWith('.wasm.d.ts') || f.startsWith('test/') || f.startsWith('scripts/')), listed.join(', '));
  assert.match(readFileSync(path.join(installed, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/);
  for (const field of ['repository', 'homepage', 'bugs', 'keywords', 'license']) assert.ok(pkgJson[field], field);
});

test('npm pack refuses a package with a file missing, and one that cannot build its wasm', () => {
  const copy = path.join(work, 'pkg-copy');
  cpSync(path.join(root, 'pkg'), copy, { recursive: true, filter: (f) => !f.includes('node_modules') });
  rmSync(path.join(copy, 'dist/edge/edgeserve_relaxed_bg.wasm'));
  const env = { ...process.env, EDGESERVE_PACK_BUILD: 'none' };
  let r = spawnSync('npm', ['pack', '--dry-run'], { cwd: copy, env, encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /edgeserve prepack: missing from the package: dist\/edge\/edgeserve_relaxed_bg\.wasm \(build dist\/ with `\.\/x pkg`\)/);
  // Outside the repository there is no Rust workspace to build it from.
  r = spawnSync('npm', ['pack', '--dry-run'], { cwd: copy, env: { ...process.env, EDGESERVE_PACK_BUILD: '' }, encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /edgeserve prepack: the wasm is built from the Rust workspace around pkg\/, which is not at/);
});

test('a Node ESM script classifies the photo with the installed package, and runs a tensor model', () => {
  const script = path.join(project, 'main.mjs');
  writeFileSync(
    script,
    `import { readFile } from 'node:fs/promises';
import { Classifier, TensorModel } from 'edgeserve';
const [dir, image, tensorModel] = process.argv.slice(2);
const classifier = await Classifier.load({
  model: await readFile(dir + '/efficientnet-lite0.onnx'),
  manifest: await readFile(dir + '/manifest.json'),
  labels: await readFile(dir + '/imagenet_labels.txt'),
});
const { classes, report } = await classifier.classify(await readFile(image));
// The .wasm files are exports of their own, to copy or serve elsewhere.
const wasmFile = import.meta.resolve('edgeserve/dist/edge/edgeserve_bg.wasm');
const halfPlusTwo = await TensorModel.load({ model: await readFile(tensorModel) });
const tensors = await halfPlusTwo.predict({ instances: [1.0, 2.0, 5.0] });
console.log(JSON.stringify({ classes, backend: report.backend, verified: report.modelVerified, wasmFile, tensors }));
`,
  );
  const halfPlusTwo = path.join(root, 'tests/fixtures/half_plus_two.onnx');
  const out = JSON.parse(execFileSync(process.execPath, [script, lite0, coffee, halfPlusTwo], { cwd: project, encoding: 'utf8' }));
  assert.deepEqual(out.tensors, { predictions: [2.5, 3.0, 4.5] });
  assert.deepEqual(out.classes.map((c) => c.index), want);
  assert.equal(out.classes[0].label, 'espresso');
  assert.deepEqual([out.backend, out.verified], ['cpu', true]);
  assert.equal(fileURLToPath(out.wasmFile), path.join(installed, 'dist/edge/edgeserve_bg.wasm'));
  assert.ok(existsSync(fileURLToPath(out.wasmFile)));
});

test('tsc --strict without skipLibCheck: a DOM app, a Node project and a Worker each type-check against the installed types', () => {
  // The projects' own type packages, as each kind of project installs them.
  mkdirSync(path.join(project, 'node_modules/@types'), { recursive: true });
  mkdirSync(path.join(project, 'node_modules/@cloudflare'), { recursive: true });
  symlinkSync(path.join(here, 'node_modules/@types/node'), path.join(project, 'node_modules/@types/node'));
  symlinkSync(path.join(here, 'node_modules/@cloudflare/workers-types'), path.join(project, 'node_modules/@cloudflare/workers-types'));
  cpSync(path.join(here, 'types'), path.join(project, 'types'), { recursive: true });
  for (const config of ['tsconfig.json', 'tsconfig.node.json', 'tsconfig.workers.json']) {
    copyFileSync(path.join(here, config), path.join(project, config));
    const r = spawnSync(path.join(here, 'node_modules/.bin/tsc'), ['-p', config, '--explainFiles'], { cwd: project, encoding: 'utf8' });
    assert.equal(r.status, 0, `${config}:\n${r.stdout.split('\n').filter((l) => /error/.test(l)).join('\n')}`);
    // The types came from the installed package, for the right condition.
    const used = { 'tsconfig.json': 'browser.d.ts', 'tsconfig.node.json': 'node.d.ts', 'tsconfig.workers.json': 'worker.d.ts' }[config];
    assert.match(r.stdout, new RegExp(`node_modules/edgeserve/types/${used.replace('.', '\\.')}`), config);
  }
  // And each refuses what it should: a number is no image, in every host.
  for (const [config, file] of [['tsconfig.json', 'dom.ts'], ['tsconfig.node.json', 'node.ts'], ['tsconfig.workers.json', 'workers.ts']]) {
    const source = path.join(project, 'types', file);
    const text = readFileSync(source, 'utf8');
    writeFileSync(source, text.replace(/\/\/ @ts-expect-error: a number is no image\n/, ''));
    const r = spawnSync(path.join(here, 'node_modules/.bin/tsc'), ['-p', config], { cwd: project, encoding: 'utf8' });
    writeFileSync(source, text);
    assert.notEqual(r.status, 0, config);
    assert.match(r.stdout, /error TS2345: Argument of type 'number' is not assignable to parameter of type '(ImageSource|BinaryImage)'/, config);
  }
});

// A page as from a CDN: the installed package's files served under
// /cdn/edgeserve@VERSION/, imported through an import map; `?entry=cpu`
// imports edgeserve/cpu, else edgeserve; `?worker` classifies again in a
// module Web Worker (import maps do not reach workers: it imports by URL).
const PAGE = `<!doctype html>
<meta charset="utf-8"><title>loading</title><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "edgeserve": "/cdn/edgeserve/src/web.js", "edgeserve/cpu": "/cdn/edgeserve/src/cpu.js" } }</script>
<script type="module">
const q = new URLSearchParams(location.search);
const out = { entry: q.get('entry') };
try {
  const { Classifier, wasm } = await (q.get('entry') === 'cpu' ? import('edgeserve/cpu') : import('edgeserve'));
  if (q.has('clear')) out.cleared = await Classifier.clearCache();
  const progress = [];
  const t0 = performance.now();
  const classifier = await Classifier.load({
    model: q.get('models') + '/efficientnet-lite0/efficientnet-lite0.onnx',
    backend: 'cpu',
    onProgress: (p) => progress.push(p.file + (p.cached ? ':cached' : '')),
  });
  out.loadMs = performance.now() - t0;
  out.progress = [...new Set(progress)];
  const photo = await (await fetch('/coffee.png')).blob();
  const { classes, report } = await classifier.classify(photo);
  Object.assign(out, { classes, verified: report.modelVerified, build: wasm.build, webgpuBuild: wasm.webgpuBuild });
  if (q.has('worker')) {
    const worker = new Worker('/worker.js?models=' + encodeURIComponent(q.get('models')), { type: 'module' });
    out.worker = await new Promise((ok) => {
      worker.onmessage = (e) => ok(e.data);
      worker.onerror = (e) => ok({ error: e.message });
    });
  }
} catch (e) {
  out.error = e.code + ': ' + e.message;
}
window.result = out;
document.title = 'done';
</script>`;

const WORKER = `import { Classifier } from '/cdn/edgeserve/src/cpu.js';
const models = new URL(location.href).searchParams.get('models');
try {
  const classifier = await Classifier.load({ model: models + '/efficientnet-lite0/efficientnet-lite0.onnx' });
  const photo = await (await fetch('/coffee.png')).blob();
  postMessage({ classes: (await classifier.classify(photo)).classes.map((c) => c.index) });
} catch (e) {
  postMessage({ error: e.code + ': ' + e.message });
}
`;

test('a plain page imports the installed package through an import map, in a module Worker too, and loads the model from its cache the second time, offline as well', { timeout: 600_000 }, async () => {
  const site = path.join(work, 'site');
  mkdirSync(site);
  writeFileSync(path.join(site, 'index.html'), PAGE);
  writeFileSync(path.join(site, 'worker.js'), WORKER);
  copyFileSync(coffee, path.join(site, 'coffee.png'));
  const cdn = await serveStatic({ '/cdn/edgeserve/': installed, '/': site });
  // The models on another origin, as a CDN or bucket would hold them.
  const startModels = () => serveStatic(path.join(root, 'models'), { headers: { 'access-control-allow-origin': '*' } });
  let models = await startModels();
  const profile = mkdtempSync(path.join(tmpdir(), 'edgeserve-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  const problems = [];
  const open = async (query, { noAdapter = false } = {}) => {
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    // A device whose browser has WebGPU but no adapter for it.
    if (noAdapter) await page.addInitScript(() => navigator.gpu && (navigator.gpu.requestAdapter = async () => null));
    await page.goto(`${cdn.url}/?models=${encodeURIComponent(models.url)}&${query}`);
    await page.waitForFunction(() => document.title === 'done', null, { timeout: 300_000 });
    const result = await page.evaluate(() => window.result);
    await page.close();
    assert.equal(result.error, undefined, result.error);
    assert.deepEqual(result.classes.map((c) => c.index), want, query);
    return result;
  };
  const fetched = (server, from) => server.seen.slice(from).map((u) => u.split('?')[0]);
  // The .wasm files a visit fetched (the page and its worker each start one).
  const wasmOf = (from) => [...new Set(fetched(cdn, from).filter((u) => u.endsWith('.wasm')))];
  try {
    // First visit, CPU-only entry: the CPU build only, every file reported.
    let at = cdn.seen.length;
    const first = await open('entry=cpu&worker');
    assert.deepEqual(wasmOf(at), ['/cdn/edgeserve/dist/edge/edgeserve_relaxed_bg.wasm'], 'edgeserve/cpu fetched another build');
    assert.ok(!fetched(cdn, at).includes('/cdn/edgeserve/dist/edgeserve.js'), 'edgeserve/cpu loaded the WebGPU glue');
    assert.deepEqual(first.progress, ['wasm', 'manifest', 'labels', 'model']);
    assert.deepEqual([first.build, first.webgpuBuild, first.verified], ['relaxed-simd', false, true]);
    assert.deepEqual(first.worker, { classes: want });
    assert.ok(fetched(models, 0).includes('/efficientnet-lite0/efficientnet-lite0.onnx'));

    // Second visit: the model and labels come from the cache, checked; only
    // the manifest is asked for (it may have changed). Every visit starts
    // the wasm anew (from the CDN, or the HTTP cache where it says so).
    let seen = models.seen.length;
    const second = await open('entry=cpu');
    assert.deepEqual(fetched(models, seen), ['/efficientnet-lite0/manifest.json']);
    assert.deepEqual(second.progress, ['wasm', 'manifest', 'labels:cached', 'model:cached']);
    console.log(`# load: first visit ${first.loadMs.toFixed(0)} ms (downloads), second ${second.loadMs.toFixed(0)} ms (cache)`);

    // Offline: the model server is gone; the manifest comes from the cache too.
    await models.close();
    const offline = await open('entry=cpu');
    assert.deepEqual(offline.progress, ['wasm', 'labels:cached', 'model:cached']);

    // A corrupted cache entry is dropped and the model downloaded again.
    models = await startModels();
    const page = await context.newPage();
    await page.goto(`${cdn.url}/worker.js`);
    const damaged = await page.evaluate(async () => {
      const cache = await caches.open('edgeserve-models-v1');
      const keys = (await cache.keys()).map((r) => r.url).filter((u) => u.includes('/model/'));
      for (const k of keys) await cache.put(k, new Response(new Uint8Array(1000)));
      return keys.length;
    });
    await page.close();
    assert.equal(damaged, 1);
    seen = models.seen.length;
    const repaired = await open('entry=cpu');
    assert.ok(fetched(models, seen).includes('/efficientnet-lite0/efficientnet-lite0.onnx'));
    assert.deepEqual(repaired.progress, ['wasm', 'manifest', 'labels:cached', 'model']);
    seen = models.seen.length;
    assert.deepEqual((await open('entry=cpu')).progress, ['wasm', 'manifest', 'labels:cached', 'model:cached']);
    assert.deepEqual(fetched(models, seen), ['/efficientnet-lite0/manifest.json']);

    // clearCache() empties it: everything is downloaded again.
    seen = models.seen.length;
    const cleared = await open('entry=cpu&clear');
    assert.equal(cleared.cleared, true);
    assert.deepEqual(cleared.progress, ['wasm', 'manifest', 'labels', 'model']);

    // The default entry: where navigator.gpu has no adapter, the CPU build
    // only; with one (SwiftShader here), the WebGPU build.
    at = cdn.seen.length;
    const noGpu = await open('entry=default', { noAdapter: true });
    assert.deepEqual(wasmOf(at), ['/cdn/edgeserve/dist/edge/edgeserve_relaxed_bg.wasm']);
    assert.equal(noGpu.webgpuBuild, false);
    at = cdn.seen.length;
    const withGpu = await open('entry=default');
    assert.deepEqual(wasmOf(at), ['/cdn/edgeserve/dist/edgeserve_relaxed_bg.wasm']);
    assert.equal(withGpu.webgpuBuild, true);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
    await cdn.close();
    await models.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
});

/** The js block after `<!-- worker-template -->` in pkg/README.md: the Worker a user copies. */
function readmeWorker() {
  const readme = readFileSync(path.join(root, 'pkg/README.md'), 'utf8');
  const m = readme.match(/<!-- worker-template -->\s*```js\n([\s\S]*?)```/);
  assert.ok(m, 'pkg/README.md has no worker template');
  return m[1];
}

const WRANGLER_ENV = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };

test("the README's Worker, in a project of its own with the installed package, under wrangler dev", { timeout: 300_000 }, async () => {
  const dir = installInto(path.join(work, 'worker'), tarball);
  mkdirSync(path.join(dir, 'src'));
  writeFileSync(path.join(dir, 'src/index.js'), readmeWorker());
  for (const [from, to] of [['efficientnet-lite0.onnx', 'model.onnx'], ['manifest.json', 'manifest.json'], ['imagenet_labels.txt', 'labels.txt']]) {
    copyFileSync(path.join(lite0, from), path.join(dir, 'src', to));
  }
  const config = readFileSync(path.join(root, 'pkg/README.md'), 'utf8').match(/<!-- worker-template-config -->\s*```jsonc\n([\s\S]*?)```/);
  assert.ok(config, 'pkg/README.md has no wrangler.jsonc for the template');
  writeFileSync(path.join(dir, 'wrangler.jsonc'), config[1]);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let dev;
  try {
    let status;
    ({ child: dev, ready: status } = await spawnUntilReady(
      path.join(here, 'node_modules/.bin/wrangler'),
      ['dev', '--ip', '127.0.0.1', '--port', String(port), '--show-interactive-dev-session=false', '--var', 'PUBLIC_ENDPOINT:true'],
      { cwd: dir, env: WRANGLER_ENV, stdio: ['ignore', 'inherit', 'inherit'] },
      () => fetch(`${base}/v1/models/efficientnet-lite0`).then((r) => r.status),
      { tries: 600, group: true },
    ));
    assert.equal(status, 200);
    const r = await fetch(`${base}/v1/models/efficientnet-lite0:classify`, {
      method: 'POST',
      body: JSON.stringify({ examples: [{ 'image/encoded': { b64: readFileSync(coffee).toString('base64') } }] }),
    });
    assert.equal(r.status, 200);
    const results = (await r.json()).results[0];
    assert.equal(results[0][0], 'espresso');
  } finally {
    await stopChild(dev, { group: true });
  }
});
