//! A differentiable-search method defined outside the library, through the public API only:
//! its relaxation turns the alphas into operation weights, its schedule sets each epoch's
//! temperature, and its epoch hook prunes operations. The bi-level driver runs it as it runs
//! the built-in methods.

use nas::supernet::backend::DefaultBackend;
use nas::supernet::burn::tensor::Tensor;
use nas::supernet::burn::tensor::activation::softmax;
use nas::supernet::burn::tensor::backend::Backend;
use nas::supernet::darts_search::supernet::{Nb201SupernetConfig, SupernetConfig};
use nas::supernet::darts_search::{
    AlphaOptimConfig, ArchMask, ArchWeights, EpochAt, EpochPlan, SearchConfig, SearchMethod,
    Searcher,
};
use nas::supernet::data::ImageDataset;

/// Uniform weights on the alive operations, whatever the alphas: the alphas get no gradient.
#[derive(Debug)]
struct Uniform;

impl<B: Backend> SearchMethod<B> for Uniform {
    fn name(&self) -> String {
        "uniform".into()
    }

    fn weights(
        &self,
        alphas: &[Tensor<B, 2>],
        mask: &ArchMask,
        plan: &EpochPlan,
        seed: u64,
    ) -> ArchWeights<B> {
        let probs = ArchWeights::masked_logits(alphas, mask)
            .into_iter()
            .map(|logits| softmax(logits.detach().zeros_like(), 1))
            .collect();
        ArchWeights::from_probabilities(probs, None, mask, plan.skip_dropout, seed)
    }
}

/// Softmax at a temperature that halves every epoch; before every epoch but the first, the
/// last operation of every edge is pruned.
#[derive(Debug)]
struct HalvingPruned;

impl<B: Backend> SearchMethod<B> for HalvingPruned {
    fn name(&self) -> String {
        "halving-pruned".into()
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "halving": 0.5 })
    }

    fn plan(&self, at: EpochAt) -> EpochPlan {
        EpochPlan {
            tau: 0.5f64.powi(at.epoch as i32),
            ..EpochPlan::default()
        }
    }

    fn begin_epoch(&self, _at: EpochAt, _alphas: &[Vec<Vec<f32>>], mask: &mut ArchMask) {
        for cell in &mut mask.cells {
            for edge in cell {
                if let Some(last) = edge.iter().rposition(|&alive| alive)
                    && edge.iter().filter(|&&alive| alive).count() > 1
                {
                    edge[last] = false;
                }
            }
        }
    }
}

fn space() -> SupernetConfig {
    SupernetConfig::Nb201(Nb201SupernetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes: 10,
    })
}

fn config() -> SearchConfig {
    SearchConfig {
        epochs: 3,
        batch_size: 64,
        alphas: AlphaOptimConfig {
            weight_decay: 0.0,
            ..AlphaOptimConfig::default()
        },
        ..SearchConfig::default()
    }
}

#[test]
fn a_relaxation_of_your_own_drives_the_weights() {
    let data = ImageDataset::digits().sample(256, 1);
    let mut searcher =
        Searcher::<DefaultBackend, _>::with_method(space(), config(), Uniform, Default::default())
            .expect("a valid search");
    let before = searcher.alphas().to_tables();
    let report = searcher.run(&data, |_| {}).expect("the search runs");
    assert_eq!(report.epochs.len(), 3);
    // The weights ignore the alphas, so the alphas get a zero gradient and Adam (no weight
    // decay) leaves them where they started.
    assert_eq!(report.alphas, before);
    // The supernet's weights still learned under the uniform mixture.
    let first = &report.epochs[0];
    let last = &report.epochs[2];
    assert!(
        last.train_loss < first.train_loss,
        "training loss {} → {}",
        first.train_loss,
        last.train_loss
    );

    // The same search with the built-in DARTS moves the alphas.
    let mut darts =
        Searcher::<DefaultBackend, _>::new(space(), config(), Default::default()).unwrap();
    let report = darts.run(&data, |_| {}).unwrap();
    assert_ne!(report.alphas, before);
}

#[test]
fn a_schedule_and_hook_of_your_own_run_each_epoch() {
    let data = ImageDataset::digits().sample(256, 2);
    let mut searcher = Searcher::<DefaultBackend, _>::with_method(
        space(),
        config(),
        HalvingPruned,
        Default::default(),
    )
    .unwrap();
    assert_eq!(searcher.method().name(), "halving-pruned");
    let ops = searcher.mask().count();
    let report = searcher.run(&data, |_| {}).unwrap();
    let taus: Vec<f64> = report.epochs.iter().map(|e| e.tau).collect();
    assert_eq!(taus, [1.0, 0.5, 0.25]);
    // 6 edges lose one operation before epochs 2 and 3.
    let alive: Vec<usize> = report.epochs.iter().map(|e| e.alive_ops).collect();
    assert_eq!(alive, [ops, ops - 6, ops - 12]);
    assert_eq!(report.mask.count(), ops - 12);
    // The derived cell only uses operations that are still alive.
    for (edge, op) in report
        .derived
        .to_string()
        .split('|')
        .filter(|s| s.contains('~'))
        .enumerate()
    {
        let name = op.split('~').next().unwrap();
        assert!(
            !["avg_pool_3x3", "nor_conv_3x3"].contains(&name),
            "edge {edge}: {name} was pruned"
        );
    }
}
