// A browser app's view of the package (the DOM library, bundler
// resolution: the `default` condition's types). Uses every public type;
// `tsc --noEmit --strict` without skipLibCheck must accept it, and the
// `@ts-expect-error` lines must stay errors (so the types are precise, not
// `any`). node.ts and workers.ts are the same for hosts without the DOM.
import {
  Classifier,
  EdgeserveError,
  Endpoint,
  type EndpointModel,
  type EndpointOptions,
  type EndpointLimits,
  type RemoteSignature,
  type Backend,
  type BackendKind,
  type Classification,
  type ClassScore,
  type ErrorCode,
  type FileSource,
  type ImageSource,
  type LoadOptions,
  type ModelManifest,
  type ModelMetadata,
  type Pixels,
  type PredictRequest,
  type PredictResponse,
  type Progress,
  type RemoteOptions,
  type Report,
  type TensorInfo,
  TensorModel,
  type TensorModelOptions,
  type TensorReport,
  type TensorValue,
  type WasmBuild,
  type WasmSettings,
  type Why,
  wasm,
} from 'edgeserve';
import { Classifier as CpuClassifier } from 'edgeserve/cpu';

const manifest: ModelManifest = {
  schema: 'edgeserve.model/v1',
  name: 'efficientnet-lite0',
  version: 1,
  model: { file: 'efficientnet-lite0.onnx', bytes: 18547719, sha256: 'ad5c' },
  input: { name: 'input', layout: 'nchw', width: 224, height: 224 },
  output: { name: 'logits', kind: 'logits' },
  preprocessing: {
    resize: { kind: 'shorter_side', size: 256 },
    crop: 'center',
    normalize: { kind: 'mean_std', mean: [127, 127, 127], std: [128, 128, 128] },
    channel_order: 'rgb',
  },
  labels: { file: 'imagenet_labels.txt', sha256: '4eb3' },
};

const remote: RemoteOptions = { url: 'https://tfs.example/', headers: { Authorization: 'Bearer x' }, timeoutMs: 5000, versionLabel: 'stable', discovery: 'auto', format: 'row' };
// @ts-expect-error: discovery is 'auto' or 'off'
const badDiscovery: RemoteOptions = { url: 'https://tfs.example/', discovery: 'metadata' };
const backend: Backend = 'auto';
const source: FileSource = new URL('https://cdn.example/model.onnx');

