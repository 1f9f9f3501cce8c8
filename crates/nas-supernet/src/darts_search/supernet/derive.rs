//! The derivation of a discrete architecture from the alphas' probabilities.

use nas_space::darts::{DartsOp, Genotype};
use nas_space::nb201::{EDGES, Nb201Arch, Nb201Op};

/// The NAS-Bench-201 cell of the largest probability on each edge (`none` included, as
/// AutoDL-Projects derives it). `max_skip` caps the number of `skip_connect` edges: the
/// weakest skip connections beyond it are replaced by their edge's next-best operation.
/// Masked operations have probability 0 and are never chosen while another is alive.
pub fn derive_nb201(probs: &[Vec<f64>], max_skip: Option<usize>) -> Nb201Arch {
    let skip = Nb201Op::SkipConnect.index();
    let mut p: Vec<Vec<f64>> = probs.to_vec();
    loop {
        let choice: Vec<usize> = p.iter().map(|row| argmax(row)).collect();
        let skips: Vec<usize> = (0..choice.len()).filter(|&e| choice[e] == skip).collect();
        match max_skip {
            Some(m) if skips.len() > m => {
                let weakest = skips
                    .iter()
                    .copied()
                    .min_by(|&a, &b| p[a][skip].total_cmp(&p[b][skip]))
                    .unwrap_or_else(|| unreachable!("more skips than the cap"));
                p[weakest][skip] = f64::NEG_INFINITY;
            }
            _ => {
                let mut edges = [Nb201Op::None; EDGES];
                for (e, &c) in choice.iter().enumerate().take(EDGES) {
                    edges[e] = Nb201Op::ALL[c.min(Nb201Op::ALL.len() - 1)];
                }
                return Nb201Arch::new(edges);
            }
        }
    }
}

/// Index of the largest value (the first on ties).
fn argmax(row: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// DARTS' `genotype()`: for each intermediate node, the two incoming edges whose strongest
/// non-`none` operation is strongest, each with that operation; edges are listed strongest
/// first and ties keep the lower input first (Python's stable sort). `normal` and `reduce`
/// are `[edge][op]` probabilities in the order of [`DartsOp::PRIMITIVES`] and of the edges
/// `(node 2 ← 0), (2 ← 1), (3 ← 0), …`. `max_skip` caps the `skip_connect` operations of the
/// normal cell (P-DARTS): the weakest are replaced by the next choice until the cap holds.
pub fn derive_genotype(
    normal: &[Vec<f64>],
    reduce: &[Vec<f64>],
    steps: usize,
    max_skip: Option<usize>,
) -> Genotype {
    let skip = DartsOp::PRIMITIVES
        .iter()
        .position(|&o| o == DartsOp::SkipConnect)
        .unwrap_or(3);
    let mut normal = normal.to_vec();
    let reduce_cell = parse_cell(reduce, steps).0;
    loop {
        let (cell, chosen) = parse_cell(&normal, steps);
        let skips: Vec<usize> = chosen
            .iter()
            .zip(&cell)
            .filter(|(_, (op, _))| *op == DartsOp::SkipConnect)
            .map(|(&e, _)| e)
            .collect();
        match max_skip {
            Some(m) if skips.len() > m => {
                let weakest = skips
                    .iter()
                    .copied()
                    .min_by(|&a, &b| normal[a][skip].total_cmp(&normal[b][skip]))
                    .unwrap_or_else(|| unreachable!("more skips than the cap"));
                normal[weakest][skip] = f64::NEG_INFINITY;
            }
            _ => {
                let concat: Vec<usize> = (2..steps + 2).collect();
                return Genotype {
                    normal: cell,
                    normal_concat: concat.clone(),
                    reduce: reduce_cell,
                    reduce_concat: concat,
                };
            }
        }
    }
}

/// One cell of [`derive_genotype`]: the genotype entries and the edge index of each.
fn parse_cell(w: &[Vec<f64>], steps: usize) -> (Vec<(DartsOp, usize)>, Vec<usize>) {
    let none = 0;
    let mut cell = Vec::with_capacity(2 * steps);
    let mut chosen = Vec::with_capacity(2 * steps);
    let mut start = 0;
    for i in 0..steps {
        let n = i + 2;
        let best_op = |e: usize| -> (usize, f64) {
            let row = &w[start + e];
            let mut best: Option<usize> = None;
            for (k, &v) in row.iter().enumerate() {
                if k != none && v > 0.0 && best.is_none_or(|b| v > row[b]) {
                    best = Some(k);
                }
            }
            match best {
                Some(k) => (k, row[k]),
                // Every non-`none` operation is gone from this edge: it can only carry `none`.
                None => (none, f64::NEG_INFINITY),
            }
        };
        let mut edges: Vec<usize> = (0..n).collect();
        edges.sort_by(|&a, &b| best_op(b).1.total_cmp(&best_op(a).1));
        for &j in edges.iter().take(2) {
            let (k, _) = best_op(j);
            cell.push((DartsOp::PRIMITIVES[k], j));
            chosen.push(start + j);
        }
        start += n;
    }
    (cell, chosen)
}
