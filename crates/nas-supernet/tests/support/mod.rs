//! Small spaces and networks shared by the integration tests (each test binary uses some of
//! them; the root crate's tests include this file too).
#![allow(dead_code)]

use nas_space::proxyless::{ProxylessConfig, ProxylessSpace, Stage};
use nas_space::spos::{SposConfig, SposSpace};
use nas_supernet::nb201_net::Nb201NetConfig;

/// Two ProxylessNAS stages of `depth` layers each: 8 channels at stride 1, then 16 at stride 2.
pub fn tiny_proxyless_stages(depth: usize) -> Vec<Stage> {
    vec![
        Stage {
            width: 8,
            depth,
            stride: 1,
        },
        Stage {
            width: 16,
            depth,
            stride: 2,
        },
    ]
}

/// A ProxylessNAS configuration small enough for tests: two stages of two layers, 8 and 16
/// channels ([`tiny_proxyless_stages`]), stride-1 stem (8×8 inputs keep some resolution); the default candidates.
pub fn tiny_proxyless_config() -> ProxylessConfig {
    ProxylessConfig {
        stem_channels: 8,
        stem_stride: 1,
        first_block_channels: 8,
        stages: tiny_proxyless_stages(2),
        feature_mix_channels: 32,
        ..ProxylessConfig::default()
    }
}

/// The space of [`tiny_proxyless_config`].
pub fn tiny_proxyless() -> ProxylessSpace {
    ProxylessSpace::new(tiny_proxyless_config()).unwrap()
}

/// A SPOS space small enough for tests: two stages of two units, 16 and 32 channels.
pub fn tiny_spos() -> SposSpace {
    SposSpace::new(SposConfig {
        stem_channels: 8,
        stage_repeats: vec![2, 2],
        stage_channels: vec![16, 32],
        last_channels: 32,
    })
    .unwrap()
}

/// A NAS-Bench-201 network small enough for tests: 4 channels, one cell per stage, one input
/// channel (8×8 images), `num_classes` classes.
pub fn tiny_nb201(num_classes: usize) -> Nb201NetConfig {
    Nb201NetConfig {
        channels: 4,
        cells_per_stage: 1,
        in_channels: 1,
        num_classes,
    }
}
