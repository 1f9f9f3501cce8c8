//! Latency tables: the measured inference time of every candidate of every searchable layer
//! on the chosen device, for ProxylessNAS's expected-latency loss.
//!
//! ProxylessNAS predicts a network's latency as the sum of per-layer latencies looked up in a
//! table measured on the target hardware (`search/utils/latency_estimator.py`), which makes the
//! expected latency `Σ_l Σ_i p_li · lat_li` differentiable in the path probabilities.
//! [`LatencyTable::measure`] times each candidate's forward pass on one image of the layer's
//! input shape (median of several runs after a warm-up; results are read back so that GPU work
//! is finished), and the fixed layers (stem, first block, feature mix, classifier) as one
//! constant. Tables are cached as JSON ([`LatencyTable::load_or_measure`]), keyed by the
//! backend, the input shape and the layers' shapes and choices, so a different device or space
//! measures anew.

use std::path::Path;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::chain_supernet::ProxylessSupernet;
use crate::error::SupernetError;

/// Measured latencies (milliseconds) of a ProxylessNAS supernet's choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyTable {
    /// What the table was measured for: backend, input shape, layer shapes and choices.
    pub key: String,
    /// The input image shape `[c, h, w]`.
    pub input: [usize; 3],
    /// Latency of the fixed layers (stem, first block, feature mix, pooling, classifier).
    pub fixed_ms: f64,
    /// `layers[l][i]`: latency of choice `i` of layer `l` (0 for `zero`).
    pub layers: Vec<Vec<f64>>,
}

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The cache key of `supernet` on `device` for images of shape `input`.
pub fn table_key<B: Backend>(
    supernet: &ProxylessSupernet<B>,
    input: [usize; 3],
    device: &Device<B>,
) -> String {
    let shapes = supernet.layer_inputs(input);
    let choices: Vec<String> = (0..supernet.layers().len())
        .map(|l| {
            supernet
                .space()
                .layer_choices(l)
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    format!(
        "{}|{input:?}|{shapes:?}|{}",
        B::name(device),
        choices.join(";")
    )
}

impl LatencyTable {
    /// Measures every choice of every layer of `supernet` (an inference module: use
    /// `supernet.valid()` when training) on `device`, `runs` timed runs each.
    pub fn measure<B: Backend>(
        supernet: &ProxylessSupernet<B>,
        input: [usize; 3],
        runs: usize,
        device: &Device<B>,
    ) -> Self {
        // Zeros time the same as any other input, and draw nothing from the backend's global
        // generator (which seeded network initializations share: a draw here, on another
        // thread, would change their weights).
        let image =
            |shape: [usize; 3]| Tensor::<B, 4>::zeros([1, shape[0], shape[1], shape[2]], device);
        let shapes = supernet.layer_inputs(input);
        let layers = supernet
            .layers()
            .iter()
            .zip(&shapes)
            .map(|(layer, &shape)| {
                let x = image(shape);
                (0..layer.num_choices())
                    .map(|i| {
                        if layer.is_zero(i) {
                            0.0
                        } else {
                            median_ms(runs, || {
                                let _ = layer.forward_choice(x.clone(), i).into_data();
                            })
                        }
                    })
                    .collect()
            })
            .collect();
        let x = image(input);
        let last = shapes.last().copied().unwrap_or(input);
        let last_out = supernet
            .layers()
            .last()
            .map(|l| l.choice_macs(0, last).1)
            .unwrap_or(last);
        let tail_in = image(last_out);
        let fixed_ms = median_ms(runs, || {
            let _ = supernet.head(x.clone()).into_data();
        }) + median_ms(runs, || {
            let _ = supernet.tail(tail_in.clone()).into_data();
        });
        Self {
            key: table_key(supernet, input, device),
            input,
            fixed_ms,
            layers,
        }
    }

    /// The table cached at `path` if its key matches `supernet` on `device`, else a new
    /// measurement, written to `path` (directories created). The flag is true when the table
    /// came from the cache.
    pub fn load_or_measure<B: Backend>(
        path: &Path,
        supernet: &ProxylessSupernet<B>,
        input: [usize; 3],
        runs: usize,
        device: &Device<B>,
    ) -> Result<(Self, bool), SupernetError> {
        let key = table_key(supernet, input, device);
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(table) = serde_json::from_str::<LatencyTable>(&text)
            && table.key == key
        {
            return Ok((table, true));
        }
        let table = Self::measure(supernet, input, runs, device);
        table.save(path)?;
        Ok((table, false))
    }

    /// Writes the table as JSON.
    pub fn save(&self, path: &Path) -> Result<(), SupernetError> {
        let io = |source| SupernetError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| SupernetError::Corrupt {
            what: "latency table",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(io)
    }

    /// Predicted latency of the path of `indices` (one choice per layer): the fixed part plus
    /// the chosen entries.
    pub fn latency(&self, indices: &[usize]) -> f64 {
        self.fixed_ms
            + self
                .layers
                .iter()
                .zip(indices)
                .map(|(l, &i)| l.get(i).copied().unwrap_or(0.0))
                .sum::<f64>()
    }

    /// Expected latency under the path probabilities `probs` (one distribution per layer):
    /// `fixed + Σ_l Σ_i p_li · lat_li`.
    pub fn expected(&self, probs: &[Vec<f64>]) -> f64 {
        self.fixed_ms
            + self
                .layers
                .iter()
                .zip(probs)
                .map(|(l, p)| l.iter().zip(p).map(|(a, b)| a * b).sum::<f64>())
                .sum::<f64>()
    }
}
