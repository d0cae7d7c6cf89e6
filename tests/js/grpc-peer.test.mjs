// `edgeserve serve`'s gRPC API through a second client, independent of the
// official Python one (crates/cli/tests/grpc.rs): @grpc/grpc-js, gRPC's
// pure-JS implementation (its own HTTP/2 and framing, not grpcio's C core),
// with stubs made at run time from TF Serving's own definitions: the file
// descriptors the official `tensorflow-serving-api` package was compiled
// with (tests/peers/tfs_descriptors.py), never our .proto files. Answers
// are checked against TF Serving's documented ones and the REST API's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadFileDescriptorSetFromBuffer } from '@grpc/proto-loader';
import { startServer } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const shared = process.env.EDGESERVE_SHARED ?? path.resolve(root, '../shared');
const bin = process.env.EDGESERVE_BIN;
const python = process.env.EDGESERVE_TFS_PYTHON;
const skip = !(bin && python) && 'EDGESERVE_BIN and EDGESERVE_TFS_PYTHON are not set (./x test sets them)';

/** TF Serving's services as grpc-js client constructors, from the official package's descriptors. */
function tfServing(work) {
  const file = path.join(work, 'tfs.pb');
  execFileSync(python, [path.join(root, 'tests/peers/tfs_descriptors.py'), file], { stdio: ['ignore', 'ignore', 'ignore'] });
  const definition = loadFileDescriptorSetFromBuffer(readFileSync(file), { longs: String, enums: String, defaults: false, oneofs: true });
  return grpc.loadPackageDefinition(definition).tensorflow.serving;
}

/** A unary call as a promise: `{ ok: true, value }` or `{ ok: false, code, details }` (the status code's name). */
function call(client, method, request, { deadlineMs = 60_000 } = {}) {
  return new Promise((resolve) => {
    client[method](request, { deadline: Date.now() + deadlineMs }, (e, value) => {
      if (e) resolve({ ok: false, code: grpc.status[e.code], details: e.details });
      else resolve({ ok: true, value });
    });
  });
}

// protobufjs reads a map field from a descriptor set as what the
// descriptor holds: a repeated `…Entry { key, value }` message.
const entries = (object) => Object.entries(object).map(([key, value]) => ({ key, value }));
const fromEntries = (list) => Object.fromEntries((list ?? []).map(({ key, value }) => [key, value]));

/**
 * A DT_FLOAT TensorProto's values, read as TensorFlow's `make_ndarray`
 * reads them: `tensor_content` (little-endian) when set, else `float_val`.
 */
function floatsOf(tensor) {
  assert.equal(tensor.dtype, 'DT_FLOAT');
  const content = tensor.tensor_content;
  if (!content?.length) return tensor.float_val;
  const bytes = Uint8Array.from(content);
  return Array.from(new Float32Array(bytes.buffer, 0, bytes.byteLength / 4));
}

/** A DT_FLOAT TensorProto of `shape` holding `values`. */
const floats = (shape, values) => ({ dtype: 'DT_FLOAT', tensor_shape: { dim: shape.map((size) => ({ size: String(size) })) }, float_val: values });

