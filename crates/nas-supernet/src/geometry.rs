//! The geometry of a convolution or pooling window, shared by the fast operations
//! ([`crate::fast`]) and the CPU backend's native operations.

/// Geometry of a convolution: stride, zero padding and dilation per axis (height, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding on each side, along height and width.
    pub padding: [usize; 2],
    /// Dilation along height and width.
    pub dilation: [usize; 2],
}

impl ConvGeometry {
    /// The same stride, padding and dilation on both axes.
    pub fn square(stride: usize, padding: usize, dilation: usize) -> Self {
        Self {
            stride: [stride; 2],
            padding: [padding; 2],
            dilation: [dilation; 2],
        }
    }

    /// True when, along some axis, the dilated window of kernel `k` (`[height, width]`) is
    /// shorter than the stride (a 1×1 convolution at stride 2, a 1×7 one at stride 2, a 2×2 one
    /// at stride 3): the input pixels between two windows reach no output. Burn 0.21's CubeCL
    /// backends (`cuda`, `wgpu`) compute a wrong input gradient for these convolutions.
    pub fn window_shorter_than_stride(&self, k: [usize; 2]) -> bool {
        (0..2).any(|a| self.dilation[a] * k[a].saturating_sub(1) + 1 < self.stride[a])
    }

    /// Output size along `axis` (0: height, 1: width) of an input of `size` for kernel `k`.
    pub fn output_size(&self, axis: usize, size: usize, k: usize) -> usize {
        (size + 2 * self.padding[axis] - self.dilation[axis] * (k - 1) - 1) / self.stride[axis] + 1
    }
}
