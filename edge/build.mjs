// Bundles the Workers for plain workerd into edge/dist/ (worker.js, with
// Lite0 inside, for config.capnp; worker-store.js, reading models from a
// store, for store.capnp):
// `edgeserve` resolved through the package's `workerd` export condition, as
// wrangler does; the wasm and the bundled model's files stay modules of
// their own (workerd embeds them: the wasm as a compiled module, the model
// as bytes, the manifest as JSON, the labels as text).
//
//   node edge/build.mjs     (esbuild from tests/js, installed by ./x)
//   node edge/build.mjs worker-store.js

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const { build } = createRequire(path.join(root, 'tests/js/package.json'))('esbuild');

/** Bundles `edge/{entry}` into `edge/dist/{entry}`; returns that path. */
export async function bundle(entry = 'worker.js') {
  const outfile = path.join(here, 'dist', entry);
  await build({
    entryPoints: [path.join(here, entry)],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    conditions: ['workerd', 'worker', 'browser'],
    // `edgeserve` is the package in pkg/, as tests/js links it.
    nodePaths: [path.join(root, 'tests/js/node_modules')],
    outfile,
    logLevel: 'warning',
    plugins: [
      {
        name: 'modules',
        setup(b) {
          // Names as config.capnp lists them.
          b.onResolve({ filter: /\.wasm$/ }, (args) => ({ path: path.basename(args.path), external: true }));
          b.onResolve({ filter: /\/models\/.*\.(onnx|json|txt)$/ }, (args) => ({ path: args.path.slice(args.path.indexOf('models/')), external: true }));
        },
      },
    ],
  });
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(await bundle(process.argv[2]));
