//! Replays the committed fuzz corpus (`fuzz/seeds/hub_ops/`) through the
//! property the `hub_ops` fuzz target asserts, so CI exercises it on stable
//! without cargo-fuzz. `fuzz/run.sh` grows the corpus; `cargo fuzz cmin`
//! shrinks it before seeds are committed.

use std::path::Path;
use steadfast_hub::check;

#[test]
fn hub_ops_corpus_keeps_every_invariant_and_replays_identically() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/hub_ops");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check::hub_ops(&data);
        inputs += 1;
    }
    assert!(inputs > 0, "empty corpus at {}", dir.display());
}
