// The threaded build's pool (crates/wasm/src/threads.rs): the thread that
// starts it is its first thread and runs the inferences; one worker per
// other thread instantiates the same module on the same shared memory and
// then runs one of the pool's threads for as long as the instance lives.
// Idle pool threads sleep in `memory.atomic.wait`; only during an inference
// do they spin for its work (crates/cpu/src/team.rs).

/** The threads `'auto'` means: the host's cores, at most 4 (a batch-1 classifier gains little past that, and each thread holds a stack and scratch buffers). */
export function autoThreads(cores) {
  return Math.max(1, Math.min(4, Number.isSafeInteger(cores) ? cores : 1));
}

/**
 * Starts a pool of `n` threads for the instantiated threaded `glue`: this
 * thread (where it must then run) and `n - 1` workers. `spawn()`
 * makes one worker and returns `{ post(message), next(): Promise<message>,
 * stop(), started?() }` (`started`: called once every thread runs). Resolves once every thread runs; on a failure every worker
 * started is stopped.
 */
export async function startPool(glue, n, spawn) {
  const module = glue.wasm_module();
  const memory = glue.wasm_memory();
  const workers = [];
  const expect = async (worker, what) => {
    const got = await worker.next();
    if (got?.error !== undefined) throw new Error(`a pool thread did not start: ${got.error}`);
    if (!got?.[what]) throw new Error(`a pool thread answered ${JSON.stringify(got)} where it should say ${what}`);
  };
  try {
    for (let i = 1; i < n; i += 1) workers.push(spawn());
    await Promise.all(
      workers.map((w) => {
        w.post({ module, memory });
        return expect(w, 'ready');
      }),
    );
    glue.threads_start(n);
    await Promise.all(
      workers.map((w, i) => {
        w.post({ run: i });
        return expect(w, 'running');
      }),
    );
  } catch (e) {
    for (const w of workers) w.stop();
    throw e;
  }
  for (const w of workers) w.started?.();
  return workers;
}

/**
 * A worker's side: instantiate on the shared memory when told, then run the
 * pool thread it is given. `post` sends to the starter.
 */
export function threadMain(glue, post) {
  return ({ module, memory, run }) => {
    // Set once this thread traps, for the thread that runs the inference:
    // it may be spinning for this thread's work, and nothing on this side
    // can reach it but the shared memory (its own event loop is blocked).
    let lost;
    try {
      if (module) {
        glue.initSync({ module, memory });
        post({ ready: true });
      } else {
        lost = new Int32Array(glue.wasm_memory().buffer, glue.thread_lost_flag(), 1);
        post({ running: true });
        glue.thread_run(run);
      }
    } catch (e) {
      if (lost) Atomics.store(lost, 0, 1);
      post({ error: String(e?.message ?? e) });
    }
  };
}

/** A queue of the messages a worker sends, for `startPool`'s `next()`. */
export function inbox(subscribe) {
  const queued = [];
  const waiting = [];
  subscribe((message) => (waiting.length ? waiting.shift()(message) : queued.push(message)));
  return () => (queued.length ? Promise.resolve(queued.shift()) : new Promise((resolve) => waiting.push(resolve)));
}
