//! A DPC search end to end: regularized evolution proposes cells, the segmentation estimator
//! trains each and scores it by mIoU, the journal keeps every trial, and a resumed search
//! replays the finished trials instead of training them again.

use std::cell::Cell;

use nas::estimate::segment::SegmentationEstimator;
use nas::estimate::{Budget, EstimateError, Estimator, Metrics};
use nas::space::SearchSpace;
use nas::space::dpc::{DpcArch, DpcSpace};
use nas::strategy::{RegularizedEvolution, RegularizedEvolutionConfig, Search};
use nas::supernet::backend::DefaultBackend;
use nas::supernet::multi_net::DpcNetConfig;
use nas::supernet::segment::{SegmentationDataset, ShapesConfig};
use nas::supernet::train::TrainConfig;

fn shapes(images: usize, seed: u64) -> SegmentationDataset {
    SegmentationDataset::shapes(&ShapesConfig {
        images,
        seed,
        ..ShapesConfig::default()
    })
    .unwrap()
}

fn net() -> DpcNetConfig {
    DpcNetConfig {
        in_channels: 1,
        num_classes: 4,
        backbone_channels: 8,
        backbone_layers: 3,
        backbone_strides: 2,
        branch_channels: 8,
    }
}

fn estimator(classes: usize) -> Result<impl Estimator<DpcArch>, EstimateError> {
    SegmentationEstimator::<DefaultBackend, _, _>::new(
        DpcNetConfig {
            num_classes: classes,
            ..net()
        },
        shapes(96, 0),
        shapes(32, 1),
        TrainConfig {
            epochs: 1,
            batch_size: 32,
            learning_rate: 0.05,
            ..TrainConfig::default()
        },
        Default::default(),
    )
}

/// Counts the trainings an estimator runs.
struct Counting<'c, E>(E, &'c Cell<usize>);

impl<E: Estimator<DpcArch>> Estimator<DpcArch> for Counting<'_, E> {
    fn estimate(&mut self, arch: &DpcArch, budget: &Budget) -> Result<Metrics, EstimateError> {
        self.1.set(self.1.get() + 1);
        self.0.estimate(arch, budget)
    }
}

fn evolution() -> RegularizedEvolution<DpcSpace> {
    RegularizedEvolution::new(
        RegularizedEvolutionConfig {
            population_size: 2,
            sample_size: 2,
        },
        7,
    )
    .unwrap()
}

#[test]
fn a_dpc_search_runs_end_to_end_and_resumes_from_its_journal() {
    let space = DpcSpace::new(2, &[1, 2, 4], &[1, 2]).unwrap();
    let dir = std::env::temp_dir().join(format!("nas-dpc-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let journal = dir.join("trials.jsonl");
    let _ = std::fs::remove_file(&journal);
    let trained = Cell::new(0);

    let mut strategy = evolution();
    let mut est = Counting(estimator(4).unwrap(), &trained);
    let first = Search::new(&space, &mut strategy)
        .trials(3)
        .journal(&journal)
        .seed(7)
        .run(&mut est)
        .unwrap();
    assert_eq!(first.trials.len(), 3);
    assert_eq!(trained.get(), 3);
    for t in &first.trials {
        space.validate(&t.arch).unwrap();
        let m = t.outcome.complete().expect("every trial completes");
        assert_eq!(m.get("valid_mean_iou"), Some(m.objective));
        let accuracy = m.get("valid_pixel_accuracy").unwrap();
        assert!((0.0..=100.0).contains(&m.objective) && (0.0..=100.0).contains(&accuracy));
        assert!(m.get("params").unwrap() > 0.0);
        assert_eq!(m.curves["valid_mean_iou"].len(), 1);
    }
    let best = first.best().unwrap();
    let top = first
        .trials
        .iter()
        .filter_map(|t| t.objective())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(best.objective(), Some(top));

    // Resumed with one more trial: the three are replayed from the journal, one is trained.
    let mut strategy = evolution();
    let mut est = Counting(estimator(4).unwrap(), &trained);
    let resumed = Search::new(&space, &mut strategy)
        .trials(4)
        .journal(&journal)
        .seed(7)
        .run(&mut est)
        .unwrap();
    assert_eq!(resumed.trials.len(), 4);
    assert_eq!(trained.get(), 4);
    for (a, b) in first.trials.iter().zip(&resumed.trials) {
        assert_eq!(a.arch, b.arch);
        assert_eq!(a.objective(), b.objective());
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_segmentation_estimator_is_reproducible_and_reports_bad_networks() {
    let space = DpcSpace::new(2, &[1, 2, 4], &[1, 2]).unwrap();
    let cell = nas::space::TextFormat::parse(&space, "sep_atrous_3x3_r2x2<0 spp_2x2<1").unwrap();
    let a = estimator(4)
        .unwrap()
        .estimate(&cell, &Budget::full())
        .unwrap();
    let b = estimator(4)
        .unwrap()
        .estimate(&cell, &Budget::full())
        .unwrap();
    assert_eq!(a.objective, b.objective);
    assert_eq!(a.get("valid_loss"), b.get("valid_loss"));
    // A budget sets the epochs.
    let two = estimator(4)
        .unwrap()
        .estimate(&cell, &Budget::fidelity(2.0))
        .unwrap();
    assert_eq!(two.get("epochs"), Some(2.0));
    assert!(
        estimator(4)
            .unwrap()
            .estimate(&cell, &Budget::fidelity(-1.0))
            .is_err()
    );
    // A network with the wrong number of classes fails the trial with the reason.
    let e = estimator(3)
        .unwrap()
        .estimate(&cell, &Budget::full())
        .unwrap_err();
    assert!(
        matches!(&e, EstimateError::Failed(m) if m.contains("classes")),
        "{e}"
    );
    // Empty or mismatched sets are refused up front.
    let other = SegmentationDataset::shapes(&ShapesConfig {
        images: 4,
        size: 24,
        ..ShapesConfig::default()
    })
    .unwrap();
    let e = SegmentationEstimator::<DefaultBackend, _, _>::new(
        net(),
        shapes(8, 0),
        other,
        TrainConfig::default(),
        Default::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, EstimateError::InvalidConfig(_)), "{e}");
    // A classification extra is refused up front, by name.
    let e = SegmentationEstimator::<DefaultBackend, _, _>::new(
        net(),
        shapes(8, 0),
        shapes(4, 1),
        TrainConfig {
            drop_path: 0.2,
            ..TrainConfig::default()
        },
        Default::default(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("drop_path"), "{e}");
}
