// The demo's service worker: precaches the page, the engine (JS glue and
// wasm), Lite0 and both models' manifests and labels, so that a reload with
// the network off still classifies on the device. The model is cached only
// if its SHA-256 is the manifest's (the package checks it again at load).
// TF Serving's /v1/ paths always go to the network: a remote answer is
// never replayed from a cache.

const CACHE = 'edgeserve-demo-v1';
const LITE0 = '/models/efficientnet-lite0/';
const PRECACHE = [
  '/',
  '/index.html',
  '/style.css',
  '/app.js',
  '/worker.js',
  '/samples/coffee_orig.png',
  '/samples/chelsea_orig.png',
  '/pkg/src/web.js',
  '/pkg/src/api.js',
  '/pkg/src/builds.js',
  '/pkg/src/cpu.js',
  '/pkg/src/threads.js',
  '/pkg/src/thread-web.js',
  // Every build of the engine: which one the page starts depends on
  // whether the browser has a WebGPU adapter and relaxed SIMD
  // (pkg/src/web.js); the CPU backend runs the threaded one (worker.js).
  '/pkg/dist/edgeserve.js',
  '/pkg/dist/edgeserve_bg.wasm',
  '/pkg/dist/edgeserve_relaxed_bg.wasm',
  '/pkg/dist/edge/edgeserve.js',
  '/pkg/dist/edge/edgeserve_bg.wasm',
  '/pkg/dist/edge/edgeserve_relaxed_bg.wasm',
  '/pkg/dist/threads/edgeserve.js',
  '/pkg/dist/threads/edgeserve_bg.wasm',
  '/pkg/dist/threads/edgeserve_relaxed_bg.wasm',
  `${LITE0}manifest.json`,
  `${LITE0}imagenet_labels.txt`,
  '/models/efficientnet-lite2/manifest.json',
  '/models/efficientnet-lite2/imagenet_labels.txt',
];

const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');

async function precache() {
  const cache = await caches.open(CACHE);
  await cache.addAll(PRECACHE);
  const manifest = await (await cache.match(`${LITE0}manifest.json`)).json();
  const url = `${LITE0}${manifest.model.file}`;
  const response = await fetch(url, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = await response.clone().arrayBuffer();
  const digest = hex(await crypto.subtle.digest('SHA-256', bytes));
  if (digest !== manifest.model.sha256) throw new Error(`${url}: sha256 ${digest}, the manifest says ${manifest.model.sha256}`);
  await cache.put(url, response);
}

self.addEventListener('install', (event) => event.waitUntil(precache().then(() => self.skipWaiting())));

self.addEventListener('activate', (event) =>
  event.waitUntil(
    (async () => {
      // The demo's older caches only: the package keeps models in a cache of its own.
      for (const name of await caches.keys()) if (name.startsWith('edgeserve-demo-') && name !== CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  ),
);

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/v1/')) return;
  // Cache first (the precached files), then the network.
  event.respondWith(
    caches.match(event.request, { ignoreSearch: true }).then((hit) => hit ?? fetch(event.request)),
  );
});
