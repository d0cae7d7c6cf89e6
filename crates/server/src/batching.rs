//! TF Serving's request batching (`--enable_batching`): the engine runs of
//! one model version that are waiting together (from any client, REST or
//! gRPC, predict or classify) are merged along dimension 0 into one run and
//! split back, as TF Serving's batching session does.
//!
//! A [`Batcher`] owns the batch threads (`num_batch_threads`); each model
//! version's engine is wrapped in a [`BatchingEngine`] (its own queue) by
//! the model manager as it loads it. A run waits in its queue until the
//! queue holds `max_batch_size` rows or its oldest run has waited
//! `batch_timeout`; a queue already holding `max_enqueued_batches` batches'
//! worth of rows refuses more with UNAVAILABLE at once instead of growing.
//! The caller's cancellation still applies while its run waits.

use edgeserve::protocol::{Code, Error, Tensor};
use edgeserve::{BackendKind, BoxFuture, Engine, EngineError, ModelSignature, NamedTensors, cancel};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// TF Serving's `BatchingParameters` (its `--batching_parameters_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchingParameters {
    /// The most rows one merged run holds.
    pub max_batch_size: usize,
    /// How long the oldest run of a queue waits for others before its
    /// batch runs anyway.
    pub batch_timeout: Duration,
    /// How many batches' worth of rows a queue holds before it refuses.
    pub max_enqueued_batches: usize,
    /// Threads that run merged batches (every model's).
    pub num_batch_threads: usize,
    /// Batch sizes a merged run is padded up to (ascending; the last equal
    /// to `max_batch_size`); empty: runs take the size they have.
    pub allowed_batch_sizes: Vec<usize>,
}

impl Default for BatchingParameters {
    /// TF Serving's defaults for what a parameters file leaves out.
    fn default() -> Self {
        BatchingParameters {
            max_batch_size: 1000,
            batch_timeout: Duration::ZERO,
            max_enqueued_batches: 10,
            num_batch_threads: std::thread::available_parallelism().map_or(2, usize::from),
            allowed_batch_sizes: Vec::new(),
        }
    }
}

impl BatchingParameters {
    /// TF Serving's checks of a parameters file.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_batch_size == 0 || self.max_enqueued_batches == 0 || self.num_batch_threads == 0 {
            return Err("max_batch_size, max_enqueued_batches and num_batch_threads must be positive".into());
        }
        if !self.allowed_batch_sizes.is_empty() {
            if !self.allowed_batch_sizes.windows(2).all(|w| w[0] < w[1]) || self.allowed_batch_sizes[0] == 0 {
                return Err(
                    "allowed_batch_sizes entries must be positive and monotonically increasing".into(),
                );
            }
            if self.allowed_batch_sizes.last() != Some(&self.max_batch_size) {
                return Err("The last entry in allowed_batch_sizes must match max_batch_size".into());
            }
        }
        Ok(())
    }

    /// The size a merged run of `rows` rows is padded to.
    fn padded(&self, rows: usize) -> usize {
        self.allowed_batch_sizes
            .iter()
            .copied()
            .find(|&n| n >= rows)
            .unwrap_or(rows)
    }
}

/// One engine run waiting for its batch.
struct Task {
    inputs: NamedTensors,
    rows: usize,
    enqueued: Instant,
    /// Set when its caller stopped waiting: the task is dropped unrun.
    abandoned: Arc<AtomicBool>,
    reply: SyncSender<Result<NamedTensors, EngineError>>,
}

impl Task {
    /// Whether `other` may run in the same merged run: the same input names,
    /// dtypes and dimensions after the first.
    fn fits_with(&self, other: &Task) -> bool {
        self.inputs.len() == other.inputs.len()
            && self.inputs.iter().zip(&other.inputs).all(|((a, x), (b, y))| {
                a == b && x.dtype() == y.dtype() && x.shape().get(1..) == y.shape().get(1..)
            })
    }
}

