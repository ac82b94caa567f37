//! Replays the committed fuzz corpus (`fuzz/seeds/<target>/`) through the same
//! properties the fuzz targets assert, so CI exercises it on stable without
//! cargo-fuzz. `fuzz/run.sh` grows the corpus.

use std::path::Path;
use steadfast_core::check;

fn replay(target: &str, property: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        property(&data);
        inputs += 1;
    }
    assert!(inputs > 0, "empty corpus at {}", dir.display());
}

#[test]
fn client_ops_corpus_keeps_every_invariant() {
    replay("client_ops", check::client_ops);
}

#[test]
fn close_payload_corpus_parses_consistently() {
    replay("close_payload", check::close_payload);
}

#[test]
fn retry_after_corpus_parses_consistently() {
    replay("retry_after", check::retry_after);
}

#[test]
fn pong_matcher_corpus_agrees_with_the_reference() {
    replay("pong_matcher", check::pong_matcher);
}
