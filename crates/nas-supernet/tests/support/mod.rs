//! Small spaces shared by the integration tests (each test binary uses some of them).
#![allow(dead_code)]

use nas_space::proxyless::{ProxylessConfig, ProxylessSpace, Stage};
use nas_space::spos::{SposConfig, SposSpace};

/// A ProxylessNAS configuration small enough for tests: two stages of two layers, 8 and 16
/// channels, stride-1 stem (8×8 inputs keep some resolution); the default candidates.
pub fn tiny_proxyless_config() -> ProxylessConfig {
    ProxylessConfig {
        stem_channels: 8,
        stem_stride: 1,
        first_block_channels: 8,
        stages: vec![
            Stage {
                width: 8,
                depth: 2,
                stride: 1,
            },
            Stage {
                width: 16,
                depth: 2,
                stride: 2,
            },
        ],
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
