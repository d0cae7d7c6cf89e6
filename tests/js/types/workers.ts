// A Worker project's view of the package: `lib: ES2022` and
// @cloudflare/workers-types, no DOM, the `workerd` condition (as wrangler
// resolves it). `tsc --strict` without skipLibCheck must accept it; the
// `@ts-expect-error` lines must stay errors.
import { Classifier, type ImageSource } from 'edgeserve';
import { edgeWorker, type Env } from 'edgeserve/worker';

declare const model: ArrayBuffer;
declare const labels: string;

// The whole Worker, typed as the runtime's own handler type.
const worker: ExportedHandler<Env> = edgeWorker({
  'efficientnet-lite0': {
    model,
    manifest: {
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
    },
    labels,
  },
  half_plus_two: { model, tensors: true },
});
export default worker;

const env: Env = { LOCAL_MODELS: 'efficientnet-lite0', PUBLIC_ENDPOINT: 'true' };
// @ts-expect-error: bindings are strings
const wrong: Env = { MAX_BODY_BYTES: 16_000_000 };
// @ts-expect-error: a bundled model needs its bytes
edgeWorker({ lite0: { manifest: '{}' } });
// @ts-expect-error: a bundled classifier needs its manifest
edgeWorker({ lite0: { model } });

export async function classifyHere(request: Request): Promise<Response> {
  const classifier = await Classifier.load({ model, manifest: '{}', labels: new TextEncoder().encode(labels) });
  const image: ImageSource = await request.arrayBuffer();
  const { classes } = await classifier.classify(image);
  // @ts-expect-error: a number is no image
  await classifier.classify(42);
  console.log(env, wrong);
  return Response.json(classes);
}
