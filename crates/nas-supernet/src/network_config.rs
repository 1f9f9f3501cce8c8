//! Networks as configurations: "architecture → network on a device" as a trait.
//!
//! [`NetworkConfig<A>`] is implemented by every network configuration of this crate, for the
//! architectures of its space: [`Nb201NetConfig`] (NAS-Bench-201 cells), [`DartsNetConfig`]
//! (DARTS genotypes and NASNet architectures), [`ChainNet`] (a [`ChainNetConfig`] with its
//! ProxylessNAS or SPOS space), [`NasRlNetConfig`], [`DpcNetConfig`], [`FpnNetConfig`] (NAS-FPN), and
//! [`SupernetConfig`] for the architectures a
//! differentiable search derives. The backend is a parameter of [`NetworkConfig::build`], so
//! one configuration value builds the network on any backend: code that takes a configuration
//! never names the backend twice.
//!
//! Estimators and other builders take a [`BuildNetwork`]: every configuration above is one, a
//! closure `|arch, device| -> Result<network, SupernetError>` is one, and a configuration of
//! your own becomes one through [`Configured`].
//!
//! ```
//! use nas_space::nb201::Nb201Arch;
//! use nas_supernet::backend::DefaultBackend as B;
//! use nas_supernet::nb201_net::Nb201NetConfig;
//! use nas_supernet::network_config::NetworkConfig;
//!
//! let config = Nb201NetConfig { channels: 4, cells_per_stage: 1, in_channels: 1, num_classes: 10 };
//! let arch: Nb201Arch = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|".parse()?;
//! let net = config.build::<B>(&arch, &Default::default())?;
//! # let _ = net;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Device, Tensor};
use nas_space::darts::Genotype;
use nas_space::dpc::DpcArch;
use nas_space::fpn::FpnArch;
use nas_space::nasnet::NasNetArch;
use nas_space::nasrl::NasRlArch;
use nas_space::nb201::Nb201Arch;
use nas_space::proxyless::{ProxylessArch, ProxylessSpace};
use nas_space::spos::{SposArch, SposSpace};
use serde::{Deserialize, Serialize};

use crate::chain_net::{ChainNetConfig, ProxylessNetwork, SposNetwork};
use crate::darts_net::{DartsNetConfig, DartsNetwork};
use crate::darts_search::{DerivedArch, SupernetConfig};
use crate::error::SupernetError;
use crate::fpn_net::{FpnNetConfig, FpnNetwork};
use crate::multi_net::{DpcNetConfig, DpcNetwork, NasRlNetConfig, NasRlNetwork};
use crate::nb201_net::{Nb201NetConfig, Nb201Network};
use crate::network::{Classifier, TrainOptions};

/// A network configuration: builds the network of an architecture of type `A`, on any
/// backend.
pub trait NetworkConfig<A> {
    /// The network, on backend `B`.
    type Network<B: Backend>: Classifier<B>;

    /// Builds the network of `arch` on `device`. Fails on an architecture the configuration
    /// cannot build (another space's shape, invalid widths).
    fn build<B: Backend>(
        &self,
        arch: &A,
        device: &Device<B>,
    ) -> Result<Self::Network<B>, SupernetError>;
}

/// Something that builds the network of an architecture of type `A` on backend `B`: a
/// [`NetworkConfig`] of this crate, a closure `FnMut(&A, &Device<B>) -> Result<M,
/// SupernetError>`, or any configuration wrapped in [`Configured`].
pub trait BuildNetwork<A, B: Backend> {
    /// The network built.
    type Network;

    /// Builds the network of `arch` on `device`.
    fn build_network(
        &mut self,
        arch: &A,
        device: &Device<B>,
    ) -> Result<Self::Network, SupernetError>;
}

impl<A, B, M, F> BuildNetwork<A, B> for F
where
    B: Backend,
    F: FnMut(&A, &Device<B>) -> Result<M, SupernetError>,
{
    type Network = M;

    fn build_network(&mut self, arch: &A, device: &Device<B>) -> Result<M, SupernetError> {
        self(arch, device)
    }
}

/// A [`NetworkConfig`] of your own as a [`BuildNetwork`] (the configurations of this crate are
/// one already).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Configured<C>(pub C);

impl<A, B: Backend, C: NetworkConfig<A>> BuildNetwork<A, B> for Configured<C> {
    type Network = C::Network<B>;

    fn build_network(
        &mut self,
        arch: &A,
        device: &Device<B>,
    ) -> Result<Self::Network, SupernetError> {
        self.0.build(arch, device)
    }
}

macro_rules! builds_itself {
    ($($config:ty),*) => {$(
        impl<A, B: Backend> BuildNetwork<A, B> for $config
        where
            $config: NetworkConfig<A>,
        {
            type Network = <$config as NetworkConfig<A>>::Network<B>;

            fn build_network(
                &mut self,
                arch: &A,
                device: &Device<B>,
            ) -> Result<Self::Network, SupernetError> {
                NetworkConfig::build(&*self, arch, device)
            }
        }
    )*};
}

builds_itself!(
    Nb201NetConfig,
    DartsNetConfig,
    NasRlNetConfig,
    DpcNetConfig,
    FpnNetConfig,
    ChainNet<ProxylessSpace>,
    ChainNet<SposSpace>,
    SupernetConfig
);

impl NetworkConfig<Nb201Arch> for Nb201NetConfig {
    type Network<B: Backend> = Nb201Network<B>;

