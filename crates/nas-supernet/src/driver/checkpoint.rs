//! The checkpoint file: named JSON values and named byte blobs (Burn records), written
//! atomically and read back with typed errors.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "NASCKPT\0"            8 bytes, the magic
//! version                u32 (FORMAT_VERSION)
//! header length          u64
//! header                 JSON: kind, configuration fingerprint, epochs done, blob table
//! blobs                  the blobs, one after the other, as listed in the header: Burn
//!                        records (MessagePack) of modules and optimizers, and every other
//!                        value (counters, reports, the history) as MessagePack, which keeps
//!                        NaN and infinities
//! checksum               u64, FNV-1a over everything before it
//! ```
//!
//! A checkpoint is written to `<path>.tmp`, flushed to disk, then renamed over `<path>`, so a
//! process killed while writing leaves the previous checkpoint intact.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Record, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"NASCKPT\0";
/// The version of the checkpoint layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 2;

/// The prefix of the blobs that hold [`Checkpoint::put`] values.
const VALUE: &str = "value:";

/// Errors of writing and reading checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("checkpoint `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a checkpoint of this library, is truncated or was altered.
    #[error(
        "checkpoint `{path}` is corrupt: {reason}; delete it (or start fresh) to train from the beginning"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file holds the checkpoint of another kind of run (e.g. a DARTS search where a
    /// supernet training was expected).
    #[error("checkpoint `{path}` is of a {found} run, not of a {expected} run; give another path")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// The kind this run writes.
        expected: String,
        /// The kind in the file.
        found: String,
    },
    /// The checkpoint was written by a run with another configuration (seed, epochs, space,
    /// method...): resuming it would silently mix two runs.
    #[error(
        "checkpoint `{path}` was written with another configuration ({difference}); resume with the same settings, or start fresh"
    )]
    ConfigMismatch {
        /// The file.
        path: PathBuf,
        /// The first difference found, as `field: checkpoint value ≠ this run's value`.
        difference: String,
    },
    /// Another run (another process, or another driver here) is checkpointing to the same
    /// file: it holds the lock file beside it (`<checkpoint>.lock`).
    #[error(
        "another run is writing checkpoint `{path}` (it holds `{path}.lock`): wait for it to end, or give this run another checkpoint path (e.g. `--checkpoint`)"
    )]
    Busy {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// A checkpoint already exists where a new run would write one.
    #[error(
        "a checkpoint already exists at `{path}`: resume it (e.g. `--resume`), or start fresh (e.g. `--fresh`) to overwrite it"
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A value the solver needs is missing from the checkpoint or has another shape.
    #[error("checkpoint `{path}`: entry `{name}`: {reason}")]
    Entry {
        /// The file.
        path: PathBuf,
        /// The entry.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A value could not be turned into bytes.
    #[error("cannot serialize `{name}` for a checkpoint: {reason}")]
    Serialize {
        /// The entry.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// The exclusive lock of a checkpoint path, held while a run may write it: a second run on
/// the same path (another process, or another driver here) gets [`CheckpointError::Busy`]
/// instead of overwriting the first one's checkpoints. The lock is on `<checkpoint>.lock`, a
/// file of its own that stays behind (the checkpoint itself is replaced by a rename at every
/// write, which a lock on it would not survive); the lock goes when this value drops.
#[derive(Debug)]
pub struct CheckpointLock {
    _file: Option<std::fs::File>,
}

impl CheckpointLock {
    /// Takes the lock of checkpoint `path` without waiting, creating its directory and the
    /// lock file when needed. On a file system without locks (some network mounts) the run
    /// goes on unlocked.
    ///
    /// # Errors
    /// [`CheckpointError::Busy`] when another run holds it, [`CheckpointError::Io`] when the
    /// lock file cannot be created.
    pub fn acquire(path: &Path) -> Result<Self, CheckpointError> {
        let mut name = path.as_os_str().to_os_string();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| CheckpointError::Io {
                path: lock_path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(CheckpointError::Busy {
                path: path.to_path_buf(),
            }),
            // A file system without working locks (some network mounts report ENOLCK, which
            // std does not class as unsupported): checkpoint unlocked, as before locks.
            Err(std::fs::TryLockError::Error(_)) => Ok(Self { _file: None }),
        }
    }
}

/// The state a solver saves: named JSON values and named byte blobs.
///
/// Solvers fill it in [`super::EpochSolver::save`] and read it back in
/// [`super::EpochSolver::load`]; Burn modules and optimizers go in as records
/// ([`Checkpoint::put_module`], [`Checkpoint::put_optimizer`]).
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    path: PathBuf,
    blobs: BTreeMap<String, Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    kind: String,
    fingerprint: serde_json::Value,
    epochs_done: usize,
    blobs: Vec<(String, u64)>,
}

/// What [`Checkpoint::read`] returns besides the solver's state.
#[derive(Debug, Clone)]
pub struct CheckpointMeta {
    /// The kind of run.
    pub kind: String,
    /// The configuration fingerprint.
    pub fingerprint: serde_json::Value,
    /// Epochs finished.
    pub epochs_done: usize,
}

fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::<FullPrecisionSettings>::new()
}

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

impl Checkpoint {
    /// An empty checkpoint (the path only names it in error messages).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }

    /// The file this checkpoint was read from or will be written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entry(&self, name: &str, reason: impl Into<String>) -> CheckpointError {
        CheckpointError::Entry {
            path: self.path.clone(),
            name: name.to_string(),
            reason: reason.into(),
        }
    }

    /// Stores `value` under `name` (MessagePack: floats keep NaN and infinities).
    pub fn put<T: Serialize + ?Sized>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), CheckpointError> {
        let bytes = rmp_serde::to_vec_named(value).map_err(|e| CheckpointError::Serialize {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        self.blobs.insert(format!("{VALUE}{name}"), bytes);
        Ok(())
    }

    /// The value stored under `name`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, CheckpointError> {
        let bytes = self
            .blobs
            .get(&format!("{VALUE}{name}"))
            .ok_or_else(|| self.entry(name, "missing"))?;
        rmp_serde::from_slice(bytes).map_err(|e| self.entry(name, e.to_string()))
    }

    /// Stores raw bytes under `name`.
    pub fn put_bytes(&mut self, name: &str, bytes: Vec<u8>) {
        self.blobs.insert(name.to_string(), bytes);
    }

    /// The bytes stored under `name`.
    pub fn bytes(&self, name: &str) -> Result<&[u8], CheckpointError> {
        self.blobs
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| self.entry(name, "missing"))
    }

    /// Stores a Burn record (full precision, MessagePack) under `name`.
    fn put_record<B: Backend, R: Record<B>>(
        &mut self,
        name: &str,
        record: R,
    ) -> Result<(), CheckpointError> {
        let bytes = Recorder::<B>::record(&recorder(), record, ()).map_err(|e| {
            CheckpointError::Serialize {
                name: name.to_string(),
                reason: e.to_string(),
            }
        })?;
        self.put_bytes(name, bytes);
        Ok(())
    }

    /// The Burn record stored under `name`.
    fn record<B: Backend, R: Record<B>>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Result<R, CheckpointError> {
        let bytes = self.bytes(name)?.to_vec();
        Recorder::<B>::load(&recorder(), bytes, device).map_err(|e| self.entry(name, e.to_string()))
    }

    /// Stores the parameters and buffers (batch-norm statistics) of `module` under `name`.
    pub fn put_module<B: Backend, M: Module<B>>(
        &mut self,
        name: &str,
        module: &M,
    ) -> Result<(), CheckpointError> {
        self.put_record::<B, _>(name, module.clone().into_record())
    }

    /// Loads the record stored under `name` into `module` (built with the same structure),
    /// checking that every parameter's shape fits.
    pub fn module<B: Backend, M: Module<B>>(
        &self,
        name: &str,
        module: M,
        device: &B::Device,
    ) -> Result<M, CheckpointError> {
        let record: M::Record = self.record::<B, _>(name, device)?;
        let expected = crate::persist::param_shapes(&module);
        let loaded = module.load_record(record);
        let found = crate::persist::param_shapes(&loaded);
        if expected != found {
            return Err(self.entry(
                name,
                "the saved parameters have other shapes than this run's network (another space, width or depth?)",
            ));
        }
        Ok(loaded)
    }

    /// Stores the state of `optim` (momentum buffers, Adam moments) under `name`.
    pub fn put_optimizer<B: AutodiffBackend, M: burn::module::AutodiffModule<B>, O>(
        &mut self,
        name: &str,
        optim: &O,
    ) -> Result<(), CheckpointError>
    where
        O: Optimizer<M, B>,
    {
        self.put_record::<B, _>(name, optim.to_record())
    }

    /// Loads the optimizer state stored under `name` into `optim`.
    pub fn optimizer<B: AutodiffBackend, M: burn::module::AutodiffModule<B>, O>(
        &self,
        name: &str,
        optim: O,
        device: &B::Device,
    ) -> Result<O, CheckpointError>
    where
        O: Optimizer<M, B>,
    {
        Ok(optim.load_record(self.record::<B, _>(name, device)?))
    }

    /// Writes the checkpoint atomically: to `<path>.tmp`, synced, then renamed over `path`.
    pub(crate) fn write(&self, meta: &CheckpointMeta) -> Result<(), CheckpointError> {
        let path = &self.path;
        let io = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        let header = Header {
            kind: meta.kind.clone(),
            fingerprint: meta.fingerprint.clone(),
            epochs_done: meta.epochs_done,
            blobs: self
                .blobs
                .iter()
                .map(|(k, v)| (k.clone(), v.len() as u64))
                .collect(),
        };
        let header = serde_json::to_vec(&header).map_err(|e| CheckpointError::Serialize {
            name: "header".into(),
            reason: e.to_string(),
        })?;
        let mut out = Vec::with_capacity(header.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for blob in self.blobs.values() {
            out.extend_from_slice(blob);
        }
        let sum = fnv1a(&out, FNV_OFFSET);
        out.extend_from_slice(&sum.to_le_bytes());

        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&out).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        // The rename itself is durable once the directory is synced (best effort: not every
        // platform lets a directory be opened).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads the checkpoint at `path`: its metadata and the solver's state.
    pub fn read(path: impl Into<PathBuf>) -> Result<(CheckpointMeta, Checkpoint), CheckpointError> {
        let path = path.into();
        let bytes = std::fs::read(&path).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.clone(),
            reason,
        };
        if bytes.len() < 8 + 4 + 8 + 8 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a checkpoint file of this library".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
        if version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {version}, this build reads version {FORMAT_VERSION}"
            )));
        }
        let body = &bytes[..bytes.len() - 8];
        let stored = u64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap_or_default());
        if fnv1a(body, FNV_OFFSET) != stored {
            return Err(corrupt(
                "checksum mismatch (truncated or altered file)".into(),
            ));
        }
        let header_len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
        let header_end = usize::try_from(header_len)
            .ok()
            .and_then(|n| n.checked_add(20))
            .filter(|&e| e <= body.len())
            .ok_or_else(|| corrupt("header length past the end of the file".into()))?;
        let header: Header = serde_json::from_slice(&body[20..header_end])
            .map_err(|e| corrupt(format!("unreadable header: {e}")))?;
        let mut blobs = BTreeMap::new();
        let mut at = header_end;
        for (name, len) in &header.blobs {
            let end = usize::try_from(*len)
                .ok()
                .and_then(|n| n.checked_add(at))
                .filter(|&e| e <= body.len())
                .ok_or_else(|| corrupt(format!("blob `{name}` runs past the end of the file")))?;
            blobs.insert(name.clone(), body[at..end].to_vec());
            at = end;
        }
        if at != body.len() {
            return Err(corrupt(format!(
                "{} bytes after the last blob",
                body.len() - at
            )));
        }
        let meta = CheckpointMeta {
            kind: header.kind,
            fingerprint: header.fingerprint,
            epochs_done: header.epochs_done,
        };
        Ok((meta, Checkpoint { path, blobs }))
    }
}

