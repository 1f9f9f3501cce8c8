//! Drop-in layers for your own networks, on the fast CPU path.
//!
//! Each layer follows Burn's pattern (a `Config` with `new` and `with_*` setters, then
//! `init(device)`), keeps its parameters in the corresponding `burn::nn` module (same
//! initialization; a convolution's optional bias is a parameter beside it), and computes its forward pass with this crate's CPU kernels
//! on the `ndarray` backend ([`crate::fast`]: one autodiff operation per convolution, batch
//! norm or pooling, with their own backward kernels) and with Burn's own kernels on every
//! other backend. A network written with `burn::nn::conv::Conv2d` trains several times slower
//! on the CPU than the same network written with [`Conv2d`] from here (`cargo bench --bench
//! fast_modules` prints both).
//!
//! ```
//! use nas_supernet::backend::DefaultBackend as B;
//! use nas_supernet::burn; // the `Module` derive names `burn::…` paths
//! use nas_supernet::burn::module::Module;
//! use nas_supernet::burn::tensor::{Tensor, backend::Backend};
//! use nas_supernet::nn::{BatchNorm2d, BatchNorm2dConfig, Conv2d, Conv2dConfig, MaxPool2d, MaxPool2dConfig};
//!
//! #[derive(Module, Debug)]
//! struct Block<B: Backend> {
//!     conv: Conv2d<B>,
//!     bn: BatchNorm2d<B>,
//!     pool: MaxPool2d,
//! }
//!
//! impl<B: Backend> Block<B> {
//!     fn new(c_in: usize, c_out: usize, device: &B::Device) -> Self {
//!         Self {
//!             conv: Conv2dConfig::new([c_in, c_out], [3, 3]).with_padding(1).init(device),
//!             bn: BatchNorm2dConfig::new(c_out).init(device),
//!             pool: MaxPool2dConfig::new(2).init(),
//!         }
//!     }
//!
//!     fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
//!         self.pool.forward(self.bn.forward(self.conv.forward_relu(x)))
//!     }
//! }
//!
//! let device = Default::default();
//! let block = Block::<B>::new(1, 8, &device);
//! let y = block.forward(Tensor::zeros([2, 1, 14, 14], &device));
//! assert_eq!(y.dims(), [2, 8, 7, 7]);
//! ```

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AvgPool2d as BurnAvgPool2d, AvgPool2dConfig as BurnAvgPool2dConfig};
use burn::nn::pool::{MaxPool2d as BurnMaxPool2d, MaxPool2dConfig as BurnMaxPool2dConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};

use crate::fast::{Conv, ConvGeometry};

/// Configuration of a [`Conv2d`]: `channels` `[in, out]`, `kernel` `[height, width]`,
/// symmetric zero padding, stride, dilation, groups (1, or the input channels for a depthwise
/// convolution) and an optional bias.
#[derive(Config, Debug)]
pub struct Conv2dConfig {
    /// Input and output channels.
    pub channels: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (both axes).
    #[config(default = 1)]
    pub stride: usize,
    /// Zero padding on each side (both axes).
    #[config(default = 0)]
    pub padding: usize,
    /// Dilation (both axes).
    #[config(default = 1)]
    pub dilation: usize,
    /// Groups: 1, or the input channels (depthwise; then the output channels must be equal).
    #[config(default = 1)]
    pub groups: usize,
    /// Whether the convolution adds a learned bias.
    #[config(default = false)]
    pub bias: bool,
}

/// A 2-D convolution on the fast path (see the [module docs](self)).
#[derive(Module, Debug)]
pub struct Conv2d<B: Backend> {
    /// The convolution (its parameters live in a `burn::nn::conv::Conv2d`).
    pub conv: Conv<B>,
    /// The bias, when configured.
    pub bias: Option<Param<Tensor<B, 1>>>,
}

impl Conv2dConfig {
    /// The layer, its weights initialized as Burn's `Conv2d` does. A configuration Burn
    /// rejects (zero sizes, groups that do not divide the channels) panics as in Burn.
    pub fn init<B: Backend>(&self, device: &Device<B>) -> Conv2d<B> {
        let conv = Conv::with_geometry(
            self.channels,
            self.kernel,
            ConvGeometry::square(self.stride, self.padding, self.dilation),
            self.groups,
            device,
        );
        let bias = self.bias.then(|| {
            let fan_in = self.channels[0] / self.groups.max(1) * self.kernel[0] * self.kernel[1];
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            Param::from_tensor(Tensor::random(
                [self.channels[1]],
                burn::tensor::Distribution::Uniform(-bound, bound),
                device,
            ))
        });
        Conv2d { conv, bias }
    }
}

impl<B: Backend> Conv2d<B> {
    fn add_bias(&self, y: Tensor<B, 4>) -> Tensor<B, 4> {
        match &self.bias {
            Some(b) => {
                let c = b.dims()[0];
                y + b.val().reshape([1, c, 1, 1])
            }
            None => y,
        }
    }

    /// The convolution of `x` `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.add_bias(self.conv.forward(x))
    }

    /// ReLU, then the convolution (fused into one operation on the fast path).
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.add_bias(self.conv.forward_relu(x))
    }

    /// Multiply-accumulates for one `h`×`w` input, and the output size.
    pub fn macs(&self, h: usize, w: usize) -> (u64, [usize; 2]) {
        self.conv.macs(h, w)
    }
}

