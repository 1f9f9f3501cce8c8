//! Choosing the backend and device: the one place that names concrete Burn backends.
//!
//! Everything else in this library is generic over `B: Backend` (or `B: AutodiffBackend` for
//! training). A program picks a [`BackendKind`] (from a flag, or from `NAS_BACKEND` with
//! [`BackendKind::from_env`]) and hands a [`BackendTask`] to [`run_on`], which instantiates the
//! task for that backend and its default device.
//!
//! | kind | backend | cargo feature |
//! | --- | --- | --- |
//! | `ndarray` | `Autodiff<NdArray>`, pure-Rust CPU (the default) | `ndarray` (default) |
//! | `flex` | `Autodiff<Flex>`, pure-Rust CPU | `flex` |
//! | `wgpu` | `Autodiff<Wgpu>`, Vulkan / Metal / DX12 through wgpu | `wgpu` |
//! | `cuda` | `Autodiff<Cuda>`, NVIDIA GPUs | `cuda` |
//!
//! Asking for a backend that was not compiled in, or whose runtime is missing (no `libcuda.so`,
//! no GPU adapter), gives [`SupernetError::BackendUnavailable`] instead of a panic.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;

/// The backends this library can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Burn's `ndarray` CPU backend.
    NdArray,
    /// Burn's `flex` CPU backend.
    Flex,
    /// Burn's `wgpu` GPU backend.
    Wgpu,
    /// Burn's `cuda` GPU backend.
    Cuda,
}

impl BackendKind {
    /// All kinds, in the order of the table above.
    pub const ALL: [BackendKind; 4] = [
        BackendKind::NdArray,
        BackendKind::Flex,
        BackendKind::Wgpu,
        BackendKind::Cuda,
    ];

    /// The name used by flags and `NAS_BACKEND`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::NdArray => "ndarray",
            BackendKind::Flex => "flex",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }

    /// True if this build includes the backend's cargo feature.
    pub fn compiled(self) -> bool {
        match self {
            BackendKind::NdArray => cfg!(feature = "ndarray"),
            BackendKind::Flex => cfg!(feature = "flex"),
            BackendKind::Wgpu => cfg!(feature = "wgpu"),
            BackendKind::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The default: the first CPU backend compiled in (`ndarray`, then `flex`).
    pub fn default_cpu() -> Result<Self, SupernetError> {
        [BackendKind::NdArray, BackendKind::Flex]
            .into_iter()
            .find(|k| k.compiled())
            .ok_or_else(|| SupernetError::BackendUnavailable {
                backend: "cpu".into(),
                reason: "no CPU backend compiled in: enable the `ndarray` or `flex` feature".into(),
            })
    }

    /// The backend named by `NAS_BACKEND`, or [`BackendKind::default_cpu`] when it is unset.
    pub fn from_env() -> Result<Self, SupernetError> {
        match std::env::var("NAS_BACKEND") {
            Ok(name) if !name.trim().is_empty() => name.parse(),
            _ => Self::default_cpu(),
        }
    }

    /// Checks that the backend is compiled in and its runtime is present, without creating a
    /// device (Burn's CUDA backend panics inside a worker thread when `libcuda.so` is absent).
    pub fn check(self) -> Result<(), SupernetError> {
        let unavailable = |reason: String| SupernetError::BackendUnavailable {
            backend: self.name().into(),
            reason,
        };
        if !self.compiled() {
            return Err(unavailable(format!(
                "this build does not include it; rebuild with `--features {}`",
                self.name()
            )));
        }
        if self == BackendKind::Cuda {
            cuda_driver_present().map_err(unavailable)?;
        }
        if self == BackendKind::Wgpu {
            wgpu_adapter_present().map_err(unavailable)?;
        }
        Ok(())
    }
}

#[cfg(feature = "cuda")]
fn cuda_driver_present() -> Result<(), String> {
    // SAFETY: loading the CUDA driver library runs its initializers, which is what creating a
    // CUDA device would do anyway; the handle is dropped right away.
    match unsafe { libloading::Library::new("libcuda.so.1") } {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "the NVIDIA driver library libcuda.so.1 cannot be loaded ({e}); install the NVIDIA driver or choose another backend"
        )),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_driver_present() -> Result<(), String> {
    Err("this build does not include it; rebuild with `--features cuda`".into())
}

#[cfg(feature = "wgpu")]
fn wgpu_adapter_present() -> Result<(), String> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    // The graphics API Burn's wgpu backend asks for (CubeCL's `AutoGraphicsApi`): Metal on
    // macOS, Vulkan elsewhere. An adapter of another API (OpenGL, say) does not count: CubeCL
    // would panic in its device thread without one of these.
    let api = if cfg!(target_os = "macos") {
        wgpu::Backends::METAL
    } else {
        wgpu::Backends::VULKAN
    };
    let instance = wgpu::Instance::default();
    // Enumerating adapters is synchronous on native platforms behind an async signature: poll
    // it to completion.
    let mut future = std::pin::pin!(instance.enumerate_adapters(api));
    let mut cx = Context::from_waker(Waker::noop());
    let adapters = loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(a) => break a,
            Poll::Pending => std::thread::yield_now(),
        }
    };
    if adapters.is_empty() {
        Err(
            "wgpu finds no Vulkan (Metal on macOS) adapter, the API Burn's wgpu backend uses; \
             install your GPU's Vulkan driver (on a container, the NVIDIA runtime's `graphics` \
             capability), or Mesa's software Vulkan driver (`apt-get install mesa-vulkan-drivers`) to \
             run it on the CPU, or choose a CPU backend"
                .into(),
        )
    } else {
        Ok(())
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_adapter_present() -> Result<(), String> {
    Err("this build does not include it; rebuild with `--features wgpu`".into())
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = SupernetError;
    fn from_str(s: &str) -> Result<Self, SupernetError> {
        let s = s.trim();
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| SupernetError::UnknownBackend(s.to_string()))
    }
}

