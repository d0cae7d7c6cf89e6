// A Node project's view of the package: `lib: ES2022` and @types/node, no
// DOM, NodeNext resolution (the `node` condition's types). `tsc --strict`
// without skipLibCheck must accept it; the `@ts-expect-error` lines must
// stay errors.
import { readFile } from 'node:fs/promises';
import { Classifier, EdgeserveError, Endpoint, type ImageSource, type Progress, wasm } from 'edgeserve';

async function main(): Promise<void> {
  const dir = 'models/efficientnet-lite0/';
  const progress: Progress[] = [];
  const classifier = await Classifier.load({
    model: await readFile(`${dir}efficientnet-lite0.onnx`),
    manifest: await readFile(`${dir}manifest.json`),
    labels: await readFile(`${dir}imagenet_labels.txt`),
    onProgress: (p) => progress.push(p),
  });
  // A Buffer, a Blob, pixels: the images Node has.
  const images: ImageSource[] = [await readFile('coffee.png'), new Blob([]), { width: 1, height: 1, data: new Uint8Array(4), format: 'rgba' }];
  for (const image of images) {
    const { classes, report } = await classifier.classify(image, { topK: 5 });
    console.log(classes[0]?.label, report.backend, report.modelVerified);
  }
  // @ts-expect-error: a number is no image
  await classifier.classify(42);
  // @ts-expect-error: no DOM here: an <img>-like object is no image either
  await classifier.classify({ naturalWidth: 1, naturalHeight: 1, complete: true });
  wasm.paths = new URL('file:///opt/edgeserve/dist/');
  // @ts-expect-error: webgpu is 'auto' or a boolean
  wasm.webgpu = 'no';
  try {
    await Classifier.load({ model: 'https://cdn.example/m.onnx', cache: false });
  } catch (e) {
    if (e instanceof EdgeserveError) console.log(e.code, e.status);
  }
  const endpoint = await Endpoint.create({ models: [{ name: 'lite0', model: await readFile(`${dir}efficientnet-lite0.onnx`), manifest: await readFile(`${dir}manifest.json`) }] });
  const reply: Response = await endpoint.handle(new Request('http://127.0.0.1/v1/models/lite0'));
  console.log(reply.status, progress.length);
  classifier[Symbol.dispose]();
}

void main();