struct Queue {
    id: u64,
    engine: Weak<dyn Engine>,
    tasks: VecDeque<Task>,
    rows: usize,
}

impl Queue {
    /// When its oldest task's batch is due: now if it holds a full batch.
    fn due(&self, params: &BatchingParameters) -> Option<Instant> {
        let oldest = self.tasks.front()?;
        if self.rows >= params.max_batch_size {
            return Some(oldest.enqueued);
        }
        Some(oldest.enqueued + params.batch_timeout)
    }
}

struct State {
    params: BatchingParameters,
    queues: Mutex<Vec<Queue>>,
    wake: Condvar,
    stopping: AtomicBool,
    next_id: AtomicU64,
}

/// The batch threads of a server, and the queues of every model version
/// loaded with batching. Dropping it stops the threads once their runs end;
/// runs still queued then are answered UNAVAILABLE.
pub struct Batcher {
    state: Arc<State>,
    threads: Vec<JoinHandle<()>>,
}

impl Batcher {
    /// Starts `params.num_batch_threads` batch threads.
    pub fn start(params: BatchingParameters) -> Result<Batcher, String> {
        params.validate()?;
        let state = Arc::new(State {
            params,
            queues: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        });
        let threads = (0..state.params.num_batch_threads)
            .map(|i| {
                let state = Arc::clone(&state);
                std::thread::Builder::new()
                    .name(format!("edgeserve-batch-{i}"))
                    .spawn(move || batch_thread(&state))
                    .map_err(|e| format!("cannot start a batch thread: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Batcher { state, threads })
    }

    /// Whether runs of a model with this signature can be merged: every
    /// input's first dimension is free.
    pub fn can_merge(signature: &ModelSignature) -> bool {
        signature.inputs.iter().all(|i| i.shape.first() == Some(&None))
    }

    /// The parameters it runs with.
    pub fn parameters(&self) -> &BatchingParameters {
        &self.state.params
    }

    /// `engine` with its runs batched: a queue of its own on these threads.
    /// An engine with an input whose first dimension is fixed (an ONNX file
    /// exported for batch 1, as `efficientnet-lite2.onnx`) is returned as it
    /// is: its runs cannot be merged, and a merged run would fail every
    /// request in it.
    pub fn wrap(&self, engine: Box<dyn Engine>) -> Box<dyn Engine> {
        if !Batcher::can_merge(engine.signature()) {
            return engine;
        }
        let engine: Arc<dyn Engine> = Arc::from(engine);
        let id = self.state.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.state.queues).push(Queue {
            id,
            engine: Arc::downgrade(&engine),
            tasks: VecDeque::new(),
            rows: 0,
        });
        Box::new(BatchingEngine {
            id,
            inner: engine,
            state: Arc::clone(&self.state),
        })
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        self.state.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for queue in lock(&self.state.queues).iter_mut() {
            for task in queue.tasks.drain(..) {
                let _ = task.reply.send(Err(unavailable("the server is shutting down")));
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(why: &str) -> EngineError {
    EngineError::Request(Error::new(Code::Unavailable, why))
}

/// Where a queued run's outputs arrive.
type Answer = Receiver<Result<NamedTensors, EngineError>>;

/// A model version's engine whose runs go through its batch queue.
pub struct BatchingEngine {
    id: u64,
    inner: Arc<dyn Engine>,
    state: Arc<State>,
}

impl Drop for BatchingEngine {
    fn drop(&mut self) {
        let mut queues = lock(&self.state.queues);
        if let Some(at) = queues.iter().position(|q| q.id == self.id) {
            let queue = queues.swap_remove(at);
            for task in queue.tasks {
                let _ = task
                    .reply
                    .send(Err(unavailable("the model version was unloaded")));
            }
        }
    }
}

/// The rows of a run: the first dimension its inputs share, if they do.
fn rows_of(inputs: &NamedTensors) -> Option<usize> {
    let mut rows = inputs.values().map(Tensor::batch_size);
    let first = rows.next()??;
    rows.all(|r| r == Some(first)).then_some(first)
}

impl BatchingEngine {
    /// Queues a run; its answer, and the flag that withdraws it.
    fn enqueue(&self, inputs: NamedTensors, rows: usize) -> Result<(Answer, Arc<AtomicBool>), EngineError> {
        let params = &self.state.params;
        if rows > params.max_batch_size {
            return Err(EngineError::Request(Error::invalid_argument(format!(
                "Task size {rows} is larger than maximum batch size {}",
                params.max_batch_size
            ))));
        }
        let (reply, answer) = sync_channel(1);
        let mut queues = lock(&self.state.queues);
        let queue = queues
            .iter_mut()
            .find(|q| q.id == self.id)
            .ok_or_else(|| unavailable("the model version was unloaded"))?;
        if queue.rows + rows > params.max_batch_size * params.max_enqueued_batches {
            return Err(unavailable(
                "The batch scheduling queue to which this task was submitted is full",
            ));
        }
        let abandoned = Arc::new(AtomicBool::new(false));
        queue.rows += rows;
        queue.tasks.push_back(Task {
            inputs,
            rows,
            enqueued: Instant::now(),
            abandoned: Arc::clone(&abandoned),
            reply,
        });
        drop(queues);
        self.state.wake.notify_one();
        Ok((answer, abandoned))
    }
}

impl Engine for BatchingEngine {
    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }

    fn signature(&self) -> &ModelSignature {
        self.inner.signature()
    }

    fn run(&self, inputs: NamedTensors) -> BoxFuture<'_, Result<NamedTensors, EngineError>> {
        Box::pin(async move {
            // Inputs without one shared first dimension cannot be merged;
            // they run as they are.
            let Some(rows) = rows_of(&inputs).filter(|&r| r > 0) else {
                return self.inner.run(inputs).await;
            };
            let (answer, abandoned) = self.enqueue(inputs, rows)?;
            // The caller's thread waits here (a worker of the server's
            // blocking pool), checking its cancellation as it does.
            loop {
                match answer.recv_timeout(Duration::from_millis(20)) {
                    Ok(result) => return result,
                    Err(RecvTimeoutError::Timeout) => {
                        if cancel::is_cancelled() {
                            abandoned.store(true, Ordering::Relaxed);
                            return Err(EngineError::Cancelled);
                        }
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(unavailable("the batch thread stopped"));
                    }
                }
            }
        })
    }
}

/// A batch taken to run: its engine and its tasks.
type Batch = (Arc<dyn Engine>, Vec<Task>);

/// Takes the next due batch from any queue: the oldest due queue's tasks,
/// in order, while they fit with its first and within `max_batch_size`.
/// Else when the next one is due (`None`: no queue holds a task).
fn next_batch(
    queues: &mut [Queue],
    params: &BatchingParameters,
    now: Instant,
) -> Result<Batch, Option<Instant>> {
    let due = queues
        .iter()
        .enumerate()
        .filter_map(|(i, q)| q.due(params).map(|d| (d, i)))
        .min();
    let Some((at, i)) = due else {
        return Err(None);
    };
    if at > now {
        return Err(Some(at));
    }
    let queue = &mut queues[i];
    let Some(engine) = queue.engine.upgrade() else {
        queue.tasks.clear();
        queue.rows = 0;
        return Err(Some(now));
    };
    let mut batch: Vec<Task> = Vec::new();
    let mut rows = 0;
    while let Some(next) = queue.tasks.front() {
        let fits = batch.first().is_none_or(|first| first.fits_with(next));
        if !fits || rows + next.rows > params.max_batch_size {
            break;
        }
        let Some(task) = queue.tasks.pop_front() else {
            break;
        };
        queue.rows -= task.rows;
        rows += task.rows;
        batch.push(task);
    }
    Ok((engine, batch))
}

fn batch_thread(state: &State) {
    let mut queues = lock(&state.queues);
    loop {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        match next_batch(&mut queues, &state.params, Instant::now()) {
            Ok((engine, batch)) => {
                drop(queues);
                run_batch(&*engine, batch, &state.params);
                queues = lock(&state.queues);
            }
            Err(Some(at)) => {
                let wait = at.saturating_duration_since(Instant::now());
                queues = state
                    .wake
                    .wait_timeout(queues, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            Err(None) => {
                queues = state.wake.wait(queues).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

/// Runs one merged batch and answers each of its tasks with its own rows.
fn run_batch(engine: &dyn Engine, batch: Vec<Task>, params: &BatchingParameters) {
    let mut batch: Vec<Task> = batch
        .into_iter()
        .filter(|t| !t.abandoned.load(Ordering::Relaxed))
        .collect();
    if batch.is_empty() {
        return;
    }
    let rows: Vec<usize> = batch.iter().map(|t| t.rows).collect();
    let total: usize = rows.iter().sum();
    let padded = params.padded(total);
    let result = merge(&mut batch, padded - total).and_then(|merged| {
        let outputs = pollster::block_on(engine.run(merged))?;
        split(outputs, &rows, padded)
    });
    match result {
        Ok(parts) => {
            for (task, part) in batch.into_iter().zip(parts) {
                let _ = task.reply.send(Ok(part));
            }
        }
        Err(e) => {
            // Every task gets the same error, as TF Serving's batch does.
            let e = Error::from(e);
            for task in batch {
                let _ = task.reply.send(Err(EngineError::Request(e.clone())));
            }
        }
    }
}

/// The tasks' inputs joined along dimension 0, with `pad` copies of the
/// first row after them (to reach an allowed batch size). The inputs are
/// moved out of the tasks, so each is copied once, into the merged run.
fn merge(batch: &mut [Task], pad: usize) -> Result<NamedTensors, EngineError> {
    let names: Vec<String> = batch[0].inputs.keys().cloned().collect();
    names
        .into_iter()
        .map(|name| {
            let padding = match pad {
                0 => None,
                _ => Some(Tensor::stack(vec![batch[0].inputs[&name].row(0)?; pad])?),
            };
            // `fits_with` let only tasks with the first one's inputs in.
            let mut parts: Vec<Tensor> = batch.iter_mut().filter_map(|t| t.inputs.remove(&name)).collect();
            parts.extend(padding);
            Ok((name, Tensor::concat(parts)?))
        })
        .collect()
}

/// Each task's rows of every output; an output without the batch's rows
/// in its first dimension cannot be split, as in TF Serving.
fn split(outputs: NamedTensors, rows: &[usize], padded: usize) -> Result<Vec<NamedTensors>, EngineError> {
    let mut parts: Vec<NamedTensors> = vec![NamedTensors::new(); rows.len()];
    let total: usize = rows.iter().sum();
    for (name, tensor) in outputs {
        if tensor.batch_size() != Some(padded) {
            return Err(EngineError::Request(Error::new(
                Code::FailedPrecondition,
                format!(
                    "Batched output tensor {name} has shape {:?}: its first dimension is not the batch of {padded}",
                    tensor.shape()
                ),
            )));
        }
        let mut sizes = rows.to_vec();
        if padded > total {
            sizes.push(padded - total);
        }
        for (part, piece) in parts.iter_mut().zip(tensor.split_rows(&sizes)?) {
            part.insert(name.clone(), piece);
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Runs = Arc<Mutex<Vec<usize>>>;

    /// The CPU engine of TF Serving's `half_plus_two`, recording the rows
    /// of every run it is given.
    struct Recorded {
        inner: edgeserve_cpu::CpuEngine,
        runs: Runs,
    }

    impl Engine for Recorded {
        fn kind(&self) -> BackendKind {
            self.inner.kind()
        }
        fn signature(&self) -> &ModelSignature {
            self.inner.signature()
        }
        fn run(&self, inputs: NamedTensors) -> BoxFuture<'_, Result<NamedTensors, EngineError>> {
            lock(&self.runs).push(rows_of(&inputs).unwrap_or(0));
            self.inner.run(inputs)
        }
    }

    fn half_plus_two() -> (Box<dyn Engine>, Runs) {
        let bytes = edgeserve_testkit::onnx::half_plus_two();
        let inner = edgeserve_cpu::CpuEngine::load(&bytes, &Default::default()).unwrap();
        let runs = Runs::default();
        let engine = Recorded {
            inner,
            runs: Arc::clone(&runs),
        };
        (Box::new(engine), runs)
    }

    fn params(max_batch_size: usize, timeout_ms: u64, max_enqueued_batches: usize) -> BatchingParameters {
        BatchingParameters {
            max_batch_size,
            batch_timeout: Duration::from_millis(timeout_ms),
            max_enqueued_batches,
            num_batch_threads: 1,
            allowed_batch_sizes: Vec::new(),
        }
    }

    fn x(values: &[f32]) -> NamedTensors {
        NamedTensors::from([(
            "x".to_owned(),
            Tensor::from_slice(&[values.len()], values).unwrap(),
        )])
    }

    fn y(outputs: &NamedTensors) -> Vec<f32> {
        outputs["y"].as_slice::<f32>().unwrap().to_vec()
    }

    /// Runs each of `inputs` on its own thread, `gap` apart, all at once.
    fn together(
        engine: &Arc<dyn Engine>,
        inputs: Vec<Vec<f32>>,
        gap: Duration,
    ) -> Vec<(Result<NamedTensors, EngineError>, Duration)> {
        let threads: Vec<_> = inputs
            .into_iter()
            .map(|v| {
                let engine = Arc::clone(engine);
                std::thread::sleep(gap);
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let result = pollster::block_on(engine.run(x(&v)));
                    (result, started.elapsed())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }

    #[test]
    fn runs_waiting_together_are_merged_into_one_and_split_back_exactly() {
        // Eight rows fill the batch, which then runs at once; the timeout
        // only bounds the wait should a thread start late.
        let batcher = Batcher::start(params(8, 5000, 4)).unwrap();
        let (inner, runs) = half_plus_two();
        let engine: Arc<dyn Engine> = Arc::from(batcher.wrap(inner));
        let inputs = vec![vec![1.0], vec![2.0, 3.0], vec![4.0, 5.0, 6.0], vec![-4.0, 0.5]];
        let results = together(&engine, inputs.clone(), Duration::from_millis(10));
        for (v, (result, _)) in inputs.iter().zip(results) {
            let expected: Vec<f32> = v.iter().map(|x| 0.5 * x + 2.0).collect();
            assert_eq!(y(&result.unwrap()), expected);
        }
        assert_eq!(*lock(&runs), [8], "one run of all eight rows");
    }

    #[test]
    fn a_batch_is_padded_to_the_next_allowed_size_and_the_padding_dropped() {
        let batcher = Batcher::start(BatchingParameters {
            allowed_batch_sizes: vec![4, 8],
            ..params(8, 1000, 4)
        })
        .unwrap();
        let (inner, runs) = half_plus_two();
        let engine: Arc<dyn Engine> = Arc::from(batcher.wrap(inner));
        let results = together(
            &engine,
            vec![vec![1.0], vec![2.0, 3.0]],
            Duration::from_millis(10),
        );
        let answers: Vec<Vec<f32>> = results.into_iter().map(|(r, _)| y(&r.unwrap())).collect();
        assert_eq!(answers, [vec![2.5], vec![3.0, 3.5]]);
        assert_eq!(*lock(&runs), [4], "three rows padded to four");
    }

    #[test]
    fn a_full_queue_refuses_at_once_and_what_it_accepted_is_answered() {
        // Room for one batch of two rows, which waits up to 5 s to fill:
        // one row waits, two more do not fit, one more fills the batch.
        let batcher = Batcher::start(params(2, 5000, 1)).unwrap();
        let (inner, runs) = half_plus_two();
        let engine: Arc<dyn Engine> = Arc::from(batcher.wrap(inner));
        let results = together(
            &engine,
            vec![vec![1.0], vec![2.0, 3.0], vec![4.0]],
            Duration::from_millis(200),
        );
        let (refused, waited) = &results[1];
        let e = Error::from(refused.clone().unwrap_err());
        assert_eq!(e.code(), Code::Unavailable);
        assert_eq!(
            e.message(),
            "The batch scheduling queue to which this task was submitted is full"
        );
        assert!(
            *waited < Duration::from_millis(300),
            "refused at once, not after {waited:?}"
        );
        assert_eq!(y(results[0].0.as_ref().unwrap()), [2.5]);
        assert_eq!(y(results[2].0.as_ref().unwrap()), [4.0]);
        assert_eq!(*lock(&runs), [2], "the two accepted rows ran together");
    }

    #[test]
    fn a_run_larger_than_a_batch_is_refused_with_tf_servings_message() {
        let batcher = Batcher::start(params(2, 0, 1)).unwrap();
        let (inner, runs) = half_plus_two();
        let engine = batcher.wrap(inner);
        let e = Error::from(pollster::block_on(engine.run(x(&[1.0, 2.0, 3.0]))).unwrap_err());
        assert_eq!(e.message(), "Task size 3 is larger than maximum batch size 2");
        assert!(lock(&runs).is_empty());
    }

    #[test]
    fn a_cancelled_run_stops_waiting_and_is_never_run() {
        let batcher = Batcher::start(params(8, 3000, 1)).unwrap();
        let (inner, runs) = half_plus_two();
        let engine = batcher.wrap(inner);
        let token = cancel::CancelToken::new();
        let canceller = {
            let token = token.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                token.cancel();
            })
        };
        let started = Instant::now();
        let result = cancel::scope(&token, || pollster::block_on(engine.run(x(&[1.0]))));
        canceller.join().unwrap();
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // Past the batch's timeout, nothing ran.
        std::thread::sleep(Duration::from_millis(3500).saturating_sub(started.elapsed()));
        assert!(lock(&runs).is_empty());
    }

    #[test]
    fn a_model_with_a_fixed_batch_is_not_merged_and_each_run_answers() {
        use edgeserve_testkit::onnx::{Graph, node};
        let g = Graph::new(vec![node("Relu", &["x"], "y", vec![])], vec![("x", vec![1, 2])]);
        let inner = edgeserve_cpu::CpuEngine::load(&g.bytes(), &Default::default()).unwrap();
        assert!(!Batcher::can_merge(inner.signature()));
        let batcher = Batcher::start(params(8, 50, 4)).unwrap();
        let engine: Arc<dyn Engine> = Arc::from(batcher.wrap(Box::new(inner)));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let engine = Arc::clone(&engine);
                std::thread::spawn(move || {
                    let v = [i as f32, -1.0];
                    let inputs =
                        NamedTensors::from([("x".to_owned(), Tensor::from_slice(&[1, 2], &v).unwrap())]);
                    let out = pollster::block_on(engine.run(inputs)).unwrap();
                    assert_eq!(out["y"].as_slice::<f32>().unwrap(), [i as f32, 0.0]);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(Batcher::can_merge(half_plus_two().0.signature()));
    }

    #[test]
    fn parameters_are_checked_as_tf_serving_checks_them() {
        assert!(BatchingParameters::default().validate().is_ok());
        let bad = |p: BatchingParameters| p.validate().unwrap_err();
        assert!(bad(params(0, 0, 1)).contains("positive"));
        let not_last = BatchingParameters {
            allowed_batch_sizes: vec![2, 4],
            ..params(8, 0, 1)
        };
        assert_eq!(
            bad(not_last),
            "The last entry in allowed_batch_sizes must match max_batch_size"
        );
        let unsorted = BatchingParameters {
            allowed_batch_sizes: vec![4, 2, 8],
            ..params(8, 0, 1)
        };
        assert!(bad(unsorted).contains("monotonically increasing"));
    }
}