/// The first difference between two configuration fingerprints, as `field: a ≠ b`.
pub(crate) fn first_difference(
    saved: &serde_json::Value,
    now: &serde_json::Value,
    at: &str,
) -> Option<String> {
    use serde_json::Value;
    match (saved, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, &path),
                    (x, y) => Some(format!(
                        "{path}: {} ≠ {}",
                        x.map_or("absent".into(), Value::to_string),
                        y.map_or("absent".into(), Value::to_string)
                    )),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}[{i}]"))),
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "{}: {a} ≠ {b}",
            if at.is_empty() { "configuration" } else { at }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> CheckpointMeta {
        CheckpointMeta {
            kind: "test".into(),
            fingerprint: serde_json::json!({"seed": 1, "epochs": [3, 4]}),
            epochs_done: 2,
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("nas-ckpt-{}", std::process::id()));
        let path = dir.join("c.bin");
        let mut c = Checkpoint::new(&path);
        c.put("step", &17usize).unwrap();
        c.put("losses", &[1.5, f64::NAN, f64::INFINITY]).unwrap();
        c.put_bytes("weights", vec![1, 2, 3, 4, 5]);
        c.write(&meta()).unwrap();
        let (m, r) = Checkpoint::read(&path).unwrap();
        assert_eq!(m.epochs_done, 2);
        assert_eq!(m.epochs_done, 2);
        assert_eq!(r.get::<usize>("step").unwrap(), 17);
        let losses: Vec<f64> = r.get("losses").unwrap();
        assert_eq!(losses[0], 1.5);
        assert!(
            losses[1].is_nan() && losses[2] == f64::INFINITY,
            "{losses:?}"
        );
        assert_eq!(r.bytes("weights").unwrap(), &[1, 2, 3, 4, 5]);
        assert!(matches!(
            r.get::<String>("step"),
            Err(CheckpointError::Entry { .. })
        ));
        assert!(matches!(
            r.bytes("nope"),
            Err(CheckpointError::Entry { .. })
        ));
        assert!(!dir.join("c.bin.tmp").exists());

        // Every truncation and every flipped byte is caught.
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 5, 12, 20, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(
                matches!(
                    Checkpoint::read(&path),
                    Err(CheckpointError::Corrupt { .. })
                ),
                "truncated to {cut}"
            );
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            std::fs::write(&path, &b).unwrap();
            assert!(
                matches!(
                    Checkpoint::read(&path),
                    Err(CheckpointError::Corrupt { .. })
                ),
                "byte {i} flipped"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            Checkpoint::read(&path),
            Err(CheckpointError::Io { .. })
        ));
    }

    #[test]
    fn differences_name_the_field() {
        let a = serde_json::json!({"seed": 1, "method": {"name": "darts", "tau": [1.0, 2.0]}});
        let b = serde_json::json!({"seed": 1, "method": {"name": "darts", "tau": [1.0, 3.0]}});
        assert_eq!(
            first_difference(&a, &b, "").unwrap(),
            "method.tau[1]: 2.0 ≠ 3.0"
        );
        assert_eq!(first_difference(&a, &a, ""), None);
    }
}
