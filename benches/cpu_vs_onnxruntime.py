#!/usr/bin/env python3
"""Latency of edgeserve's CPU backend (tract plus its own kernels) against onnxruntime (PyPI).

Same model, same input, same thread count, interleaved run for run in one
session (the order alternates every run), each timed inside its own process;
medians of --runs runs and their ratio (edgeserve / onnxruntime) are printed. A
benchmark, not a test: it asserts nothing. Run it with `./x bench`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort


def ort_session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads would spin-wait and take the cores from the other side
    # of the interleaving (tract's run right after).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class Worker:
    def __init__(self, exe, model, data, threads, layout, batch=1, batch_plans=None):
        extra = [] if batch_plans is None else [str(batch_plans)]
        self.p = subprocess.Popen([exe, model, data, str(threads), layout, str(batch)] + extra, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        ready = self.p.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise SystemExit(f"worker failed to start: {ready}")
        self.load_ms = float(ready[1])

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def run_us(self):
        return float(self.ask("run"))

    def profile(self):
        self.p.stdin.write("profile\n")
        self.p.stdin.flush()
        rows = []
        while (line := self.p.stdout.readline().strip()) != "end":
            op, nodes, us = line.split()
            rows.append((op, int(nodes), float(us)))
        return rows

    def close(self):
        self.ask("quit")
        self.p.wait(timeout=10)


def same_cpus(threads, how):
    """The CPUs both sides of a row are held to: with `--cpus same`, the first
    `threads` of this process's own when that leaves some out, so that both
    run on the same cores (the worker inherits this process's mask). Why: on
    this VM a core is at times slowed for seconds at a time, and a
    one-thread row whose two sides sat on different cores then measured the
    core, not the code (`benches/README.md`, 2026-12-08). None: both free."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if how != "same" or threads >= len(allowed):
        return None
    return set(allowed[:threads])


def bench(exe, name, model, data, size, threads, runs, warmup, layout, batch=1, batch_plans=None, cpus="same"):
    pinned = same_cpus(threads, cpus)
    everywhere = os.sched_getaffinity(0) if pinned else None
    if pinned:
        os.sched_setaffinity(0, pinned)
    try:
        r = bench_on(exe, name, model, data, size, threads, runs, warmup, layout, batch, batch_plans)
    finally:
        if everywhere:
            os.sched_setaffinity(0, everywhere)
    r["cpus"] = sorted(pinned) if pinned else None
    return r


def bench_on(exe, name, model, data, size, threads, runs, warmup, layout, batch, batch_plans):
    sess = ort_session(model, threads)
    inp = sess.get_inputs()[0].name
    x = np.repeat(np.fromfile(data, dtype="<f4").reshape(1, 3, size, size), batch, axis=0)
    w = Worker(exe, model, data, threads, layout, batch, batch_plans)
    ort_us, tract_us = [], []

    def run_ort():
        t = time.perf_counter_ns()
        sess.run(None, {inp: x})
        return (time.perf_counter_ns() - t) / 1e3

    for _ in range(warmup):
        run_ort()
        w.run_us()
    for i in range(runs):
        if i % 2 == 0:
            ort_us.append(run_ort())
            tract_us.append(w.run_us())
        else:
            tract_us.append(w.run_us())
            ort_us.append(run_ort())
    prof = w.profile()
    w.close()
    o, t = statistics.median(ort_us), statistics.median(tract_us)
    return {"name": name, "threads": threads, "batch": batch, "ort_ms": o / 1e3, "tract_ms": t / 1e3, "ratio": t / o,
            "profile": prof, "load_ms": w.load_ms}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--worker", required=True)
    ap.add_argument("--model", action="append", required=True, help="NAME=MODEL.onnx=INPUT.bin=SIZE")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--layout", default="blocked",
                    help="conv layout(s), comma-separated: blocked (the default: edgeserve's stem, depthwise"
                         " and pointwise kernels on blocks of 8 channels, tract for the rest), nchw (the same"
                         " kernels in NCHW) or nhwc (tract's channels-last kernels)")
    ap.add_argument("--batch", default="1",
                    help="batch size(s), comma-separated: the input repeated along the first dimension; each"
                         " row also gives images/s and the gain over batch 1, on each side (what request"
                         " batching can win on this machine at most)")
    ap.add_argument("--batch-plans", type=int, default=None,
                    help="edgeserve's CpuOptions::batch_plans (0: batches over 1 on the plan with a free batch)")
    ap.add_argument("--cpus", choices=["same", "any"], default="same",
                    help="same (the default): a row with fewer threads than this process has CPUs runs both"
                         " sides on the same first CPUs; any: wherever the scheduler puts them")
    a = ap.parse_args()
    results = []
    per_image = {}
    for spec in a.model:
        name, model, data, size = spec.split("=")
        for threads, layout, batch in [(int(t), l, int(b)) for t in a.threads.split(",") for l in a.layout.split(",")
                                       for b in a.batch.split(",")]:
            try:
                r = bench(a.worker, name, model, data, int(size), threads, a.runs, a.warmup, layout, batch,
                          a.batch_plans, a.cpus)
            except SystemExit as e:
                print(f"{name:6} {layout} threads={threads} batch={batch}  skipped: {e}", flush=True)
                continue
            results.append(r)
            print(f"{name:6} {layout} threads={threads} batch={batch}  onnxruntime {r['ort_ms']:7.2f} ms"
                  f"  edgeserve {r['tract_ms']:7.2f} ms  ratio {r['ratio']:.2f}x"
                  f"  (median of {a.runs}, interleaved; edgeserve load {r['load_ms']:.0f} ms"
                  f"{'; both on CPU ' + ','.join(map(str, r['cpus'])) if r['cpus'] else ''})", flush=True)
            if a.batch != "1":
                rates = (batch * 1e3 / r["ort_ms"], batch * 1e3 / r["tract_ms"])
                base = per_image.setdefault((name, layout, threads), rates) if batch == 1 else per_image.get(
                    (name, layout, threads))
                gain = f"  gain over batch 1: onnxruntime {rates[0] / base[0]:.2f}x, edgeserve {rates[1] / base[1]:.2f}x" \
                    if base else ""
                print(f"    images/s: onnxruntime {rates[0]:.1f}, edgeserve {rates[1]:.1f}{gain}", flush=True)
            total = sum(us for _, _, us in r["profile"])
            for op, nodes, us in r["profile"][:6]:
                print(f"    {op:28} {nodes:3} nodes {us / 1e3:7.2f} ms  {100 * us / total:5.1f}%")
    print(f"onnxruntime {ort.__version__}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
