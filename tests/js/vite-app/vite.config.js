// The app's Vite config, as a user of the package writes it: the dev
// server must not pre-bundle edgeserve (its .vite/deps/ copy would have no
// .wasm beside it). The test adds where the app and the models are.
export default {
  logLevel: 'warn',
  optimizeDeps: { exclude: ['edgeserve'] },
  build: { emptyOutDir: true, target: 'es2022' },
  // The package's workers (the threaded build's pool) load code on demand.
  worker: { format: 'es' },
  // Cross-origin isolation, which the threaded build needs (shared memory).
  preview: { headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } },
};