/// Work to run on a backend chosen at run time: implement `run` once, generically.
pub trait BackendTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `device`.
    fn run<B: AutodiffBackend>(self, device: Device<B>) -> Self::Output;
}

/// The CPU backend used by tests and by default: `Autodiff<NdArray>` (or `Autodiff<Flex>` when
/// only `flex` is compiled in).
#[cfg(feature = "ndarray")]
pub type DefaultBackend = burn::backend::Autodiff<burn::backend::NdArray>;
/// The CPU backend used by tests and by default.
#[cfg(all(not(feature = "ndarray"), feature = "flex"))]
pub type DefaultBackend = burn::backend::Autodiff<burn::backend::Flex>;

/// Runs `task` on `kind`'s backend and default device, after [`BackendKind::check`].
pub fn run_on<T: BackendTask>(kind: BackendKind, task: T) -> Result<T::Output, SupernetError> {
    kind.check()?;
    #[allow(unreachable_patterns)]
    match kind {
        #[cfg(feature = "ndarray")]
        BackendKind::NdArray => {
            Ok(task.run::<burn::backend::Autodiff<burn::backend::NdArray>>(Default::default()))
        }
        #[cfg(feature = "flex")]
        BackendKind::Flex => {
            Ok(task.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default()))
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            Ok(task.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(Default::default()))
        }
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            Ok(task.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default()))
        }
        other => Err(SupernetError::BackendUnavailable {
            backend: other.name().into(),
            reason: format!("rebuild with `--features {}`", other.name()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_is_an_error() {
        for k in BackendKind::ALL {
            assert_eq!(k.name().parse::<BackendKind>().unwrap(), k);
        }
        assert_eq!(" CUDA ".parse::<BackendKind>().unwrap(), BackendKind::Cuda);
        assert!(matches!(
            "tpu".parse::<BackendKind>(),
            Err(SupernetError::UnknownBackend(_))
        ));
    }

    #[test]
    fn missing_backends_are_typed_errors() {
        for k in BackendKind::ALL {
            if !k.compiled() {
                let e = k.check().unwrap_err();
                assert!(
                    e.to_string().contains(&format!("--features {}", k.name())),
                    "{e}"
                );
            }
        }
        assert!(BackendKind::default_cpu().unwrap().compiled());
    }

    struct Sum;
    impl BackendTask for Sum {
        type Output = f32;
        fn run<B: AutodiffBackend>(self, device: Device<B>) -> f32 {
            let t = burn::tensor::Tensor::<B, 1>::from_floats([1.0, 2.0, 3.0], &device);
            burn::tensor::ElementConversion::elem::<f32>(t.sum().into_scalar())
        }
    }

    #[test]
    fn runs_a_task_on_the_default_backend() {
        let kind = BackendKind::default_cpu().unwrap();
        assert_eq!(run_on(kind, Sum).unwrap(), 6.0);
    }
}
