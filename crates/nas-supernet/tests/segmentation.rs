//! Dense prediction: DPC and NAS-FPN networks learn to segment the procedural shapes, the
//! published NAS-FPN builds its pyramid, a killed
//! segmentation training resumes where it stopped, and bad input is a typed error.

use nas_space::TextFormat;
use nas_space::dpc::{DpcArch, DpcBranch, DpcOp};
use nas_space::fpn::{FpnSpace, PUBLISHED};
use nas_supernet::backend::DefaultBackend;
use nas_supernet::burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use nas_supernet::burn::tensor::Tensor;
use nas_supernet::burn::tensor::backend::Backend;
use nas_supernet::data::Augment;
use nas_supernet::driver::Driver;
use nas_supernet::fpn_net::{FpnNetConfig, FpnNetwork};
use nas_supernet::multi_net::{DpcNetConfig, DpcNetwork};
use nas_supernet::network::Classifier;
use nas_supernet::network::seeded;
use nas_supernet::segment::{
    SegmentationDataset, SegmentationTrainer, Segmenter, ShapesConfig, evaluate_segmentation,
    fit_segmentation,
};
use nas_supernet::train::{TrainConfig, TrainError};

type B = DefaultBackend;

fn shapes(images: usize, seed: u64) -> SegmentationDataset {
    SegmentationDataset::shapes(&ShapesConfig {
        images,
        seed,
        ..ShapesConfig::default()
    })
    .unwrap()
}

fn net(classes: usize) -> DpcNetConfig {
    DpcNetConfig {
        in_channels: 1,
        num_classes: classes,
        backbone_channels: 8,
        backbone_layers: 3,
        backbone_strides: 2,
        branch_channels: 8,
    }
}

/// A small ASPP: 1×1, two atrous rates and image pooling, all on the backbone.
fn aspp() -> DpcArch {
    let ops = [
        DpcOp::Conv1x1,
        DpcOp::SepAtrous3x3 {
            rate_h: 2,
            rate_w: 2,
        },
        DpcOp::SepAtrous3x3 {
            rate_h: 4,
            rate_w: 4,
        },
        DpcOp::Spp {
            grid_h: 1,
            grid_w: 1,
        },
    ];
    DpcArch {
        branches: ops.iter().map(|&op| DpcBranch { input: 0, op }).collect(),
    }
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        learning_rate: 0.05,
        seed: 3,
        ..TrainConfig::default()
    }
}

fn model(classes: usize) -> DpcNetwork<B> {
    let device = Default::default();
    seeded(&device, 3, || net(classes).init::<B>(&aspp(), &device)).unwrap()
}

#[test]
fn a_dpc_network_learns_to_segment_shapes() {
    let (train, valid) = (shapes(500, 0), shapes(100, 1));
    let device = Default::default();
    let untrained = evaluate_segmentation(
        &model(4).valid(),
        &valid,
        &train.channel_stats(),
        50,
        &device,
    )
    .unwrap();
    let (trained, history) =
        fit_segmentation(model(4), (&train, &valid), &config(8), &device, |_, _| {
            false
        })
        .unwrap();
    assert_eq!(history.len(), 8);
    let last = history.last().unwrap();
    // Predicting background everywhere scores the background fraction in pixel accuracy and
    // a quarter of it in mIoU (one class of four right).
    let pixels = valid.class_pixels();
    let background = 100.0 * pixels[0] as f64 / pixels.iter().sum::<u64>() as f64;
    eprintln!(
        "mIoU {:.1}%, pixel accuracy {:.1}% (background {background:.1}%)",
        history[7].valid_mean_iou, history[7].valid_pixel_accuracy
    );
    assert!(
        last.valid_pixel_accuracy > background + 5.0,
        "pixel accuracy {:.1}% against {background:.1}% background",
        last.valid_pixel_accuracy
    );
    assert!(
        last.valid_mean_iou > background / 4.0 + 10.0
            && last.valid_mean_iou > untrained.mean_iou + 20.0,
        "mIoU {:.1}% (untrained {:.1}%)",
        last.valid_mean_iou,
        untrained.mean_iou
    );
    assert!(history[0].train_loss > last.train_loss);
    // The reported score is the trained model's on the validation set.
    let again = evaluate_segmentation(
        &trained.valid(),
        &valid,
        &train.channel_stats(),
        50,
        &device,
    )
    .unwrap();
    assert!((again.mean_iou - last.valid_mean_iou).abs() < 1e-6);
    assert_eq!(again.confusion.total(), (100 * 32 * 32) as u64);
}

