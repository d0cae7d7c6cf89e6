import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

// The bundled model is served as a static file next to the page.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  publicDir: fileURLToPath(new URL('../../../models', import.meta.url)),
  logLevel: 'warn',
  build: { outDir: process.env.EDGESERVE_VITE_OUT ?? 'dist', emptyOutDir: true, target: 'es2022' },
});
