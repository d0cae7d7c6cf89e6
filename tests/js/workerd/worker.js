// A Worker that uses the package as any Worker would: `import … from
// 'edgeserve'`, resolved by the bundler through the package's `workerd`
// export condition (the wasm arrives as an imported WebAssembly.Module).
import { Classifier } from 'edgeserve';
import model from './model.onnx';
import manifest from './manifest.json';
import labels from './labels.txt';

let classifier; // loaded once per isolate, reused by every request

export default {
  async fetch(request) {
    classifier ??= await Classifier.load({ model, manifest, labels });
    const { pathname } = new URL(request.url);
    try {
      if (request.method === 'POST' && pathname === '/classify') {
        const image = new Uint8Array(await request.arrayBuffer());
        return Response.json(await classifier.classify(image, { topK: 5 }));
      }
      if (request.method === 'POST' && pathname.endsWith(':predict')) {
        return Response.json(await classifier.predict(await request.text()));
      }
      if (request.method === 'GET' && pathname.endsWith('/metadata')) {
        return Response.json(classifier.metadata());
      }
      return Response.json({ error: 'not found' }, { status: 404 });
    } catch (e) {
      return Response.json({ error: e.message, code: e.code, name: e.name }, { status: 400 });
    }
  },
};