/// Configuration of a depthwise [`Conv2d`] (one filter per channel).
#[derive(Config, Debug)]
pub struct DepthwiseConv2dConfig {
    /// Channels (input and output).
    pub channels: usize,
    /// Kernel size (square).
    pub kernel: usize,
    /// Stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Dilation.
    #[config(default = 1)]
    pub dilation: usize,
}

impl DepthwiseConv2dConfig {
    /// The layer, padded by `dilation · (kernel − 1) / 2`: the size is kept at stride 1 for
    /// odd kernels (an even kernel shrinks it by `dilation`).
    pub fn init<B: Backend>(&self, device: &Device<B>) -> Conv2d<B> {
        Conv2dConfig::new([self.channels, self.channels], [self.kernel, self.kernel])
            .with_stride(self.stride)
            .with_dilation(self.dilation)
            .with_padding(self.dilation * (self.kernel.saturating_sub(1)) / 2)
            .with_groups(self.channels)
            .init(device)
    }
}

/// Configuration of a [`BatchNorm2d`].
#[derive(Config, Debug)]
pub struct BatchNorm2dConfig {
    /// Channels.
    pub channels: usize,
    /// Momentum of the running statistics.
    #[config(default = 0.1)]
    pub momentum: f64,
    /// Added to the variance.
    #[config(default = 1e-5)]
    pub epsilon: f64,
}

/// Batch normalization over `[batch, channels, height, width]` on the fast path: batch
/// statistics when training on an autodiff backend, the running statistics otherwise.
#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    /// The parameters and running statistics.
    pub inner: burn::nn::BatchNorm<B>,
}

impl BatchNorm2dConfig {
    /// The layer (scale 1, shift 0).
    pub fn init<B: Backend>(&self, device: &Device<B>) -> BatchNorm2d<B> {
        BatchNorm2d {
            inner: burn::nn::BatchNormConfig::new(self.channels)
                .with_momentum(self.momentum)
                .with_epsilon(self.epsilon)
                .init(device),
        }
    }
}

impl<B: Backend> BatchNorm2d<B> {
    /// Normalizes `x`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::fast::batch_norm(&self.inner, x)
    }
}

/// Square window `kernel`, stride `stride` (default: the window), symmetric `padding`.
fn pool_geometry(
    kernel: usize,
    stride: Option<usize>,
    padding: usize,
) -> ([usize; 2], [usize; 2], PaddingConfig2d) {
    let s = stride.unwrap_or(kernel);
    (
        [kernel, kernel],
        [s, s],
        PaddingConfig2d::Explicit(padding, padding, padding, padding),
    )
}

/// Configuration of a [`MaxPool2d`]: a square window, stride equal to the window unless set,
/// symmetric zero padding.
#[derive(Config, Debug)]
pub struct MaxPool2dConfig {
    /// Window size.
    pub kernel: usize,
    /// Stride (default: the window size).
    #[config(default = "None")]
    pub stride: Option<usize>,
    /// Padding on each side.
    #[config(default = 0)]
    pub padding: usize,
}

/// Max pooling on the fast path.
#[derive(Module, Debug, Clone)]
pub struct MaxPool2d {
    /// Burn's layer (its settings).
    pub inner: BurnMaxPool2d,
}

impl MaxPool2dConfig {
    /// The layer.
    pub fn init(&self) -> MaxPool2d {
        let (kernel, strides, padding) = pool_geometry(self.kernel, self.stride, self.padding);
        MaxPool2d {
            inner: BurnMaxPool2dConfig::new(kernel)
                .with_strides(strides)
                .with_padding(padding)
                .init(),
        }
    }
}

impl MaxPool2d {
    /// Pools `x`.
    pub fn forward<B: Backend>(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::fast::max_pool2d(&self.inner, x)
    }
}

/// Configuration of an [`AvgPool2d`]: a square window, stride equal to the window unless set,
/// symmetric zero padding (counted in the average unless turned off).
#[derive(Config, Debug)]
pub struct AvgPool2dConfig {
    /// Window size.
    pub kernel: usize,
    /// Stride (default: the window size).
    #[config(default = "None")]
    pub stride: Option<usize>,
    /// Padding on each side.
    #[config(default = 0)]
    pub padding: usize,
    /// Whether padded zeros count in the average (PyTorch's default).
    #[config(default = true)]
    pub count_include_pad: bool,
}

/// Average pooling on the fast path.
#[derive(Module, Debug, Clone)]
pub struct AvgPool2d {
    /// Burn's layer (its settings).
    pub inner: BurnAvgPool2d,
}

impl AvgPool2dConfig {
    /// The layer.
    pub fn init(&self) -> AvgPool2d {
        let (kernel, strides, padding) = pool_geometry(self.kernel, self.stride, self.padding);
        AvgPool2d {
            inner: BurnAvgPool2dConfig::new(kernel)
                .with_strides(strides)
                .with_padding(padding)
                .with_count_include_pad(self.count_include_pad)
                .init(),
        }
    }
}

impl AvgPool2d {
    /// Pools `x`.
    pub fn forward<B: Backend>(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::fast::avg_pool2d(&self.inner, x)
    }
}
