//! The ProxylessNAS chain space: a MobileNetV2 backbone whose inverted-residual layers each
//! choose a kernel size and an expansion ratio, or are skipped.
//!
//! Cai, Zhu & Han, *ProxylessNAS: Direct Neural Architecture Search on Target Task and
//! Hardware*, ICLR 2019. The defaults follow the search code of `mit-han-lab/proxylessnas`:
//! `search/imagenet_arch_search.py` (`width_stages='24,40,80,96,192,320'`,
//! `n_cell_stages='4,4,4,4,4,1'`, `stride_stages='2,2,2,1,2,1'`, candidates `3x3_MBConv3,
//! 3x3_MBConv6, 5x5_MBConv3, 5x5_MBConv6, 7x7_MBConv3, 7x7_MBConv6`) and
//! `search/models/super_nets/super_proxyless.py` (`SuperProxylessNASNets`: a 3x3 stride-2 stem
//! convolution to 32 channels, a fixed first block `3x3_MBConv1` to 16 channels, the searched
//! stages, a 1x1 feature-mix convolution to 1280 channels; `Zero` is added to the candidates of
//! a layer exactly when `stride == 1 and input_channel == width`, and such a layer carries an
//! identity shortcut).
//!
//! With the defaults the network has 21 searchable layers. The first layer of every stage changes
//! the width (or the resolution), so it always computes a convolution; the other 15 may also be
//! `zero`, which leaves only the identity shortcut: the layer is skipped and the network is
//! shallower. The space holds 6^6 · 7^15 ≈ 2.2·10^17 architectures.
//!
//! Architectures print as the layers' names joined by single spaces, in network order:
//!
//! ```
//! use nas_space::proxyless::{MbConvChoice, ProxylessArch, ProxylessSpace, PROXYLESS_GPU};
//! use nas_space::{Canonicalize, SearchSpace, TextFormat};
//!
//! let space = ProxylessSpace::default();
//! let gpu = space.parse(PROXYLESS_GPU)?;
//! assert_eq!(gpu.layers.len(), 21);
//! assert_eq!(gpu.layers[0], MbConvChoice::mb_conv(5, 3));
//! assert_eq!(gpu.layers[1], MbConvChoice::Zero);
//! assert_eq!(space.to_text(&gpu), PROXYLESS_GPU);
//! // Moving a skipped layer inside its stage does not change the network:
//! // stage 1 `[7x7_MBConv3, zero, zero, 3x3_MBConv3]` = `[7x7_MBConv3, zero, 3x3_MBConv3, zero]`.
//! let mut moved = gpu.clone();
//! moved.layers.swap(6, 7);
//! assert_ne!(moved, gpu);
//! assert_eq!(space.canonical(&moved)?, space.canonical(&gpu)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())

mod canonical;
mod impls;
mod space;
#[cfg(test)]
mod tests;
mod text;
mod types;

pub use space::ProxylessSpace;
pub use types::{MbConvChoice, ProxylessArch, ProxylessConfig, ProxylessLayer, Stage};

const FORMAT: &str = "ProxylessNAS architecture string";
const SPACE: &str = "proxylessnas";

/// The published ProxylessNAS-GPU network (75.1% top-1 on ImageNet), as a choice per searchable
/// layer of the default space.
///
/// Source: the official net config `proxyless_gpu.config` that
/// `mit-han-lab/proxylessnas/proxyless_nas/model_zoo.py` downloads, as transcribed in
/// `osmr/imgclsmob` (`pytorch/pytorchcv/models/proxylessnas.py`, `get_proxylessnas('gpu')`:
/// `residuals`, `kernel_sizes`, `expand_ratios`; a residual of 0 is a `zero` layer). The
/// published network uses wider stages (32, 56, 112, 128, 256, 432) than the search space; its
/// layer structure (depths and strides) and choices are those of this space.
pub const PROXYLESS_GPU: &str = "5x5_MBConv3 zero zero zero \
7x7_MBConv3 zero zero 3x3_MBConv3 \
7x7_MBConv6 zero zero 5x5_MBConv3 \
5x5_MBConv6 zero 3x3_MBConv3 5x5_MBConv3 \
7x7_MBConv6 7x7_MBConv6 7x7_MBConv6 5x5_MBConv6 \
7x7_MBConv6";

/// The published ProxylessNAS-Mobile network (74.6% top-1 on ImageNet); source as for
/// [`PROXYLESS_GPU`] (`get_proxylessnas('mobile')`). Its stage widths are 32, 40, 80, 96, 192,
/// 320 (the search space's first stage has 24).
pub const PROXYLESS_MOBILE: &str = "5x5_MBConv3 3x3_MBConv3 zero zero \
7x7_MBConv3 3x3_MBConv3 5x5_MBConv3 5x5_MBConv3 \
7x7_MBConv6 5x5_MBConv3 5x5_MBConv3 5x5_MBConv3 \
5x5_MBConv6 5x5_MBConv3 5x5_MBConv3 5x5_MBConv3 \
7x7_MBConv6 7x7_MBConv6 7x7_MBConv3 7x7_MBConv3 \
7x7_MBConv6";

/// The published ProxylessNAS-CPU network; source as for [`PROXYLESS_GPU`]
/// (`get_proxylessnas('cpu')`). Its stage widths are 32, 48, 88, 104, 216, 360.
pub const PROXYLESS_CPU: &str = "3x3_MBConv6 3x3_MBConv3 3x3_MBConv3 3x3_MBConv3 \
3x3_MBConv6 3x3_MBConv3 3x3_MBConv3 5x5_MBConv3 \
3x3_MBConv6 zero zero 3x3_MBConv3 \
5x5_MBConv6 3x3_MBConv3 3x3_MBConv3 3x3_MBConv3 \
5x5_MBConv6 5x5_MBConv3 5x5_MBConv3 3x3_MBConv3 \
5x5_MBConv6";
