//! Saving and loading a trained network together with its architecture.
//!
//! A saved network is a directory with two files:
//! - `network.json`: the architecture, the network configuration and free-form metadata
//!   (metrics, training settings...), as JSON;
//! - `weights.mpk`: the parameters and batch-norm statistics, as a Burn record
//!   (`NamedMpkFileRecorder`, full precision).
//!
//! Loading reads the JSON, rebuilds the network with the function you give (the same one that
//! built it: e.g. [`crate::nb201_net::Nb201NetConfig::init`]) and loads the weights into it, so
//! a record never has to encode the network's structure.
//!
//! ```no_run
//! use nas_space::nb201::Nb201Arch;
//! use nas_supernet::backend::DefaultBackend as B;
//! use nas_supernet::nb201_net::Nb201NetConfig;
//! use nas_supernet::persist::{load_network, save_network};
//!
//! let device = Default::default();
//! let arch: Nb201Arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|".parse()?;
//! let config = Nb201NetConfig::default();
//! let net = config.init::<B>(&arch, &device)?;
//! // ... train it ...
//! save_network("runs/best", net, &arch, &config, serde_json::json!({"accuracy": 93.1}))?;
//! let loaded = load_network::<B, _, Nb201Arch, Nb201NetConfig>("runs/best", &device, |a, c, d| c.init(a, d))?;
//! assert_eq!(loaded.arch, arch);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, RecorderError};
use burn::tensor::Device;
use burn::tensor::backend::Backend;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::SupernetError;

/// The description file of a saved network.
pub const DESCRIPTION_FILE: &str = "network.json";
/// The weights file of a saved network (Burn adds the `.mpk` extension to this stem).
pub const WEIGHTS_STEM: &str = "weights";

/// What `network.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedNetwork<A, C> {
    /// The architecture.
    pub arch: A,
    /// The network configuration (widths, depth, classes...).
    pub config: C,
    /// Anything else worth keeping with the weights (metrics, training settings).
    #[serde(default)]
    pub meta: serde_json::Value,
}

/// A network loaded by [`load_network`].
#[derive(Debug)]
pub struct LoadedNetwork<M, A, C> {
    /// The network, with the saved weights.
    pub network: M,
    /// Its architecture.
    pub arch: A,
    /// Its configuration.
    pub config: C,
    /// The saved metadata.
    pub meta: serde_json::Value,
}

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::<FullPrecisionSettings>::new()
}

fn io(path: &Path, source: std::io::Error) -> SupernetError {
    SupernetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Saves `network` with its architecture, configuration and metadata into directory `dir`
/// (created if needed; existing files are replaced). The JSON is written to a temporary file
/// and renamed, so a crash never leaves a half-written description.
pub fn save_network<B, M, A, C>(
    dir: impl AsRef<Path>,
    network: M,
    arch: &A,
    config: &C,
    meta: serde_json::Value,
) -> Result<(), SupernetError>
where
    B: Backend,
    M: Module<B>,
    A: Serialize,
    C: Serialize,
{
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let weights = dir.join(WEIGHTS_STEM);
    network
        .save_file(weights.clone(), &recorder())
        .map_err(|e| SupernetError::Corrupt {
            what: "network weights",
            path: weights,
            reason: format!("could not be written: {e}"),
        })?;
    let description = SavedNetwork { arch, config, meta };
    let json =
        serde_json::to_string_pretty(&description).map_err(|e| SupernetError::InvalidConfig {
            what: "saved network",
            reason: format!("the architecture or configuration cannot be serialized: {e}"),
        })?;
    let path = dir.join(DESCRIPTION_FILE);
    let tmp = dir.join(format!("{DESCRIPTION_FILE}.tmp"));
    std::fs::write(&tmp, json).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
}

/// Loads a network saved by [`save_network`] from `dir`: reads the description, builds the
/// network with `build(arch, config, device)` and loads the weights into it. Missing files,
/// malformed JSON and weights that do not fit the rebuilt network are typed errors.
pub fn load_network<B, M, A, C>(
    dir: impl AsRef<Path>,
    device: &Device<B>,
    build: impl FnOnce(&A, &C, &Device<B>) -> Result<M, SupernetError>,
) -> Result<LoadedNetwork<M, A, C>, SupernetError>
where
    B: Backend,
    M: Module<B>,
    A: DeserializeOwned,
    C: DeserializeOwned,
{
    let dir = dir.as_ref();
    let path = dir.join(DESCRIPTION_FILE);
    if !path.exists() {
        return Err(SupernetError::MissingFile {
            what: "saved network description",
            path,
            hint: "give the directory that `save_network` wrote".into(),
        });
    }
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let saved: SavedNetwork<A, C> =
        serde_json::from_str(&text).map_err(|e| SupernetError::Corrupt {
            what: "saved network description",
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let network = build(&saved.arch, &saved.config, device)?;
    let expected = param_shapes(&network);
    let weights: PathBuf = dir.join(WEIGHTS_STEM);
    let network = network
        .load_file(weights.clone(), &recorder(), device)
        .map_err(|e| match e {
            RecorderError::FileNotFound(_) => SupernetError::MissingFile {
                what: "saved network weights",
                path: weights.with_extension("mpk"),
                hint: "the directory has a description but no weights; save the network again"
                    .into(),
            },
            other => SupernetError::Corrupt {
                what: "saved network weights",
                path: weights.with_extension("mpk"),
                reason: format!("they do not fit the network the description builds: {other}"),
            },
        })?;
    // Burn replaces parameters by whatever the record holds: check that every shape fits.
    let found = param_shapes(&network);
    if found != expected {
        let (i, (want, got)) = expected
            .iter()
            .zip(&found)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i, (a.clone(), b.clone())))
            .unwrap_or((expected.len().min(found.len()), (Vec::new(), Vec::new())));
        return Err(SupernetError::Corrupt {
            what: "saved network weights",
            path: weights.with_extension("mpk"),
            reason: format!(
                "they do not fit the network the description builds: parameter {i} has shape \
                 {got:?} in the file but {want:?} in the network ({} vs {} tensors)",
                found.len(),
                expected.len()
            ),
        });
    }
    Ok(LoadedNetwork {
        network,
        arch: saved.arch,
        config: saved.config,
        meta: saved.meta,
    })
}

/// The shapes of every float tensor of `module` (parameters and batch-norm statistics), in
/// visiting order.
pub(crate) fn param_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<B, D>>,
        ) {
            self.0.push(param.shape().dims::<D>().to_vec());
        }
    }
    let mut s = Shapes(Vec::new());
    module.visit(&mut s);
    s.0
}
