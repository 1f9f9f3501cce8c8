//! Dense Prediction Cell search (Chen et al., NeurIPS 2018), end to end, on a segmentation task
//! shipped with the library.
//!
//! **Task.** Procedural scenes of 32×32 grey pixels (`SegmentationDataset::shapes`), each with
//! one to three filled squares, disks and triangles of half-size 2 to 9, random shades and
//! noise; every pixel is labelled background or the shape it belongs to (4 classes). Inside a
//! large shape every pixel looks alike, so labelling it takes context as large as the shape,
//! at every scale: what DPC's atrous and pyramid-pooling branches are for. The training,
//! validation (the search's score) and test scenes (the final comparison) are independent
//! draws.
//!
//! **Search.** Each proposed cell is built into a DPC network (a 2-layer backbone with output
//! stride 4, the cell, a 1×1 classifier and bilinear upsampling), trained from scratch for a
//! few epochs and scored by its validation mIoU. The paper ran random search with a proxy
//! task; `--strategy evolution` (the default) runs regularized evolution. The space is the
//! paper's (branches reading the backbone or an earlier branch; 1×1 convolution, 3×3 atrous
//! separable convolution, pyramid pooling) with rates and grids scaled to the 8×8 feature map
//! (`--rates`, `--grids`; the paper's rates, up to 21, fit its 65×65 maps).
//!
//! **Answer.** The best cell is trained again for `--final-epochs` and tested on the test
//! scenes, beside three cells trained the same way: a single 1×1 convolution (no context), a
//! DeepLabv3-style ASPP (1×1, atrous rates 1, 3 and 4, image pooling) and the cell the paper
//! found on Cityscapes.
//!
//! ```text
//! cargo run --release --example dpc                      # a few minutes on 2 cores
//! cargo run --release --example dpc -- --strategy random --trials 24
//! cargo run --release --example dpc -- --resume          # continue a killed search
//! cargo run --release --example dpc -- --fresh           # start over an earlier one
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use common::segmentation::{SearchArgs, describe_scenes, search_and_compare};
use nas::space::dpc::{DpcArch, DpcBranch, DpcOp, DpcSpace, TOP1_CITYSCAPES};
use nas::space::{Enumerable, TextFormat};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::multi_net::DpcNetConfig;

#[derive(Parser, Debug, Clone)]
#[command(about = "Dense Prediction Cell search on procedural shape scenes, scored by mIoU")]
struct Args {
    #[command(flatten)]
    search: SearchArgs,
    /// Branches of a cell (the paper's cells have 5).
    #[arg(long, default_value_t = 3)]
    branches: usize,
    /// Atrous rates of the space (each of r_h, r_w).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,6")]
    rates: Vec<u32>,
    /// Pyramid pooling grids of the space (each of g_h, g_w).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    grids: Vec<u32>,
    /// Channels of the backbone, of every branch and of the cell's output.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Backbone layers (3×3 convolution, batch norm, ReLU; the first two with stride 2). Two
    /// see 7×7 pixels, less than most shapes, so the cell must gather the context; with more,
    /// the backbone does and every cell scores alike.
    #[arg(long, default_value_t = 2)]
    backbone_layers: usize,
}

/// A cell as text (any branch count and operation, unlike a space's `to_text`).
fn cell_text(cell: &DpcArch) -> String {
    cell.branches
        .iter()
        .map(|b| format!("{}<{}", b.op.name(), b.input))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reference cells of the final comparison.
fn references() -> Result<Vec<(&'static str, DpcArch)>, String> {
    let from_backbone = |ops: &[DpcOp]| DpcArch {
        branches: ops.iter().map(|&op| DpcBranch { input: 0, op }).collect(),
    };
    let atrous = |r| DpcOp::SepAtrous3x3 {
        rate_h: r,
        rate_w: r,
    };
    let cityscapes = DpcSpace::default()
        .parse(TOP1_CITYSCAPES)
        .map_err(|e| e.to_string())?;
    Ok(vec![
        ("1x1 convolution only", from_backbone(&[DpcOp::Conv1x1])),
        (
            "ASPP (DeepLabv3, rates scaled)",
            from_backbone(&[
                DpcOp::Conv1x1,
                atrous(1),
                atrous(3),
                atrous(4),
                DpcOp::Spp {
                    grid_h: 1,
                    grid_w: 1,
                },
            ]),
        ),
        ("the paper's Cityscapes cell", cityscapes),
    ])
}

struct Dpc(Args);

impl BackendTask for Dpc {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let scenes = args.search.scenes()?;
        describe_scenes(&scenes);
        let space =
            DpcSpace::new(args.branches, &args.rates, &args.grids).map_err(|e| e.to_string())?;
        println!(
            "space: {} branches, rates {:?}, grids {:?} ({} cells)",
            args.branches,
            args.rates,
            args.grids,
            space.size()
        );
        let [c, ..] = scenes[0].shape();
        let net = DpcNetConfig {
            in_channels: c,
            num_classes: scenes[0].num_classes(),
            backbone_channels: args.channels,
            backbone_layers: args.backbone_layers,
            backbone_strides: 2,
            branch_channels: args.channels,
        };
        let settings = format!(
            "DPC: {} branches, rates {:?}, grids {:?}; {} channels, {} backbone layers",
            args.branches, args.rates, args.grids, args.channels, args.backbone_layers
        );
        let out = args.search.out.clone().unwrap_or_else(|| "runs/dpc".into());
        search_and_compare::<B, _, _, _>(
            &args.search,
            &space,
            net,
            &scenes,
            references()?,
            cell_text,
            (out, &settings),
            &device,
        )
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = args.search.backend.clone();
    common::run_to_exit(backend.as_deref(), Dpc(args))
}
