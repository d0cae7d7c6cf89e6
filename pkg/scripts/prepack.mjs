// `npm pack` / `npm publish`: builds the release wasm into dist/ (`./x pkg`
// in the repository), then refuses to pack when any path of `files` or any
// file `exports` names is missing: npm itself leaves a missing path out
// without a word, and the package then fails at import.
//
// EDGESERVE_PACK_BUILD=none packs the dist/ already there (the tests pack
// the development build `./x test` made, instead of spending a release
// build on every run).

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(pkg, '..');
const manifest = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8'));

function stop(message) {
  console.error(`edgeserve prepack: ${message}`);
  process.exit(1);
}

if (process.env.EDGESERVE_PACK_BUILD !== 'none') {
  const x = path.join(repo, 'x');
  if (!existsSync(x) || !existsSync(path.join(repo, 'Cargo.toml'))) {
    stop(`the wasm is built from the Rust workspace around pkg/, which is not at ${repo}; pack from a checkout of the repository`);
  }
  try {
    execFileSync('cargo', ['--version'], { stdio: 'ignore' });
  } catch {
    stop('cargo is not on PATH: the release wasm needs the Rust toolchain (https://rustup.rs); `./x pkg` installs the rest');
  }
  console.error('edgeserve prepack: building the release wasm (./x pkg)');
  execFileSync(x, ['pkg'], { cwd: repo, stdio: ['ignore', process.stderr, 'inherit'] });
}

// Every path `files` lists and every file `exports` points at.
const targets = (v) => (typeof v === 'string' ? [v] : Object.values(v).flatMap(targets));
const wanted = new Set([...manifest.files, ...targets(manifest.exports).filter((t) => !t.includes('*'))].map((f) => f.replace(/^\.\//, '')));
const missing = [...wanted].filter((f) => !existsSync(path.join(pkg, f)));
if (missing.length > 0) {
  stop(`missing from the package: ${missing.join(', ')}${missing.some((f) => f.startsWith('dist/')) ? ' (build dist/ with `./x pkg`)' : ''}`);
}
