// The app's Vite config, as a user of the package writes it: the dev
// server must not pre-bundle edgeserve (its .vite/deps/ copy would have no
// .wasm beside it). The test adds where the app and the models are.
export default {
  logLevel: 'warn',
  optimizeDeps: { exclude: ['edgeserve'] },
  build: { emptyOutDir: true, target: 'es2022' },
};