    fn build<B: Backend>(
        &self,
        arch: &Nb201Arch,
        device: &Device<B>,
    ) -> Result<Nb201Network<B>, SupernetError> {
        self.init(arch, device)
    }
}

impl NetworkConfig<Genotype> for DartsNetConfig {
    type Network<B: Backend> = DartsNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &Genotype,
        device: &Device<B>,
    ) -> Result<DartsNetwork<B>, SupernetError> {
        self.init(arch, device)
    }
}

impl NetworkConfig<NasNetArch> for DartsNetConfig {
    type Network<B: Backend> = DartsNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &NasNetArch,
        device: &Device<B>,
    ) -> Result<DartsNetwork<B>, SupernetError> {
        self.init_nasnet(arch, device)
    }
}

impl NetworkConfig<NasRlArch> for NasRlNetConfig {
    type Network<B: Backend> = NasRlNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &NasRlArch,
        device: &Device<B>,
    ) -> Result<NasRlNetwork<B>, SupernetError> {
        self.init(arch, device)
    }
}

impl NetworkConfig<DpcArch> for DpcNetConfig {
    type Network<B: Backend> = DpcNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &DpcArch,
        device: &Device<B>,
    ) -> Result<DpcNetwork<B>, SupernetError> {
        self.init(arch, device)
    }
}

impl NetworkConfig<FpnArch> for FpnNetConfig {
    type Network<B: Backend> = FpnNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &FpnArch,
        device: &Device<B>,
    ) -> Result<FpnNetwork<B>, SupernetError> {
        self.init(arch, device)
    }
}

/// A chain network configuration with the space whose widths it scales: the configuration of
/// ProxylessNAS ([`ProxylessSpace`]) and SPOS ([`SposSpace`]) networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainNet<S> {
    /// Input, classes, width multiplier and stem stride.
    pub config: ChainNetConfig,
    /// The space.
    pub space: S,
}

impl ChainNetConfig {
    /// This configuration with `space`: a [`NetworkConfig`] of the space's architectures.
    pub fn with_space<S>(self, space: S) -> ChainNet<S> {
        ChainNet {
            config: self,
            space,
        }
    }
}

impl NetworkConfig<ProxylessArch> for ChainNet<ProxylessSpace> {
    type Network<B: Backend> = ProxylessNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &ProxylessArch,
        device: &Device<B>,
    ) -> Result<ProxylessNetwork<B>, SupernetError> {
        self.config.proxyless(&self.space, arch, device)
    }
}

impl NetworkConfig<SposArch> for ChainNet<SposSpace> {
    type Network<B: Backend> = SposNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &SposArch,
        device: &Device<B>,
    ) -> Result<SposNetwork<B>, SupernetError> {
        self.config.spos(&self.space, arch, device)
    }
}

/// The stand-alone network of an architecture derived by a differentiable search.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum DerivedNetwork<B: Backend> {
    /// A NAS-Bench-201 network.
    Nb201(Nb201Network<B>),
    /// A DARTS network.
    Darts(DartsNetwork<B>),
}

impl<B: Backend> Classifier<B> for DerivedNetwork<B> {
    fn logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            Self::Nb201(n) => n.logits(images),
            Self::Darts(n) => n.logits(images),
        }
    }

    fn train_logits(
        &self,
        images: Tensor<B, 4>,
        options: &TrainOptions,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        match self {
            Self::Nb201(n) => n.train_logits(images, options),
            Self::Darts(n) => n.train_logits(images, options),
        }
    }

    fn macs(&self, input: [usize; 3]) -> Option<u64> {
        match self {
            Self::Nb201(n) => n.macs(input),
            Self::Darts(n) => n.macs(input),
        }
    }
}

/// The network of a derived architecture has the supernet's macro structure: the same
/// channels, cells, input and classes, with the derived operations (no auxiliary head).
impl NetworkConfig<DerivedArch> for SupernetConfig {
    type Network<B: Backend> = DerivedNetwork<B>;

    fn build<B: Backend>(
        &self,
        arch: &DerivedArch,
        device: &Device<B>,
    ) -> Result<DerivedNetwork<B>, SupernetError> {
        let mismatch = || SupernetError::InvalidConfig {
            what: "derived network",
            reason: format!(
                "a {} supernet configuration cannot build {}",
                self.space_name(),
                match arch {
                    DerivedArch::Nb201(_) => "a NAS-Bench-201 cell",
                    DerivedArch::Darts(_) => "a DARTS genotype",
                }
            ),
        };
        match (self, arch) {
            (SupernetConfig::Nb201(c), DerivedArch::Nb201(a)) => Ok(DerivedNetwork::Nb201(
                Nb201NetConfig {
                    channels: c.channels,
                    cells_per_stage: c.cells_per_stage,
                    in_channels: c.in_channels,
                    num_classes: c.num_classes,
                }
                .init(a, device)?,
            )),
            (SupernetConfig::Darts(c), DerivedArch::Darts(g)) => Ok(DerivedNetwork::Darts(
                DartsNetConfig {
                    channels: c.channels,
                    layers: c.layers,
                    stem_multiplier: c.stem_multiplier,
                    in_channels: c.in_channels,
                    num_classes: c.num_classes,
                    auxiliary: false,
                }
                .init(g, device)?,
            )),
            _ => Err(mismatch()),
        }
    }
}
