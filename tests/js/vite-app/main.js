import { Classifier, EdgeserveError, wasm } from 'edgeserve';

// For comparing the two wasm builds: `?cpu` classifies the photo on the CPU
// only and stops there; `?simd128` asks for the simd128 build instead of
// the relaxed-SIMD one. `?retry`: the test makes the first wasm download
// fail, and the page loads again after that first load's error.
const params = new URLSearchParams(location.search);
const cpuOnly = params.has('cpu');
// `?worker`: the photo is classified in a dedicated Worker (worker.js),
// where a cross-origin isolated page gets the threaded build.
const inWorker = params.has('worker');
if (params.has('simd128')) wasm.relaxedSimd = false;

const result = document.getElementById('result');
const show = (state, value) => {
  result.dataset.state = state;
  result.textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
};

if (inWorker) {
  show('ready', 'ready (the worker loads the model when the photo comes)');
  document.getElementById('file').addEventListener('change', (event) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    worker.onmessage = ({ data }) => (data.error ? show('error', data.error) : show('done', data));
    worker.onerror = (e) => show('error', `the worker failed: ${e.message}`);
    worker.postMessage(event.target.files[0]);
  });
}

const progress = [];
const load = () =>
  Classifier.load({
    model: new URL('/efficientnet-lite0/efficientnet-lite0.onnx', location.href),
    onProgress: (p) => progress.push(p.loaded),
    ...(cpuOnly ? { backend: 'cpu' } : {}),
  });
let firstLoad;
const ready = inWorker
  ? new Promise(() => {})
  : !params.has('retry')
  ? load()
  : load().then(
      () => Promise.reject(new Error('the first load started the wasm, though its download was made to fail')),
      (e) => {
        firstLoad = { isEdgeserveError: e instanceof EdgeserveError, code: e.code, status: e.status, message: e.message, build: wasm.build };
        return load();
      },
    );
ready.then(
  () => show('ready', `ready (${progress.length} progress events)`),
  (e) => show('error', `${e.code}: ${e.message}`),
);

document.getElementById('file').addEventListener('change', async (event) => {
  if (inWorker) return;
  const file = event.target.files[0];
  try {
    const classifier = await ready;
    const fromFile = await classifier.classify(file, { topK: 5 });
    const build = { wasmBuild: wasm.build, relaxedSimdSupported: wasm.relaxedSimdSupported, threadsUsed: wasm.threadsUsed, threadsUnavailable: wasm.threadsUnavailable };
    if (cpuOnly) return show('done', { fromFile, firstLoad, ...build });
    const img = document.getElementById('preview');
    img.src = URL.createObjectURL(file);
    await img.decode();
    const fromImage = await classifier.classify(img, { topK: 5 });
    // The other drawables the package takes: a canvas, an ImageBitmap, a
    // VideoFrame, an OffscreenCanvas.
    const canvas = Object.assign(document.createElement('canvas'), { width: img.naturalWidth, height: img.naturalHeight });
    canvas.getContext('2d').drawImage(img, 0, 0);
    const bitmap = await createImageBitmap(file);
    const frame = new VideoFrame(bitmap, { timestamp: 0 });
    const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
    offscreen.getContext('2d').drawImage(bitmap, 0, 0);
    const drawables = {};
    for (const [name, source] of Object.entries({ canvas, bitmap, frame, offscreen })) {
      drawables[name] = (await classifier.classify(source, { topK: 1 })).classes[0].label;
    }
    frame.close();
    let error;
    try {
      await classifier.classify(new Blob(['not an image']));
    } catch (e) {
      error = { isEdgeserveError: e instanceof EdgeserveError, code: e.code, message: e.message };
    }
    // The same photo on the GPU, asked for by name (SwiftShader in the tests).
    const gpu = await Classifier.load({ model: new URL('/efficientnet-lite0/efficientnet-lite0.onnx', location.href), backend: 'webgpu' });
    const onGpu = await gpu.classify(file, { topK: 5 });
    gpu.dispose();
    show('done', { fromFile, fromImage, drawables, error, onGpu, progressEvents: progress.length, ...build });
  } catch (e) {
    show('error', `${e.code}: ${e.message}`);
  }
});
