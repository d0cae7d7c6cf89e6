// How a browser build's .wasm is fetched for streaming compilation
// (`fetchWasm`, which `startBuild` calls), against a real HTTP server on
// 127.0.0.1, with Node's own fetch and `WebAssembly.compileStreaming`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetchWasm } from '../src/api.js';
import { serveStatic } from '../../tests/js/support.mjs';

// A module with one exported function returning 42, padded with a custom
// section so that its body comes in more than one chunk (the server writes
// 1 MiB pieces).
const MODULE = (() => {
  const pad = new Uint8Array(2_500_000).fill(7);
  const name = [4, 0x70, 0x61, 0x64, 0x21]; // "pad!"
  const custom = [0, ...leb(name.length + pad.length), ...name];
  const body = [0x00, 0x41, 42, 0x0b];
  return Uint8Array.from([
    0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    1, 5, 1, 0x60, 0, 1, 0x7f, // type: () -> i32
    3, 2, 1, 0, // one function of type 0
    7, 5, 1, 1, 0x66, 0, 0, // export "f"
    10, body.length + 2, 1, body.length, ...body,
    ...custom, ...pad,
  ]);
})();

function leb(n) {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

// The module as three files, typed by their names: `f.wasm` as
// application/wasm, `f.bin` as application/octet-stream, `f.html` as text/html.
async function serve() {
  const dir = mkdtempSync(path.join(tmpdir(), 'edgeserve-fetch-wasm-'));
  for (const name of ['f.wasm', 'f.bin', 'f.html']) writeFileSync(path.join(dir, name), MODULE);
  const server = await serveStatic(dir);
  return {
    url: server.url,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const run = async (response) => new WebAssembly.Instance(await WebAssembly.compileStreaming(response)).exports.f();

test("the compiler gets fetch's own response (what Chromium keeps compiled code for), with progress read beside it", async () => {
  const server = await serve();
  try {
    // No progress asked for: the response as fetched.
    const plain = await fetchWasm(`${server.url}/f.wasm`);
    assert.equal(plain.response.url, `${server.url}/f.wasm`);
    assert.equal(await run(plain.response), 42);
    await plain.counted;

    // Progress: still the fetched response (its URL is the code cache's key),
    // and every byte reported, against the length the server gave.
    const events = [];
    const counted = await fetchWasm(`${server.url}/f.wasm`, (p) => events.push(p));
    assert.equal(counted.response.url, `${server.url}/f.wasm`);
    const [answer] = await Promise.all([run(counted.response), counted.counted]);
    assert.equal(answer, 42);
    assert.ok(events.length > 1, `${events.length} progress events`);
    assert.ok(events.every((e) => e.file === 'wasm' && e.total === MODULE.length));
    assert.equal(events.at(-1).loaded, MODULE.length);
    assert.ok(events.every((e, i) => i === 0 || e.loaded > events[i - 1].loaded));
  } finally {
    await server.close();
  }
});

test('a .wasm served with another type is compiled all the same; a page or an error status is refused; a throwing onProgress fails the start', async () => {
  const server = await serve();
  try {
    const events = [];
    const other = await fetchWasm(`${server.url}/f.bin`, (p) => events.push(p.loaded));
    assert.equal(other.response.headers.get('content-type'), 'application/wasm');
    assert.equal(await run(other.response), 42);
    assert.equal(events.at(-1), MODULE.length);

    await assert.rejects(fetchWasm(`${server.url}/f.html`), /the server answered with an HTML page, not the wasm/);
    await assert.rejects(fetchWasm(`${server.url}/missing.wasm`), /missing\.wasm: HTTP 404/);

    const thrown = new Error('a progress bar that broke');
    const broken = await fetchWasm(`${server.url}/f.wasm`, () => {
      throw thrown;
    });
    const [compiled, progress] = await Promise.allSettled([run(broken.response), broken.counted]);
    assert.equal(compiled.value, 42);
    assert.equal(progress.reason, thrown);
  } finally {
    await server.close();
  }
});
