//! The canonical form of NAS-RL networks: a canonical relabelling of the layers.

use std::collections::BTreeSet;

use super::{NasRlArch, NasRlLayer, NasRlSpace};
use crate::common::permutations;
use crate::error::SpaceError;
use crate::traits::{CanonicalForm, Canonicalize, SearchSpace};

/// Ranks `keys` densely: equal keys get equal ranks, in sorted order.
fn dense_rank<K: Ord + Clone>(keys: &[K]) -> Vec<usize> {
    let sorted: Vec<K> = keys
        .iter()
        .cloned()
        .collect::<BTreeSet<K>>()
        .into_iter()
        .collect();
    keys.iter()
        .map(|k| sorted.binary_search(k).unwrap_or(0))
        .collect()
}

/// The most relabellings the canonical form tries (see [`NasRlSpace`]'s `Canonicalize`).
const MAX_RELABELLINGS: usize = 40_320;

/// `arch` with its layers in the order `order` (old 0-based indices; must be topological).
pub(super) fn relabel(arch: &NasRlArch, order: &[usize]) -> NasRlArch {
    let mut new_of = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of[old] = new + 1;
    }
    let layers = order
        .iter()
        .map(|&old| {
            let l = &arch.layers[old];
            let mut inputs: Vec<usize> = l.inputs.iter().map(|&j| new_of[j - 1]).collect();
            inputs.sort_unstable();
            NasRlLayer {
                inputs,
                ..l.clone()
            }
        })
        .collect();
    NasRlArch { layers }
}

/// The canonical relabelling of a structurally valid architecture (see `Canonicalize`).
fn canonical_arch(arch: &NasRlArch) -> NasRlArch {
    let n = arch.layers.len();
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut level = vec![0usize; n];
    for (i, l) in arch.layers.iter().enumerate() {
        for &j in &l.inputs {
            consumers[j - 1].push(i);
            level[i] = level[i].max(level[j - 1] + 1);
        }
    }
    // Colour refinement in both directions, starting from (level, layer values).
    let initial: Vec<(usize, u32, u32, u32, u32)> = arch
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                level[i],
                l.filter_height,
                l.filter_width,
                l.filters,
                l.stride,
            )
        })
        .collect();
    let mut color = dense_rank(&initial);
    loop {
        let sig: Vec<(usize, Vec<usize>, Vec<usize>)> = (0..n)
            .map(|i| {
                let mut ins: Vec<usize> = arch.layers[i]
                    .inputs
                    .iter()
                    .map(|&j| color[j - 1])
                    .collect();
                ins.sort_unstable();
                let mut outs: Vec<usize> = consumers[i].iter().map(|&c| color[c]).collect();
                outs.sort_unstable();
                (color[i], ins, outs)
            })
            .collect();
        let next = dense_rank(&sig);
        let classes = |c: &[usize]| c.iter().collect::<BTreeSet<_>>().len();
        let done = classes(&next) == classes(&color);
        color = next;
        if done {
            break;
        }
    }
    // Cells in colour order; the order of cells is topological because colours refine levels.
    let cells_count = color.iter().max().map_or(0, |m| m + 1);
    let mut cells: Vec<Vec<usize>> = vec![Vec::new(); cells_count];
    for (i, &c) in color.iter().enumerate() {
        cells[c].push(i);
    }
    // Within a cell, members that are twins (same inputs, same consumers) are interchangeable:
    // swapping them is an automorphism, so one order is enough. Other cells are permuted.
    let mut options: Vec<Vec<Vec<usize>>> = Vec::with_capacity(cells.len());
    let mut total: usize = 1;
    for cell in &cells {
        let twins = cell.iter().all(|&i| {
            arch.layers[i].inputs == arch.layers[cell[0]].inputs
                && consumers[i] == consumers[cell[0]]
        });
        let perms = if twins {
            vec![cell.clone()]
        } else {
            permutations(cell)
        };
        match total.checked_mul(perms.len()) {
            Some(t) if t <= MAX_RELABELLINGS => {
                total = t;
                options.push(perms);
            }
            _ => options.push(vec![cell.clone()]),
        }
    }
    let mut best: Option<(String, NasRlArch)> = None;
    let mut choice = vec![0usize; options.len()];
    loop {
        let order: Vec<usize> = options
            .iter()
            .zip(&choice)
            .flat_map(|(o, &k)| o[k].iter().copied())
            .collect();
        let candidate = relabel(arch, &order);
        let text = candidate.to_string();
        if best.as_ref().is_none_or(|(b, _)| text < *b) {
            best = Some((text, candidate));
        }
        // Next combination (odometer).
        let mut k = 0;
        loop {
            if k == options.len() {
                return best.map_or_else(|| arch.clone(), |(_, a)| a);
            }
            choice[k] += 1;
            if choice[k] < options[k].len() {
                break;
            }
            choice[k] = 0;
            k += 1;
        }
    }
}

impl Canonicalize for NasRlSpace {
    /// The text of a canonical relabelling of the layers.
    ///
    /// The layer order of a NAS-RL network is only a topological order of its graph: two
    /// layers that do not depend on each other can swap places (renumbering the inputs that
    /// refer to them) without changing the computation, and inputs (and the classifier's
    /// input) are concatenations whose order is a mere channel permutation, so inputs are sets.
    /// The canonical form identifies exactly these relabellings (graph isomorphism preserving
    /// the layer values, the image and the classifier): layers are coloured by refining
    /// (longest-path depth, height, width, filters, stride) with the colours of their inputs
    /// and consumers until stable; cells of equal colour are put in colour order (a
    /// topological order), and every order within the cells is tried (twins, layers with the
    /// same inputs and consumers, need none), keeping the relabelled architecture whose text is
    /// smallest. The result is itself a valid architecture's text. Should the cells allow more
    /// than 40,320 orders (only for highly symmetric networks of many layers) the extra cells
    /// keep their original order, and the form may then separate some isomorphic networks.
    fn canonical(&self, arch: &NasRlArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(canonical_arch(arch).to_string()))
    }
}
