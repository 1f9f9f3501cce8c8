//! NAS-FPN (Ghiasi et al., CVPR 2019): a search for the merging cells of a feature pyramid,
//! end to end, on the segmentation task shipped with the library.
//!
//! **Task.** Procedural scenes of 32×32 grey pixels (`SegmentationDataset::shapes`), each with
//! one to three filled squares, disks and triangles of half-size 2 to 9; every pixel is
//! labelled background or its shape (4 classes). Telling a square's pixel from a disk's takes
//! context as large as the shape, at every scale: what a feature pyramid merges.
//!
//! **Search.** Each proposed architecture (`--cells` merging cells over levels
//! `--min-level..=--max-level`, each picking two features, an output level and `sum` or global
//! `attention`) is built into a network (a backbone of stride-2 convolutions giving the
//! levels, the pyramid of merging cells, a segmentation head summing the output levels), trained
//! from scratch for a few epochs and scored by validation mIoU. The paper searched with a
//! reinforcement-learning controller; `--strategy evolution` (the default) runs regularized
//! evolution, `--strategy random` random search.
//!
//! **Answer.** The best architecture is trained again for `--final-epochs` and tested on the
//! test scenes beside a top-down pathway written in the same language (FPN's shape: the middle
//! level merged with the coarsest, the finest with that) and two random architectures.
//!
//! ```text
//! cargo run --release --example nas_fpn                   # a few minutes on 2 cores
//! cargo run --release --example nas_fpn -- --strategy random --trials 24
//! cargo run --release --example nas_fpn -- --resume       # continue a killed search
//! ```

mod common;

use std::process::ExitCode;

use clap::Parser;
use common::segmentation::{SearchArgs, describe_scenes, search_and_compare};
use nas::space::fpn::{FpnArch, FpnSpace};
use nas::space::{Enumerable, SearchSpace, TextFormat};
use nas::supernet::backend::BackendTask;
use nas::supernet::burn::tensor::Device;
use nas::supernet::burn::tensor::backend::AutodiffBackend;
use nas::supernet::fpn_net::FpnNetConfig;
use rand::SeedableRng;

#[derive(Parser, Debug, Clone)]
#[command(about = "NAS-FPN search on procedural shape scenes, scored by mIoU")]
struct Args {
    #[command(flatten)]
    search: SearchArgs,
    /// Merging cells (the paper's have 7; the last `L` are the output pyramid).
    #[arg(long, default_value_t = 5)]
    cells: usize,
    /// The finest level (stride 2^level; 1 is 16×16 on 32×32 scenes).
    #[arg(long, default_value_t = 1)]
    min_level: u32,
    /// The coarsest level.
    #[arg(long, default_value_t = 3)]
    max_level: u32,
    /// Channels of the backbone and of every pyramid feature.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// How many times the pyramid is stacked.
    #[arg(long, default_value_t = 1)]
    repeats: usize,
}

/// The references: for 3 levels and 5 cells, a top-down pathway written by hand; then two
/// random architectures (drawn with the seed).
fn references(space: &FpnSpace, seed: u64) -> Result<Vec<(&'static str, FpnArch)>, String> {
    let mut refs = Vec::new();
    if (space.levels(), space.cells()) == (3, 5) {
        let (a, b, c) = (space.min_level(), space.min_level() + 1, space.max_level());
        // FPN's top-down merges: the middle level plus the coarsest, the finest plus that.
        // Then the outputs: the coarsest plus the merged middle level (pooled), the middle
        // level plus the merged middle level, the finest plus the merged finest.
        let text =
            format!("sum(1,2)->P{b} sum(0,3)->P{a} sum(2,3)->P{c} sum(1,3)->P{b} sum(0,4)->P{a}");
        refs.push((
            "top-down pathway (FPN)",
            space.parse(&text).map_err(|e| e.to_string())?,
        ));
    }
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    refs.push(("a random architecture", space.sample(&mut rng)));
    refs.push(("another random architecture", space.sample(&mut rng)));
    Ok(refs)
}

struct NasFpn(Args);

impl BackendTask for NasFpn {
    type Output = Result<(), String>;

    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output {
        let args = self.0;
        let scenes = args.search.scenes()?;
        describe_scenes(&scenes);
        let space =
            FpnSpace::new(args.cells, args.min_level, args.max_level).map_err(|e| e.to_string())?;
        println!(
            "space: {} merging cells over P{}..P{} ({} architectures)",
            args.cells,
            args.min_level,
            args.max_level,
            space.size()
        );
        let [c, ..] = scenes[0].shape();
        let net = FpnNetConfig {
            in_channels: c,
            num_classes: scenes[0].num_classes(),
            channels: args.channels,
            min_level: args.min_level,
            max_level: args.max_level,
            repeats: args.repeats,
        };
        let settings = format!(
            "NAS-FPN: {} cells over P{}..P{}; {} channels, {} repeats",
            args.cells, args.min_level, args.max_level, args.channels, args.repeats
        );
        let out = args
            .search
            .out
            .clone()
            .unwrap_or_else(|| "runs/nas_fpn".into());
        search_and_compare::<B, _, _, _>(
            &args.search,
            &space,
            net,
            &scenes,
            references(&space, args.search.seed)?,
            |arch| space.to_text(arch),
            (out, &settings),
            &device,
        )
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let backend = args.search.backend.clone();
    common::run_to_exit(backend.as_deref(), NasFpn(args))
}
