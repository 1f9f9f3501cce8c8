//! Objectives shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use nas_estimate::tabular::Nb201Table;
use nas_space::nb201::{EDGES, Nb201Arch};
use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

/// A synthetic NAS-Bench-201 landscape: a random weight per (edge, operation) plus random
/// pairwise interactions between edges, drawn once from a fixed seed. Rugged enough that
/// random search does not find its optimum in a few dozen queries.
pub struct Landscape {
    unary: [[f64; 5]; EDGES],
    pair: Vec<[[f64; 5]; 5]>,
}

impl Landscape {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut unary = [[0.0; 5]; EDGES];
        for row in &mut unary {
            for w in row.iter_mut() {
                *w = rng.random::<f64>();
            }
        }
        let mut pair = Vec::new();
        for _ in 0..EDGES * EDGES {
            let mut m = [[0.0; 5]; 5];
            for row in &mut m {
                for w in row.iter_mut() {
                    *w = 0.5 * rng.random::<f64>();
                }
            }
            pair.push(m);
        }
        Self { unary, pair }
    }

    /// The objective (higher is better).
    pub fn value(&self, a: &Nb201Arch) -> f64 {
        let ops: Vec<usize> = a.edges.iter().map(|o| o.index()).collect();
        let mut v = 0.0;
        for k in 0..EDGES {
            v += self.unary[k][ops[k]];
            for l in k + 1..EDGES {
                v += self.pair[k * EDGES + l][ops[k]][ops[l]];
            }
        }
        v
    }

    /// A multi-fidelity view: at fidelity `r` (out of `max`) the value is observed with a
    /// deterministic error whose spread shrinks as `1/√r`, and a learning-curve offset that
    /// does not change the ranking.
    pub fn at_fidelity(&self, a: &Nb201Arch, r: f64, max: f64) -> f64 {
        let ops: u64 = a.edges.iter().fold(0, |acc, o| acc * 5 + o.index() as u64);
        let mut rng = ChaCha8Rng::seed_from_u64(ops ^ r.to_bits().rotate_left(17));
        let noise: f64 = rng.random_range(-1.0..1.0);
        self.value(a) - 2.0 * (1.0 - r / max) + 1.5 * noise / r.sqrt()
    }
}

/// The NAS-Bench-201 table, from `$NAS_NB201_CSV` or `../shared/data/nb201/`, if present
/// (absent: a skip, or a failure with `NAS_REQUIRE_DATA=1`).
pub fn nb201_table() -> Option<Nb201Table> {
    let path = Nb201Table::path_from_env().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/nb201/nats_bench_tss_200ep.csv")
    });
    match Nb201Table::open(&path) {
        Ok(t) => Some(t),
        Err(e) => {
            data_missing(&format!(
                "the NAS-Bench-201 table part cannot run: {e} (set NAS_NB201_CSV to its path)"
            ));
            None
        }
    }
}

pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// A test's data is missing: with `NAS_REQUIRE_DATA=1` (CI sets it) that is a failure, else
/// the test skips with a message saying how to run it.
pub fn data_missing(what: &str) {
    if std::env::var_os("NAS_REQUIRE_DATA").is_some_and(|v| v == "1") {
        panic!("NAS_REQUIRE_DATA=1 but {what}");
    }
    eprintln!("SKIPPED: {what}");
}
