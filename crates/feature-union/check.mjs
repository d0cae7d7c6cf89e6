// Fails when two of edgeserve's wasm32 builds would compile a third-party
// crate with different features, which makes cargo build it, and every
// crate above it, twice (see Cargo.toml here). Asks cargo for each build's
// unit graph (nothing is compiled) and compares the feature sets.
// Usage: node crates/feature-union/check.mjs  (from the repository root)
import { spawnSync } from 'node:child_process';

const target = 'wasm32-unknown-unknown';
// Every workspace crate that `./x` builds or tests for wasm32, as a build
// and with its tests (dev-dependencies add features), with and without the
// bindings' default `webgpu` feature.
const builds = [];
for (const pkg of ['edgeserve-protocol', 'edgeserve', 'edgeserve-cpu', 'edgeserve-webgpu', 'edgeserve-wasm']) {
  for (const mode of [['build'], ['test', '--no-run']]) {
    builds.push([...mode, '-p', pkg]);
    if (pkg === 'edgeserve-wasm') builds.push([...mode, '-p', pkg, '--no-default-features']);
  }
}

const seen = new Map(); // "name@version kind (platform)" -> { features, build }
const clashes = new Map(); // the same key -> the union of the features

for (const args of builds) {
  const full = [...args, '--target', target, '--locked', '--unit-graph', '-Z', 'unstable-options'];
  // --unit-graph is unstable; RUSTC_BOOTSTRAP lets the stable toolchain
  // answer it (the threaded build already relies on that).
  const out = spawnSync('cargo', full, { env: { ...process.env, RUSTC_BOOTSTRAP: '1' }, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (out.status !== 0) {
    console.error(`cargo ${full.join(' ')} failed:\n${out.stderr}`);
    process.exit(1);
  }
  for (const unit of JSON.parse(out.stdout).units) {
    // Our own crates may differ (e.g. the test kit's `onnx` feature): they
    // are small and rebuilt anyway when they change.
    // Build scripts follow their crate's features.
    if (unit.pkg_id.startsWith('path+') || unit.mode !== 'build' || unit.target.kind.includes('custom-build')) continue;
    const id = unit.pkg_id.replace(/^.*#/, '');
    const key = `${id} ${unit.target.kind.join(',')} (${unit.platform ?? 'host'})`;
    const features = [...unit.features].sort().join(',');
    const first = seen.get(key);
    if (!first) seen.set(key, { features, build: args.join(' ') });
    else if (first.features !== features) {
      const union = clashes.get(key) ?? new Set(first.features.split(',').filter(Boolean));
      for (const f of unit.features) union.add(f);
      clashes.set(key, union);
      console.error(`${key}: [${features}] in \`cargo ${args.join(' ')}\`, [${first.features}] in \`cargo ${first.build}\``);
    }
  }
}
if (clashes.size) {
  console.error('\nthese crates get different features in different wasm32 builds; name them in crates/feature-union/Cargo.toml with the union:');
  for (const [key, union] of clashes) console.error(`  ${key}: ${[...union].sort().join(', ')}`);
  process.exit(1);
}
console.log(`${builds.length} wasm32 builds, ${seen.size} third-party units: one feature set each`);
