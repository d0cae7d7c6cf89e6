// The demo page: picks an image (file, drop, paste, camera, samples), shows
// it, hands it to the worker and shows the top-5 and the report. Nothing
// here blocks on inference.

const $ = (id) => document.getElementById(id);
const result = $('result');
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const pending = new Map();
let nextId = 0;

worker.onmessage = ({ data }) => {
  if (data.progress) return showProgress(data.progress);
  const done = pending.get(data.id);
  pending.delete(data.id);
  if (data.error) done?.reject(data.error);
  else done?.resolve(data.result);
};

function run(image) {
  const id = nextId++;
  const message = { id, model: $('model').value, backend: $('backend').value, image };
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage(message, image instanceof ImageBitmap ? [image] : []);
  });
}

function showProgress({ model, loaded, total }) {
  const box = $('download');
  box.hidden = total !== undefined && loaded >= total;
  const mb = (n) => (n / 1e6).toFixed(1);
  $('download-text').textContent = total ? `Downloading ${model}: ${mb(loaded)} of ${mb(total)} MB` : `Downloading ${model}: ${mb(loaded)} MB`;
  $('download-bar').value = total ? loaded / total : 0;
}

function setState(state, message) {
  result.dataset.state = state;
  $('message').textContent = message;
}

/** Readable words for the errors a person can act on. */
function explain(error) {
  const offline = !navigator.onLine;
  switch (error.code) {
    case 'invalid_image':
      return `This image cannot be classified: ${error.message}`;
    case 'remote':
      return offline
        ? `The remote endpoint is unavailable while this device is offline; choose a local backend. (${error.message})`
        : `The remote endpoint could not answer: ${error.message}`;
    case 'backend_unavailable':
      return `That backend is not available in this browser: ${error.message}`;
    case 'fetch_failed':
      return offline ? `This model is not cached for offline use: ${error.message}` : `Could not download the model: ${error.message}`;
    default:
      return `${error.code}: ${error.message}`;
  }
}

const ms = (x) => `${x.toFixed(1)} ms`;

function showResult({ classes, report }) {
  const list = $('classes');
  list.replaceChildren(
    ...classes.map((c) => {
      const li = document.createElement('li');
      li.style.setProperty('--score', `${(100 * c.score).toFixed(1)}%`);
      const name = document.createElement('span');
      name.textContent = c.label ?? `class ${c.index}`;
      const score = document.createElement('span');
      score.textContent = `${(100 * c.score).toFixed(1)}%`;
      li.append(name, score);
      return li;
    }),
  );
  $('ran').textContent = report.backend;
  $('ran').dataset.backend = report.backend;
  $('why').textContent = report.reason.slice(report.backend.length + 2);
  // The CPU backend's threads: more than one where the page is cross-origin
  // isolated (www/serve.mjs sends the headers) and the engine runs in a Worker.
  $('threads').textContent = report.threads == null ? '–' : String(report.threads);
  const t = report.timings;
  $('times').textContent = `decode ${ms(t.decodeMs)}, preprocess ${ms(t.preprocessMs)}, inference ${ms(t.inferenceMs)}, network ${ms(t.transferMs)}`;
  $('report').hidden = false;
}

async function classify(image, preview) {
  const img = $('preview');
  if (preview) {
    img.src = preview;
    img.hidden = false;
    img.alt = 'the image being classified';
  }
  $('classes').replaceChildren();
  $('report').hidden = true;
  setState('busy', 'Classifying…');
  try {
    const r = await run(image);
    showResult(r);
    setState('done', `Top class: ${r.classes[0]?.label ?? 'none'}`);
  } catch (e) {
    setState('error', explain(e));
  }
}

function classifyBlob(blob) {
  if (!blob) return;
  classify(blob, URL.createObjectURL(blob));
}

$('file').addEventListener('change', (e) => {
  classifyBlob(e.target.files[0]);
  e.target.value = '';
});

const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  classifyBlob(e.dataTransfer.files[0]);
});
drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    $('file').click();
  }
});
document.addEventListener('paste', (e) => {
  const file = [...e.clipboardData.files].find((f) => f.type.startsWith('image/'));
  if (file) classifyBlob(file);
});

for (const [button, file] of [
  ['sample-coffee', 'coffee_orig.png'],
  ['sample-cat', 'chelsea_orig.png'],
]) {
  $(button).addEventListener('click', async () => {
    try {
      classifyBlob(await (await fetch(`./samples/${file}`)).blob());
    } catch (e) {
      setState('error', `Could not load the sample: ${e.message}`);
    }
  });
}

let stream;
$('camera').addEventListener('click', async () => {
  const video = $('video');
  if (stream) {
    stream.getTracks().forEach((t) => t.stop());
    stream = undefined;
    video.hidden = $('capture').hidden = true;
    $('camera').textContent = 'Use the camera';
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    video.srcObject = stream;
    await video.play();
    video.hidden = $('capture').hidden = false;
    $('camera').textContent = 'Stop the camera';
  } catch (e) {
    setState('error', `The camera is not available: ${e.message}`);
  }
});
$('capture').addEventListener('click', async () => {
  const video = $('video');
  const canvas = Object.assign(document.createElement('canvas'), { width: video.videoWidth, height: video.videoHeight });
  canvas.getContext('2d').drawImage(video, 0, 0);
  classify(await createImageBitmap(canvas), canvas.toDataURL('image/jpeg'));
});

function showNetwork() {
  $('network').textContent = navigator.onLine ? '' : 'Offline: local backends still work; the remote endpoint is unavailable.';
}
addEventListener('online', showNetwork);
addEventListener('offline', showNetwork);
showNetwork();

// Offline use: the service worker precaches the page, the engine and Lite0.
// The page works without it (the first visit, or browsers without one).
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('./sw.js').then(
    () => navigator.serviceWorker.ready.then(() => (document.body.dataset.offlineReady = 'true')),
    (e) => console.warn(`no offline use: ${e.message}`),
  );
}
