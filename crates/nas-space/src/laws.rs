//! Checks that a space's implementation keeps the contracts of this crate's traits.
//!
//! The built-in spaces are tested with these functions, and a custom space can be too: call them
//! from your own tests. Each returns `Err` with a description of the first violation found.

use std::collections::HashSet;

use rand::{SeedableRng, rngs::ChaCha8Rng};

use crate::{
    Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace, Sequential, TextFormat,
    ToGraph,
};

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `n` samples validate, and the same seed gives the same samples.
pub fn check_sample<S: SearchSpace>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    let (mut a, mut b) = (rng(seed), rng(seed));
    for i in 0..n {
        let x = space.sample(&mut a);
        space
            .validate(&x)
            .map_err(|e| format!("sample {i} ({x:?}) does not validate: {e}"))?;
        let y = space.sample(&mut b);
        if x != y {
            return Err(format!("same seed, different sample {i}: {x:?} vs {y:?}"));
        }
    }
    Ok(())
}

/// Every architecture survives a serde JSON round trip.
pub fn check_serde<S: SearchSpace>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    let mut r = rng(seed);
    for _ in 0..n {
        let x = space.sample(&mut r);
        let json = serde_json::to_string(&x).map_err(|e| format!("serialize {x:?}: {e}"))?;
        let back: S::Arch =
            serde_json::from_str(&json).map_err(|e| format!("deserialize {json}: {e}"))?;
        if back != x {
            return Err(format!(
                "serde round trip changed {x:?} into {back:?} (json {json})"
            ));
        }
    }
    Ok(())
}

/// A mutation validates and differs from its parent.
pub fn check_mutate<S: Mutate>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    let mut r = rng(seed);
    for _ in 0..n {
        let x = space.sample(&mut r);
        let y = space
            .mutate(&x, &mut r)
            .map_err(|e| format!("mutate {x:?}: {e}"))?;
        space
            .validate(&y)
            .map_err(|e| format!("mutation {y:?} of {x:?} does not validate: {e}"))?;
        if x == y {
            return Err(format!("mutation returned its parent {x:?}"));
        }
    }
    Ok(())
}

/// Neighbours validate, are distinct, exclude the architecture itself, and (where the space
/// also mutates) contain every mutation.
pub fn check_neighbors<S: Neighborhood + Mutate>(
    space: &S,
    seed: u64,
    n: usize,
) -> Result<(), String> {
    let mut r = rng(seed);
    for _ in 0..n {
        let x = space.sample(&mut r);
        let ns = space
            .neighbors(&x)
            .map_err(|e| format!("neighbors of {x:?}: {e}"))?;
        if ns.is_empty() {
            return Err(format!("{x:?} has no neighbours"));
        }
        let set: HashSet<_> = ns.iter().cloned().collect();
        if set.len() != ns.len() {
            return Err(format!("duplicate neighbours of {x:?}"));
        }
        if set.contains(&x) {
            return Err(format!("{x:?} is its own neighbour"));
        }
        for y in &ns {
            space
                .validate(y)
                .map_err(|e| format!("neighbour {y:?} does not validate: {e}"))?;
        }
        for _ in 0..4 {
            let m = space.mutate(&x, &mut r).map_err(|e| e.to_string())?;
            if !set.contains(&m) {
                return Err(format!(
                    "mutation {m:?} of {x:?} is not among its neighbours"
                ));
            }
        }
    }
    Ok(())
}

/// `parse(to_text(x)) == x`, and the text of an architecture is one line.
pub fn check_text<S: TextFormat>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    let mut r = rng(seed);
    for _ in 0..n {
        let x = space.sample(&mut r);
        let text = space.to_text(&x);
        let back = space
            .parse(&text)
            .map_err(|e| format!("cannot parse own output {text:?}: {e}"))?;
        if back != x {
            return Err(format!(
                "text round trip changed {x:?} into {back:?} via {text:?}"
            ));
        }
    }
    Ok(())
}

/// Encodings have the announced length and finite values.
pub fn check_encode<S: Encode>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    let mut r = rng(seed);
    for _ in 0..n {
        let x = space.sample(&mut r);
        let e = space.encode(&x).map_err(|e| e.to_string())?;
        if e.len() != space.encoding_len() {
            return Err(format!(
                "encoding of {x:?} has length {}, encoding_len() says {}",
                e.len(),
                space.encoding_len()
            ));
        }
        if e.iter().any(|v| !v.is_finite()) {
            return Err(format!("encoding of {x:?} is not finite"));
        }
    }
    Ok(())
}