async function main(signal: AbortSignal): Promise<void> {
  const options: LoadOptions = {
    model: source,
    manifest,
    backend,
    remote,
    maxLocalModelBytes: 20_000_000,
    maxImagePixels: 12_000_000,
    maxImagesPerRequest: 8,
    maxRequestPixels: 48_000_000,
    onProgress: (p: Progress) => console.log(p.file, p.loaded, p.total ?? '?', p.cached === true),
    signal,
    cache: true,
  };
  const where: { runs: 'local' | 'remote'; reason: string } = await Classifier.plan({ manifest: '{}', remote, maxLocalModelBytes: 20_000_000 });
  console.log(where.runs, where.reason);
  // @ts-expect-error plan needs the manifest itself
  await Classifier.plan({ remote });
  const classifier: Classifier = await Classifier.load(options);
  const pixels: Pixels = { width: 1, height: 1, data: new Uint8Array(4) };
  const images: ImageSource[] = [pixels, new Uint8Array(8), new Blob([]), new ImageData(1, 1), new Image(), document.createElement('canvas')];
  for (const image of images) {
    const result: Classification = await classifier.classify(image, { topK: 3, signal });
    const top: ClassScore | undefined = result.classes[0];
    const label: string | null = top?.label ?? null;
    const report: Report = result.report;
    const ran: BackendKind = report.backend;
    const why: Why = report.why;
    if (why.kind === 'over_budget') {
      const over: number = why.modelBytes - why.budget;
      console.log(over);
    }
    const verified: boolean | null = report.modelVerified;
    const signature: RemoteSignature | null = report.signature;
    if (signature?.from === 'manifest') console.log(signature.reason ?? '');
    console.log(label, ran, report.reason, report.timings.inferenceMs, verified, badDiscovery);
  }
  // @ts-expect-error: a number is no image
  await classifier.classify(42);
  // A manifest written by hand to try a model: no size, no hash.
  const { model: _, ...rest } = manifest;
  const unverified: ModelManifest = { ...rest, model: { file: 'mine.onnx' } };
  const cpu = await CpuClassifier.load({ model: new URL('https://cdn.example/mine.onnx'), manifest: unverified, labels: 'labels.txt' });
  await cpu.classify(document.createElement('img'));
  // @ts-expect-error: a hash without its size
  const half: ModelManifest = { ...rest, model: { file: 'mine.onnx', sha256: 'ad5c' } };
  const cleared: boolean = await Classifier.clearCache();
  console.log(half, cleared);
  const row: TensorValue = [[0.5, 1], { b64: 'AAAA' }];
  const request: PredictRequest = { signature_name: 'serving_default', instances: [row] };
  const response: PredictResponse = await classifier.predict(request);
  if ('predictions' in response) console.log(response.predictions.length);
  const { report } = await classifier.predictWithReport(JSON.stringify(request));
  console.log(report.why.kind);
  const meta: ModelMetadata = classifier.metadata();
  const info: TensorInfo | undefined = meta.metadata.signature_def.signature_def['serving_default']?.inputs['input'];
  console.log(info?.dtype, classifier.backend, classifier.model.version, classifier.disposed);
  classifier.dispose();
  try {
    await classifier.classify(pixels);
  } catch (e) {
    if (e instanceof EdgeserveError) {
      const code: ErrorCode = e.code;
      console.log(code, e.status, e.message);
    }
  }

  // @ts-expect-error: not a backend
  const wrong: Backend = 'gpu';
  // @ts-expect-error: the constructor is private
  new Classifier();
  // @ts-expect-error: topK is a number
  await classifier.classify(pixels, { topK: '3' });
  // @ts-expect-error: a request has instances or inputs
  await classifier.predict({ signature_name: 'x' });
  // @ts-expect-error: labels are nullable
  const sure: string = (await classifier.classify(pixels)).classes[0]!.label;
  console.log(wrong, sure);

  // A TF Serving endpoint over local models (a Worker's fetch handler).
  const model: EndpointModel = { name: 'lite0', model: new Uint8Array(0), manifest, labels: 'a\nb' };
  const limits: EndpointLimits = { maxImagePixels: 1_000_000, maxJsonValues: 200_000 };
  const serving: EndpointOptions = { models: [model], cors: true, maxBodyBytes: 1 << 20, limits };
  const endpoint = await Endpoint.create(serving);
  const reply: Response = await endpoint.handle(new Request('http://x/v1/models/lite0'));
  const name: string | undefined = Endpoint.modelOf('GET', '/v1/models/lite0/metadata');
  console.log(reply.status, name, endpoint.models.length);
  endpoint.dispose();
  // @ts-expect-error: models are required
  await Endpoint.create({ cors: true });
  // @ts-expect-error: the version is a number
  await Endpoint.create({ models: [{ ...model, version: '2' }] });
  // @ts-expect-error: a limit is a number
  await Endpoint.create({ models: [model], limits: { maxImagesPerRequest: 'many' } });

  // Any ONNX model as tensors in, tensors out (no manifest).
  const tensorOptions: TensorModelOptions = { model: new URL('https://example.com/half_plus_two.onnx'), name: 'half_plus_two', backend: 'cpu' };
  const tensors = await TensorModel.load(tensorOptions);
  const answer: PredictResponse = await tensors.predict({ instances: [1.0, 2.0, 5.0] });
  const tensorReport: TensorReport = (await tensors.predictWithReport('{"instances": [1.0]}')).report;
  const tensorMeta: ModelMetadata = tensors.metadata();
  console.log(answer, tensorReport.threads, tensorMeta, tensors.backend, tensors.model.version);
  tensors.dispose();
  await Endpoint.create({ models: [{ name: 'half_plus_two', model: new Uint8Array(0), tensors: true }] });
  // @ts-expect-error: a tensor model runs on the CPU
  await TensorModel.load({ model: new Uint8Array(0), backend: 'webgpu' });
  // @ts-expect-error: a tensor model has no classify
  await tensors.classify(pixels);

  // The wasm: which build and from where, chosen before the first load.
  wasm.relaxedSimd = wasm.relaxedSimdSupported && true;
  wasm.webgpu = 'auto';
  wasm.paths = 'https://cdn.example/edgeserve@0.1.0/dist/';
  wasm.module = await WebAssembly.compileStreaming(fetch('https://cdn.example/edgeserve_bg.wasm'));
  const settings: WasmSettings = wasm;
  const gpu: boolean | null = settings.webgpuBuild;
  // @ts-expect-error: webgpu is 'auto' or a boolean
  wasm.webgpu = 'yes';
  const build: WasmBuild | null = wasm.build;
  console.log(gpu);
  // @ts-expect-error: a build is one of two names
  const other: WasmBuild = 'simd256';
  // @ts-expect-error: which build ran is read, not set
  wasm.build = 'simd128';
  console.log(build, other);
}

void main(new AbortController().signal);
