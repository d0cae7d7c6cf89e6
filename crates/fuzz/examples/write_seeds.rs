//! Writes every target's seeds into `fuzz/corpus/<target>/seed-<n>` (run
//! from the repository root: `cargo run -p edgeserve-fuzz --example
//! write_seeds`), beside the inputs fuzzing found.

fn main() -> std::io::Result<()> {
    for target in edgeserve_fuzz::Target::ALL {
        let dir = std::path::Path::new("fuzz/corpus").join(target.name());
        std::fs::create_dir_all(&dir)?;
        for (i, seed) in edgeserve_fuzz::seeds(target).iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed)?;
        }
    }
    Ok(())
}