test("a second gRPC client (grpc-js, TF Serving's own descriptors): predict, classify, metadata, status and errors as TF Serving gives them", { skip, timeout: 300_000 }, async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'edgeserve-grpc-peer-'));
  let server;
  const clients = [];
  try {
    const serving = tfServing(work);
    // half_plus_two (a bare model.onnx: tensors) and Lite0 (an image classifier).
    const hpt = path.join(work, 'half_plus_two/1');
    mkdirSync(hpt, { recursive: true });
    writeFileSync(path.join(hpt, 'model.onnx'), readFileSync(path.join(root, 'tests/fixtures/half_plus_two.onnx')));
    const lite0 = path.join(work, 'lite0/1');
    mkdirSync(lite0, { recursive: true });
    const models = path.join(root, 'models/efficientnet-lite0');
    for (const f of ['efficientnet-lite0.onnx', 'manifest.json', 'imagenet_labels.txt']) writeFileSync(path.join(lite0, f), readFileSync(path.join(models, f)));
    const config = path.join(work, 'models.config');
    writeFileSync(config, `model_config_list {\n${['half_plus_two', 'lite0'].map((n) => `  config { name: "${n}" base_path: "${path.join(work, n)}" model_platform: "onnx" }`).join('\n')}\n}\n`);
    server = await startServer(bin, ['serve', '--rest_api_port', '0', '--port', '0', '--model_config_file', config]);
    assert.match(server.grpc ?? '', /^127\.0\.0\.1:\d+$/, 'the banner names the gRPC address');
    const predictions = new serving.PredictionService(server.grpc, grpc.credentials.createInsecure());
    const models_ = new serving.ModelService(server.grpc, grpc.credentials.createInsecure());
    clients.push(predictions, models_);
    const rest = async (p, body) => (await fetch(`${server.url}${p}`, body === undefined ? {} : { method: 'POST', body })).json();

    // half_plus_two: TF Serving's documented answer, as the REST API gives it.
    const hptPredict = await call(predictions, 'Predict', { model_spec: { name: 'half_plus_two' }, inputs: entries({ x: floats([3], [1.0, 2.0, 5.0]) }) });
    assert.ok(hptPredict.ok, JSON.stringify(hptPredict));
    const y = fromEntries(hptPredict.value.outputs).y;
    assert.equal(y.dtype, 'DT_FLOAT');
    assert.deepEqual(y.tensor_shape.dim.map((d) => d.size), ['3']);
    assert.deepEqual(floatsOf(y), [2.5, 3.0, 4.5]);
    assert.deepEqual((await rest('/v1/models/half_plus_two:predict', '{"instances": [1.0, 2.0, 5.0]}')).predictions, floatsOf(y));
    assert.equal(hptPredict.value.model_spec.name, 'half_plus_two');
    assert.equal(hptPredict.value.model_spec.version.value, '1');

    // Lite0's logits for the preprocessed chelsea tensor: onnxruntime's, within 1e-3.
    const raw = readFileSync(path.join(shared, 'fixtures/inputs/chelsea_224_nchw_f32le.bin'));
    const x = Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
    const reference = JSON.parse(readFileSync(path.join(shared, 'fixtures/reference_onnxruntime.json'))).models['efficientnet-lite0.onnx'].results.chelsea;
    const logits = await call(predictions, 'Predict', { model_spec: { name: 'lite0', signature_name: 'serving_default' }, inputs: entries({ input: floats([1, 3, 224, 224], x) }) });
    assert.ok(logits.ok, JSON.stringify(logits).slice(0, 300));
    const got = floatsOf(Object.values(fromEntries(logits.value.outputs))[0]);
    assert.equal(got.length, 1000);
    const worst = Math.max(...got.map((v, i) => Math.abs(v - reference.logits[i])));
    assert.ok(worst <= 1e-3, `max |Δ| ${worst} from onnxruntime`);

    // Classify: the REST API's top-5 for the same photo.
    const coffee = readFileSync(path.join(root, 'www/samples/coffee_orig.png'));
    const classify = await call(predictions, 'Classify', {
      model_spec: { name: 'lite0' },
      input: { example_list: { examples: [{ features: { feature: entries({ 'image/encoded': { bytes_list: { value: [coffee] } } }) } }] } },
    });
    assert.ok(classify.ok, JSON.stringify(classify).slice(0, 300));
    const viaRest = await rest('/v1/models/lite0:classify', JSON.stringify({ examples: [{ 'image/encoded': { b64: coffee.toString('base64') } }] }));
    const classes = classify.value.result.classifications[0].classes;
    assert.deepEqual(classes.map((c) => c.label), viaRest.results[0].map(([label]) => label));
    assert.equal(classes[0].label, 'espresso');
    classes.forEach((c, i) => assert.ok(Math.abs(c.score - viaRest.results[0][i][1]) <= 1e-6, `score ${i}`));

    // Metadata and status.
    const meta = await call(predictions, 'GetModelMetadata', { model_spec: { name: 'half_plus_two' }, metadata_field: ['signature_def'] });
    assert.ok(meta.ok, JSON.stringify(meta));
    const signatures = fromEntries(meta.value.metadata).signature_def;
    assert.equal(signatures.type_url, 'type.googleapis.com/tensorflow.serving.SignatureDefMap');
    // The packed SignatureDefMap names the graph's signature and its method.
    const packed = Buffer.from(signatures.value).toString('latin1');
    for (const word of ['serving_default', 'tensorflow/serving/predict']) assert.ok(packed.includes(word), word);
    const status = await call(models_, 'GetModelStatus', { model_spec: { name: 'lite0' } });
    assert.ok(status.ok, JSON.stringify(status));
    assert.deepEqual(status.value.model_version_status.map((v) => [v.version, v.state]), [['1', 'AVAILABLE']]);

    // TF Serving's errors, each with the status and words the REST API gives the same case.
    const missing = await call(predictions, 'Predict', { model_spec: { name: 'resnet' }, inputs: entries({ x: floats([1], [1]) }) });
    const missingRest = await rest('/v1/models/resnet:predict', '{"instances": [1.0]}');
    assert.deepEqual([missing.code, missing.details], ['NOT_FOUND', missingRest.error]);
    const wrongInput = await call(predictions, 'Predict', { model_spec: { name: 'half_plus_two' }, inputs: entries({ z: floats([1], [1]) }) });
    assert.equal(wrongInput.code, 'INVALID_ARGUMENT', JSON.stringify(wrongInput));
    assert.match(wrongInput.details, /\bz\b/);
    const noField = await call(predictions, 'GetModelMetadata', { model_spec: { name: 'lite0' } });
    assert.deepEqual([noField.code, noField.details], ['INVALID_ARGUMENT', 'GetModelMetadataRequest must specify at least one metadata_field']);
    const multi = await call(predictions, 'MultiInference', { tasks: [] });
    assert.equal(multi.code, 'UNIMPLEMENTED', JSON.stringify(multi));
    // The server answers the next call after every refusal.
    const again = await call(predictions, 'Predict', { model_spec: { name: 'half_plus_two' }, inputs: entries({ x: floats([1], [0]) }) });
    assert.ok(again.ok, JSON.stringify(again));
    assert.deepEqual(floatsOf(fromEntries(again.value.outputs).y), [2.0]);
  } finally {
    for (const c of clients) c.close();
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