/// Every float tensor of `module`, in visiting order.
fn tensors<Bk: Backend, M: Module<Bk>>(module: &M) -> Vec<Vec<f32>> {
    struct All(Vec<Vec<f32>>);
    impl<Bk: Backend> ModuleVisitor<Bk> for All {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
            self.0
                .push(param.val().into_data().to_vec::<f32>().unwrap());
        }
    }
    let _ = module.clone().into_record();
    let mut all = All(Vec::new());
    module.visit(&mut all);
    all.0
}

#[test]
fn a_stopped_segmentation_training_resumes_where_it_stopped() {
    let (train, valid) = (shapes(64, 5), shapes(16, 6));
    let device = Default::default();
    let dir = std::env::temp_dir().join(format!("nas-segment-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("segment.ckpt");
    let config = config(3);

    let mut whole = SegmentationTrainer::new(model(4), &train, &valid, &config, &device).unwrap();
    Driver::new(&mut whole).run().unwrap();

    // Stopped after the second epoch's checkpoint, as a killed run would be.
    let mut first = SegmentationTrainer::new(model(4), &train, &valid, &config, &device).unwrap();
    let summary = Driver::new(&mut first)
        .checkpoint(&path, 1)
        .max_epochs(2)
        .run()
        .unwrap();
    assert_eq!(summary.epochs_done, 2);
    drop(first);
    let mut resumed = SegmentationTrainer::new(model(4), &train, &valid, &config, &device).unwrap();
    let summary = Driver::new(&mut resumed)
        .checkpoint(&path, 1)
        .resume(true)
        .run()
        .unwrap();
    assert_eq!(summary.resumed_at, Some(2));
    assert_eq!(summary.epochs_run, 1);
    let strip = |h: &[nas_supernet::segment::SegmentationEpoch]| {
        h.iter()
            .map(|e| (e.train_loss, e.valid_loss, e.valid_mean_iou))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(resumed.history()), strip(whole.history()));
    assert!(tensors(resumed.model()) == tensors(whole.model()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_segmentation_input_is_a_typed_error() {
    let (train, valid) = (shapes(8, 0), shapes(4, 1));
    let device = Default::default();
    // A network with 3 classes on 4-class data.
    let e = fit_segmentation(model(3), (&train, &valid), &config(1), &device, |_, _| {
        false
    })
    .unwrap_err();
    assert!(
        matches!(&e, TrainError::Data(m) if m.contains("4 classes")),
        "{e}"
    );
    // Classification extras are refused, by name.
    let augmented = TrainConfig {
        augment: Augment::cifar(),
        ..config(1)
    };
    let e = SegmentationTrainer::new(model(4), &train, &valid, &augmented, &device)
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            TrainError::InvalidConfig {
                field: "augment",
                ..
            }
        ),
        "{e}"
    );
    // Sets that disagree.
    let other = SegmentationDataset::shapes(&ShapesConfig {
        images: 4,
        size: 24,
        ..ShapesConfig::default()
    })
    .unwrap();
    let e = SegmentationTrainer::new(model(4), &train, &other, &config(1), &device)
        .err()
        .unwrap();
    assert!(matches!(e, TrainError::Data(_)), "{e}");
    // Shapes that cannot fit, or an empty range.
    for bad in [
        ShapesConfig {
            size: 10,
            ..ShapesConfig::default()
        },
        ShapesConfig {
            min_radius: 0,
            ..ShapesConfig::default()
        },
        ShapesConfig {
            min_objects: 4,
            ..ShapesConfig::default()
        },
        ShapesConfig {
            images: 0,
            ..ShapesConfig::default()
        },
    ] {
        assert!(SegmentationDataset::shapes(&bad).is_err(), "{bad:?}");
    }
}

fn fpn(min_level: u32, max_level: u32, repeats: usize) -> FpnNetConfig {
    FpnNetConfig {
        in_channels: 1,
        num_classes: 4,
        channels: 8,
        min_level,
        max_level,
        repeats,
    }
}

#[test]
fn the_published_nas_fpn_builds_its_pyramid() {
    let device = Default::default();
    let arch = FpnSpace::default().parse(PUBLISHED).unwrap();
    let net: FpnNetwork<B> = seeded(&device, 0, || fpn(3, 7, 2).init(&arch, &device)).unwrap();
    let images = Tensor::<B, 4>::zeros([2, 1, 128, 128], &device);
    let sizes: Vec<[usize; 4]> = net
        .pyramid(images.clone())
        .iter()
        .map(|f| f.dims())
        .collect();
    assert_eq!(
        sizes,
        [16, 8, 4, 2, 1].map(|s| [2, 8, s, s]).to_vec(),
        "P3..P7 of a 128×128 image"
    );
    assert_eq!(net.segment(images.clone()).dims(), [2, 4, 128, 128]);
    assert_eq!(Classifier::logits(&net, images).dims(), [2, 4]);
    // The backbone's 7 stride-2 layers, two repeats of the 7 cells (3×3, 8 → 8 channels at
    // their level), the 1×1 segmentation head at P3 (16×16) and the 8 → 4 classifier.
    let side = |level: u32| 128u64 >> level;
    let backbone: u64 = (1..=7)
        .map(|l| if l == 1 { 1 } else { 8 } * 8 * 9 * side(l) * side(l))
        .sum();
    let cells: u64 = arch
        .cells
        .iter()
        .map(|c| 8 * 8 * 9 * side(c.level) * side(c.level))
        .sum();
    let expected = backbone + 2 * cells + 8 * 4 * 16 * 16 + 8 * 4;
    assert_eq!(net.macs([1, 128, 128]), Some(expected));
    // On 32×32 images P3..P7 are 4×4, 2×2 and three 1×1 maps: pooling P3 to P7 takes a
    // kernel no larger than the map.
    let small = Tensor::<B, 4>::zeros([1, 1, 32, 32], &device);
    let sizes: Vec<[usize; 4]> = net
        .pyramid(small.clone())
        .iter()
        .map(|f| f.dims())
        .collect();
    assert_eq!(sizes, [4, 2, 1, 1, 1].map(|s| [1, 8, s, s]).to_vec());
    assert_eq!(net.segment(small).dims(), [1, 4, 32, 32]);
    // An architecture of other levels, or a level 0, is refused.
    let e = fpn(1, 3, 1).init::<B>(&arch, &device).unwrap_err();
    assert!(e.to_string().contains("NAS-FPN"), "{e}");
    assert!(fpn(0, 4, 1).init::<B>(&arch, &device).is_err());
    assert!(fpn(3, 7, 0).init::<B>(&arch, &device).is_err());
}

#[test]
fn a_nas_fpn_network_learns_to_segment_shapes() {
    let (train, valid) = (shapes(500, 0), shapes(100, 1));
    let device = Default::default();
    let space = FpnSpace::new(5, 1, 3).unwrap();
    let top_down = space
        .parse("sum(1,2)->P2 sum(0,3)->P1 sum(2,3)->P3 sum(1,3)->P2 sum(0,4)->P1")
        .unwrap();
    let model: FpnNetwork<B> =
        seeded(&device, 3, || fpn(1, 3, 1).init(&top_down, &device)).unwrap();
    let (_, history) =
        fit_segmentation(model, (&train, &valid), &config(6), &device, |_, _| false).unwrap();
    let last = history.last().unwrap();
    let pixels = valid.class_pixels();
    let background = 100.0 * pixels[0] as f64 / pixels.iter().sum::<u64>() as f64;
    eprintln!(
        "NAS-FPN: mIoU {:.1}%, pixel accuracy {:.1}% (background {background:.1}%)",
        last.valid_mean_iou, last.valid_pixel_accuracy
    );
    assert!(last.valid_pixel_accuracy > background + 5.0);
    assert!(last.valid_mean_iou > background / 4.0 + 10.0);
}