/// `index_of(arch_at(i)) == i` for sampled indices (and the first and last), `arch_at` of
/// `size()` fails, and `index_of(arch_at(index_of(x)))` holds for samples.
pub fn check_enumerable<S: Enumerable>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    use rand::RngExt;
    let size = space.size();
    if size == 0 {
        return Err("size() is 0".into());
    }
    let mut r = rng(seed);
    let mut indices = vec![0, size - 1];
    indices.extend((0..n).map(|_| r.random_range(0..size)));
    for i in indices {
        let a = space.arch_at(i).map_err(|e| format!("arch_at({i}): {e}"))?;
        space
            .validate(&a)
            .map_err(|e| format!("arch_at({i}) = {a:?} does not validate: {e}"))?;
        let j = space.index_of(&a).map_err(|e| e.to_string())?;
        if i != j {
            return Err(format!("index_of(arch_at({i})) = {j}"));
        }
    }
    if space.arch_at(size).is_ok() {
        return Err(format!("arch_at(size() = {size}) succeeded"));
    }
    for _ in 0..n {
        let x = space.sample(&mut r);
        let i = space.index_of(&x).map_err(|e| e.to_string())?;
        let y = space.arch_at(i).map_err(|e| e.to_string())?;
        if x != y {
            return Err(format!("arch_at(index_of({x:?})) = {y:?}"));
        }
    }
    Ok(())
}

/// The canonical form is deterministic and its graph form (where given) is consistent.
pub fn check_canonical<S: Canonicalize>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    let mut r = rng(seed);
    for _ in 0..n {
        let x = space.sample(&mut r);
        let a = space.canonical(&x).map_err(|e| e.to_string())?;
        let b = space.canonical(&x.clone()).map_err(|e| e.to_string())?;
        if a != b || a.stable_hash() != b.stable_hash() {
            return Err(format!("canonical form of {x:?} is not deterministic"));
        }
    }
    Ok(())
}

/// Graph edges point forward and stay in range.
pub fn check_graph<S: ToGraph>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    let mut r = rng(seed);
    for _ in 0..n {
        let x = space.sample(&mut r);
        let g = space.graph(&x).map_err(|e| e.to_string())?;
        let len = g.labels.len();
        if let Some(&(a, b)) = g.edges.iter().find(|&&(a, b)| a >= b || b >= len) {
            return Err(format!(
                "graph of {x:?} has a bad edge ({a}, {b}) over {len} nodes"
            ));
        }
    }
    Ok(())
}

/// Every decision has at least one choice; random decision vectors give valid architectures
/// whose decisions are the same vector; samples map to in-range vectors and back to themselves;
/// a vector of the wrong length or with a choice out of range is an error; the decision graph,
/// when the space has one, fits the decisions.
pub fn check_sequential<S: Sequential>(space: &S, seed: u64, n: usize) -> Result<(), String> {
    use rand::RngExt;
    let sizes = space.decisions();
    if let Some(i) = sizes.iter().position(|&k| k == 0) {
        return Err(format!("decision {i} has no choice"));
    }
    if let Some(graph) = space.decision_graph() {
        graph.check(&sizes).map_err(|e| e.to_string())?;
    }
    let mut r = rng(seed);
    for _ in 0..n {
        let c: Vec<usize> = sizes.iter().map(|&k| r.random_range(0..k)).collect();
        let a = space
            .from_decisions(&c)
            .map_err(|e| format!("from_decisions({c:?}): {e}"))?;
        space
            .validate(&a)
            .map_err(|e| format!("from_decisions({c:?}) = {a:?} does not validate: {e}"))?;
        let back = space.to_decisions(&a).map_err(|e| e.to_string())?;
        if back != c {
            return Err(format!("to_decisions(from_decisions({c:?})) = {back:?}"));
        }
        let x = space.sample(&mut r);
        let d = space
            .to_decisions(&x)
            .map_err(|e| format!("to_decisions({x:?}): {e}"))?;
        if d.len() != sizes.len() || d.iter().zip(&sizes).any(|(&c, &k)| c >= k) {
            return Err(format!(
                "to_decisions({x:?}) = {d:?} does not fit the decisions {sizes:?}"
            ));
        }
        let y = space.from_decisions(&d).map_err(|e| e.to_string())?;
        if x != y {
            return Err(format!("from_decisions(to_decisions({x:?})) = {y:?}"));
        }
    }
    let mut long = vec![0; sizes.len()];
    long.push(0);
    if space.from_decisions(&long).is_ok() {
        return Err("from_decisions accepted one decision too many".into());
    }
    if let Some(last) = sizes.len().checked_sub(1) {
        let mut out = vec![0; sizes.len()];
        out[last] = sizes[last];
        if space.from_decisions(&out).is_ok() {
            return Err(format!("from_decisions accepted the out-of-range {out:?}"));
        }
    }
    Ok(())
}
