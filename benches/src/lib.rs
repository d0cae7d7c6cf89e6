//! Benchmark helpers; the benchmarks are the binaries in `src/bin` and the
//! drivers beside this crate (`benches/*.py`), run by `./x bench`.
