//! The serialized form of a [`Controller`]: its configuration, its parameters and Adam's
//! moments as Burn records in hex, its random generator, baseline and update count.

use nas_supernet::burn;

use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Record, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::rngs::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::model::ControllerModelRecord;
use super::{Controller, ControllerConfig};

type Bytes = BinBytesRecorder<FullPrecisionSettings>;

/// The serialized form of a [`Controller`].
#[derive(Serialize, Deserialize)]
struct ControllerState {
    config: ControllerConfig,
    decisions: Vec<usize>,
    /// The decision graph of a controller with attention (absent: one softmax per decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    graph: Option<nas_space::DecisionGraph>,
    /// The parameters, a Burn record (bincode, full precision), as hex.
    model: String,
    /// The attention's parameters of a controller over a decision graph, a Burn record as hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attention: Option<String>,
    /// Adam's state, a Burn record, as hex.
    optimizer: String,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    baseline: Option<f64>,
    updates: usize,
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return Err("a record is an even number of hex digits".into());
    }
    (0..s.len() / 2)
        .map(|i| {
            u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| format!("invalid hex digits at {}", 2 * i))
        })
        .collect()
}

fn save<B: Backend, R: Record<B>>(record: R) -> Result<String, String> {
    Recorder::<B>::record(&Bytes::default(), record, ())
        .map(|b| to_hex(&b))
        .map_err(|e| e.to_string())
}

fn load<B: Backend, R: Record<B>>(hex: &str, device: &B::Device) -> Result<R, String> {
    let bytes = from_hex(hex)?;
    // Burn's bincode recorder unwraps its decoding: a truncated record panics inside it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Recorder::<B>::load(&Bytes::default(), bytes, device)
    }))
    .map_err(|_| "the record is truncated or corrupt".to_string())?
    .map_err(|e| e.to_string())
}

impl<B: AutodiffBackend> Serialize for Controller<B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let state = ControllerState {
            config: self.config.clone(),
            decisions: self.decisions.clone(),
            graph: self.graph.clone(),
            model: save::<B, _>(self.model.base.clone().into_record()).map_err(S::Error::custom)?,
            attention: match &self.model.attention {
                Some(a) => Some(save::<B, _>(a.clone().into_record()).map_err(S::Error::custom)?),
                None => None,
            },
            optimizer: save::<B, _>(self.optim.to_record()).map_err(S::Error::custom)?,
            rng: ChaCha8Rng::deserialize_state(&self.rng.serialize_state()),
            baseline: self.baseline,
            updates: self.updates,
        };
        state.serialize(serializer)
    }
}

impl<'de, B: AutodiffBackend> Deserialize<'de> for Controller<B> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let state = ControllerState::deserialize(deserializer)?;
        let mut c = Controller::<B>::with_graph_on(
            &state.decisions,
            state.graph,
            state.config,
            0,
            B::Device::default(),
        )
        .map_err(|e| D::Error::custom(e.to_string()))?;
        if state.attention.is_some() != c.model.attention.is_some() {
            return Err(D::Error::custom(
                "controller state: attention parameters without a decision graph, or a graph \
                 without them; the state was edited or is corrupt",
            ));
        }
        let model: ControllerModelRecord<B> = load::<B, _>(&state.model, &c.device)
            .map_err(|e| D::Error::custom(format!("controller parameters: {e}")))?;
        if model.heads.len() != c.head_sizes.len() || model.embeddings.len() != c.head_sizes.len() {
            return Err(D::Error::custom(format!(
                "controller parameters: {} heads saved, but its decisions need {}; the state \
                 was edited or is corrupt",
                model.heads.len(),
                c.head_sizes.len()
            )));
        }
        c.model.base = c.model.base.load_record(model);
        if let (Some(hex), Some(attention)) = (&state.attention, c.model.attention.take()) {
            let record = load::<B, _>(hex, &c.device)
                .map_err(|e| D::Error::custom(format!("controller attention: {e}")))?;
            c.model.attention = Some(attention.load_record(record));
        }
        let optim = load::<B, _>(&state.optimizer, &c.device)
            .map_err(|e| D::Error::custom(format!("controller optimizer state: {e}")))?;
        c.optim = c.optim.load_record(optim);
        c.rng = state.rng;
        c.baseline = state.baseline;
        c.updates = state.updates;
        Ok(c)
    }
}
