//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The small search spaces of `nas-supernet`'s integration tests, shared with these.
#[path = "../../crates/nas-supernet/tests/support/mod.rs"]
pub mod spaces;

/// The NAS-Bench-201 table: `$NAS_NB201_CSV`, else `../shared/data/nb201/nats_bench_tss_200ep.csv`
/// beside the checkout. `None` (with a message on stderr) when absent, so tests can skip; a
/// failure instead with `NAS_REQUIRE_DATA=1`.
pub fn nb201_csv() -> Option<PathBuf> {
    let path = std::env::var_os("NAS_NB201_CSV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/nb201/nats_bench_tss_200ep.csv")
        });
    if path.is_file() {
        Some(path)
    } else {
        data_missing(&format!(
            "the NAS-Bench-201 table is not at {} (set NAS_NB201_CSV to its path to run this test)",
            path.display()
        ));
        None
    }
}

/// A test's data is missing: with `NAS_REQUIRE_DATA=1` (CI sets it) that is a failure, else
/// the test skips with a message saying how to run it.
pub fn data_missing(what: &str) {
    if std::env::var_os("NAS_REQUIRE_DATA").is_some_and(|v| v == "1") {
        panic!("NAS_REQUIRE_DATA=1 but {what}");
    }
    eprintln!("SKIPPED: {what}");
}
