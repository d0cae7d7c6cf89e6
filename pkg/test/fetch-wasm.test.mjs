// How a browser build's .wasm is fetched for streaming compilation
// (`fetchWasm`, which `startBuild` calls), against a real HTTP server on
// 127.0.0.1, with Node's own fetch and `WebAssembly.compileStreaming`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { fetchWasm } from '../src/api.js';

// A module with one exported function returning 42, padded with a custom
// section so that its body comes in more than one chunk.
const MODULE = (() => {
  const pad = new Uint8Array(200_000).fill(7);
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

async function serve() {
  const server = createServer((req, res) => {
    const type = { '/wasm': 'application/wasm', '/octets': 'application/octet-stream', '/page': 'text/html' }[req.url];
    if (!type) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': type, 'content-length': MODULE.length });
    // In pieces, as a network delivers it.
    for (let at = 0; at < MODULE.length; at += 65_536) res.write(MODULE.subarray(at, at + 65_536));
    res.end();
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((ok) => server.close(ok)) };
}

const run = async (response) => new WebAssembly.Instance(await WebAssembly.compileStreaming(response)).exports.f();

test("the compiler gets fetch's own response (what Chromium keeps compiled code for), with progress read beside it", async () => {
  const server = await serve();
  try {
    // No progress asked for: the response as fetched.
    const plain = await fetchWasm(`${server.url}/wasm`);
    assert.equal(plain.response.url, `${server.url}/wasm`);
    assert.equal(await run(plain.response), 42);
    await plain.counted;

    // Progress: still the fetched response (its URL is the code cache's key),
    // and every byte reported, against the length the server gave.
    const events = [];
    const counted = await fetchWasm(`${server.url}/wasm`, (p) => events.push(p));
    assert.equal(counted.response.url, `${server.url}/wasm`);
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
    const other = await fetchWasm(`${server.url}/octets`, (p) => events.push(p.loaded));
    assert.equal(other.response.headers.get('content-type'), 'application/wasm');
    assert.equal(await run(other.response), 42);
    assert.equal(events.at(-1), MODULE.length);

    await assert.rejects(fetchWasm(`${server.url}/page`), /the server answered with an HTML page, not the wasm/);
    await assert.rejects(fetchWasm(`${server.url}/missing.wasm`), /missing\.wasm: HTTP 404/);

    const thrown = new Error('a progress bar that broke');
    const broken = await fetchWasm(`${server.url}/wasm`, () => {
      throw thrown;
    });
    const [compiled, progress] = await Promise.allSettled([run(broken.response), broken.counted]);
    assert.equal(compiled.value, 42);
    assert.equal(progress.reason, thrown);
  } finally {
    await server.close();
  }
});
