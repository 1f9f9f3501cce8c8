//! The Single Path One-Shot (SPOS) ShuffleNetV2 block space.
//!
//! Guo et al., *Single Path One-Shot Neural Architecture Search with Uniform Sampling*, ECCV
//! 2020 (arXiv:1904.00420); code `megvii-model/SinglePathOneShot`. The supernet
//! (`ShuffleNetV2_OneShot` in `src/Supernet/network.py` and `src/Evaluation/network.py`) has
//! `stage_repeats = [4, 4, 8, 4]` and `stage_out_channels = [-1, 16, 64, 160, 320, 640, 1024]`:
//! a 3x3 stride-2 stem convolution to 16 channels, four stages of 4, 4, 8 and 4 choice blocks
//! whose first block has stride 2, and a 1x1 convolution to 1024 channels. Each of the 20 choice
//! blocks picks one of four blocks, numbered as in the code (`blockIndex`):
//!
//! | index | name | block |
//! | --- | --- | --- |
//! | 0 | `shufflenet_3x3` | `Shufflenet(ksize=3)` |
//! | 1 | `shufflenet_5x5` | `Shufflenet(ksize=5)` |
//! | 2 | `shufflenet_7x7` | `Shufflenet(ksize=7)` |
//! | 3 | `xception` | `Shuffle_Xception` (three 3x3 depthwise convolutions) |
//!
//! The space holds 4^20 ≈ 1.1·10^12 architectures. The repository writes an architecture as a
//! tuple of block indices ([`SposArch::from_indices`], [`SposArch::to_indices`]); the text format
//! here joins the names with single spaces:
//!
//! ```
//! use nas_space::spos::{SposArch, SposChoice, SposSpace, SPOS_SEARCHED};
//! use nas_space::{SearchSpace, TextFormat};
//!
//! let space = SposSpace::default();
//! let searched = SposArch::from_indices(&SPOS_SEARCHED)?;
//! space.validate(&searched)?;
//! assert_eq!(searched.choices[0], SposChoice::Shufflenet7x7);
//! let text = space.to_text(&searched);
//! assert!(text.starts_with("shufflenet_7x7 shufflenet_5x5 shufflenet_3x3 "));
//! assert_eq!(space.parse(&text)?.to_indices(), SPOS_SEARCHED);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ParseErrorKind, SpaceError};
use crate::proxyless::{chain_graph, chain_words};
use crate::text::lookup;
use crate::traits::{
    ArchGraph, CanonicalForm, Canonicalize, Encode, Enumerable, Mutate, Neighborhood, SearchSpace,
    TextFormat, ToGraph, choose, radix,
};

const FORMAT: &str = "SPOS architecture string";
const SPACE: &str = "spos";

/// The architecture found by the search of the paper's repository, as block indices: the
/// tuple in the results table of `megvii-model/SinglePathOneShot/README.md`
/// (323M FLOPs, 3.5M parameters, 25.6% top-1 error on ImageNet).
pub const SPOS_SEARCHED: [usize; 20] = [2, 1, 0, 1, 2, 0, 2, 0, 2, 0, 2, 3, 0, 0, 0, 0, 3, 2, 3, 3];

/// The block of one choice layer, in the code's `blockIndex` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SposChoice {
    /// `shufflenet_3x3`: a ShuffleNetV2 block with a 3x3 depthwise convolution (index 0).
    #[serde(rename = "shufflenet_3x3")]
    Shufflenet3x3,
    /// `shufflenet_5x5`: a ShuffleNetV2 block with a 5x5 depthwise convolution (index 1).
    #[serde(rename = "shufflenet_5x5")]
    Shufflenet5x5,
    /// `shufflenet_7x7`: a ShuffleNetV2 block with a 7x7 depthwise convolution (index 2).
    #[serde(rename = "shufflenet_7x7")]
    Shufflenet7x7,
    /// `xception`: the Xception-like ShuffleNetV2 block, three 3x3 depthwise convolutions
    /// (index 3).
    Xception,
}

impl SposChoice {
    /// The four choices in index order.
    pub const ALL: [SposChoice; 4] = [
        SposChoice::Shufflenet3x3,
        SposChoice::Shufflenet5x5,
        SposChoice::Shufflenet7x7,
        SposChoice::Xception,
    ];

    /// The name used in the text format.
    pub fn name(self) -> &'static str {
        match self {
            SposChoice::Shufflenet3x3 => "shufflenet_3x3",
            SposChoice::Shufflenet5x5 => "shufflenet_5x5",
            SposChoice::Shufflenet7x7 => "shufflenet_7x7",
            SposChoice::Xception => "xception",
        }
    }

    /// The repository's block index (0..4).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The choice with block index `index`, if `index < 4`.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }

    /// The depthwise kernel size (3 for `xception`, whose three depthwise convolutions are 3x3).
    pub fn kernel(self) -> usize {
        match self {
            SposChoice::Shufflenet3x3 | SposChoice::Xception => 3,
            SposChoice::Shufflenet5x5 => 5,
            SposChoice::Shufflenet7x7 => 7,
        }
    }

    fn table() -> [(&'static str, SposChoice); 4] {
        SposChoice::ALL.map(|c| (c.name(), c))
    }
}

impl fmt::Display for SposChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SposChoice {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        lookup(FORMAT, &SposChoice::table(), s, 0)
    }
}

/// An SPOS architecture: the block chosen in each choice layer, in network order.
///
/// Serialized (serde) as its architecture string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SposArch {
    /// One choice per layer.
    pub choices: Vec<SposChoice>,
}

impl SposArch {
    /// An architecture from its choices.
    pub fn new(choices: Vec<SposChoice>) -> Self {
        Self { choices }
    }

    /// From the repository's representation, a list of block indices in `0..4` (e.g.
    /// [`SPOS_SEARCHED`]). Fails with [`SpaceError::InvalidArch`] on an index of 4 or more.
    pub fn from_indices(indices: &[usize]) -> Result<Self, SpaceError> {
        let choices = indices
            .iter()
            .enumerate()
            .map(|(layer, &i)| {
                SposChoice::from_index(i).ok_or_else(|| {
                    SpaceError::invalid(
                        SPACE,
                        format!("layer {layer} has block index {i}; block indices are 0..=3"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { choices })
    }

    /// The repository's representation: the block index of each layer.
    pub fn to_indices(&self) -> Vec<usize> {
        self.choices.iter().map(|c| c.index()).collect()
    }
}

impl fmt::Display for SposArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.choices.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(c.name())?;
        }
        Ok(())
    }
}

impl FromStr for SposArch {
    type Err = ParseError;

    /// Reads any number of block names (use [`TextFormat::parse`] of a [`SposSpace`] to also
    /// check the count).
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let choices = chain_words(s, FORMAT)?
            .iter()
            .map(|&(w, pos)| lookup(FORMAT, &SposChoice::table(), w, pos))
            .collect::<Result<_, _>>()?;
        Ok(Self { choices })
    }
}

impl TryFrom<String> for SposArch {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        s.parse()
    }
}

impl From<SposArch> for String {
    fn from(a: SposArch) -> String {
        a.to_string()
    }
}

/// The configuration of a [`SposSpace`]. [`Default`] is the repository's supernet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SposConfig {
    /// Output channels of the 3x3 stride-2 stem convolution (`stage_out_channels[1]` = 16).
    pub stem_channels: usize,
    /// Number of choice layers per stage (`stage_repeats` = 4, 4, 8, 4).
    pub stage_repeats: Vec<usize>,
    /// Output channels of each stage (`stage_out_channels[2..6]` = 64, 160, 320, 640).
    pub stage_channels: Vec<usize>,
    /// Output channels of the last 1x1 convolution (`stage_out_channels[-1]` = 1024).
    pub last_channels: usize,
}

impl Default for SposConfig {
    fn default() -> Self {
        Self {
            stem_channels: 16,
            stage_repeats: vec![4, 4, 8, 4],
            stage_channels: vec![64, 160, 320, 640],
            last_channels: 1024,
        }
    }
}

/// One choice layer of the network, as `nas-supernet` needs it to build the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SposLayer {
    /// The stage (0-based).
    pub stage: usize,
    /// Position within the stage (0-based).
    pub index: usize,
    /// Channels of the block's input tensor. A stride-1 block splits them in half and runs its
    /// branch on one half (the code passes `inp = input_channel // 2`); a stride-2 block runs
    /// its projection and main branches on all of them.
    pub in_channels: usize,
    /// Channels of the block's output tensor.
    pub out_channels: usize,
    /// 2 for the first layer of each stage, else 1.
    pub stride: usize,
    /// Hidden channels of the main branch (`base_mid_channels = outp // 2`).
    pub mid_channels: usize,
}

/// The SPOS space (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SposConfig", into = "SposConfig")]
pub struct SposSpace {
    config: SposConfig,
    layers: Vec<SposLayer>,
}

impl Default for SposSpace {
    /// The repository's supernet: 20 choice layers.
    fn default() -> Self {
        Self::build(SposConfig::default())
    }
}

impl SposSpace {
    /// A space from a configuration. Fails with [`SpaceError::InvalidConfig`] naming the field
    /// when there are no stages, `stage_repeats` and `stage_channels` differ in length, a repeat
    /// count or channel count is 0, a stage's channels are not a multiple of 4 (the code's
    /// `channel_shuffle` asserts it) or not larger than its input (a stride-2 block's main
    /// branch produces `out - in` channels).
    pub fn new(config: SposConfig) -> Result<Self, SpaceError> {
        let err = |field, reason: String| Err(SpaceError::config(SPACE, field, reason));
        if config.stem_channels == 0 {
            return err("stem_channels", "must be positive".into());
        }
        if config.last_channels == 0 {
            return err("last_channels", "must be positive".into());
        }
        if config.stage_repeats.is_empty() {
            return err("stage_repeats", "must not be empty".into());
        }
        if config.stage_repeats.len() != config.stage_channels.len() {
            return err(
                "stage_channels",
                format!(
                    "has {} entries but stage_repeats has {}; give one per stage",
                    config.stage_channels.len(),
                    config.stage_repeats.len()
                ),
            );
        }
        if let Some(i) = config.stage_repeats.iter().position(|&r| r == 0) {
            return err("stage_repeats", format!("stage {i} has 0 layers"));
        }
        let mut input = config.stem_channels;
        for (i, &c) in config.stage_channels.iter().enumerate() {
            if c == 0 || c % 4 != 0 {
                return err(
                    "stage_channels",
                    format!("stage {i} has {c} channels; a positive multiple of 4 is required"),
                );
            }
            if c <= input {
                return err(
                    "stage_channels",
                    format!("stage {i} has {c} channels, not more than its {input} input channels"),
                );
            }
            input = c;
        }
        Ok(Self::build(config))
    }

    fn build(config: SposConfig) -> Self {
        let mut layers = Vec::new();
        let mut input = config.stem_channels;
        for (stage, (&repeats, &out)) in config
            .stage_repeats
            .iter()
            .zip(&config.stage_channels)
            .enumerate()
        {
            for index in 0..repeats {
                layers.push(SposLayer {
                    stage,
                    index,
                    in_channels: input,
                    out_channels: out,
                    stride: if index == 0 { 2 } else { 1 },
                    mid_channels: out / 2,
                });
                input = out;
            }
        }
        Self { config, layers }
    }

    /// The configuration.
    pub fn config(&self) -> &SposConfig {
        &self.config
    }

    /// Every choice layer, in network order: stage, channels, stride.
    pub fn layers(&self) -> &[SposLayer] {
        &self.layers
    }

    /// The number of choice layers (20 by default).
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn radices(&self) -> Vec<u128> {
        vec![4; self.layers.len()]
    }
}

impl SearchSpace for SposSpace {
    type Arch = SposArch;

    fn name(&self) -> &str {
        SPACE
    }

    /// Uniform over the space (the paper's uniform path sampling).
    fn sample(&self, rng: &mut dyn Rng) -> SposArch {
        SposArch {
            choices: (0..self.layers.len())
                .map(|_| choose(rng, &SposChoice::ALL))
                .collect(),
        }
    }

    fn validate(&self, arch: &SposArch) -> Result<(), SpaceError> {
        if arch.choices.len() != self.layers.len() {
            return Err(SpaceError::invalid(
                SPACE,
                format!(
                    "expected {} layers, found {}",
                    self.layers.len(),
                    arch.choices.len()
                ),
            ));
        }
        Ok(())
    }
}

impl Mutate for SposSpace {
    /// Changes the block of one random layer to one of the three others.
    fn mutate(&self, arch: &SposArch, rng: &mut dyn Rng) -> Result<SposArch, SpaceError> {
        self.validate(arch)?;
        let layers: Vec<usize> = (0..self.layers.len()).collect();
        let i = choose(rng, &layers);
        let others: Vec<SposChoice> = SposChoice::ALL
            .into_iter()
            .filter(|&c| c != arch.choices[i])
            .collect();
        let mut child = arch.clone();
        child.choices[i] = choose(rng, &others);
        Ok(child)
    }
}

impl Neighborhood for SposSpace {
    /// Layer by layer, the three other blocks in index order: 3 × layers neighbours.
    fn neighbors(&self, arch: &SposArch) -> Result<Vec<SposArch>, SpaceError> {
        self.validate(arch)?;
        let mut out = Vec::with_capacity(self.layers.len() * 3);
        for i in 0..self.layers.len() {
            for c in SposChoice::ALL {
                if c != arch.choices[i] {
                    let mut n = arch.clone();
                    n.choices[i] = c;
                    out.push(n);
                }
            }
        }
        Ok(out)
    }
}

impl Encode for SposSpace {
    /// One-hot per layer (4 slots in index order), layer-major: 80 values by default.
    fn encoding_len(&self) -> usize {
        self.layers.len() * 4
    }

    fn encode(&self, arch: &SposArch) -> Result<Vec<f32>, SpaceError> {
        self.validate(arch)?;
        let mut v = vec![0.0; self.layers.len() * 4];
        for (i, c) in arch.choices.iter().enumerate() {
            v[i * 4 + c.index()] = 1.0;
        }
        Ok(v)
    }
}

impl Enumerable for SposSpace {
    /// 4^layers; index = Σ_i index(choice_i)·4^i (layer 0 the least significant digit), so
    /// index 0 is all `shufflenet_3x3`. Saturates at `u128::MAX` beyond 63 layers.
    fn size(&self) -> u128 {
        radix::size(&self.radices()).unwrap_or(u128::MAX)
    }

    fn arch_at(&self, index: u128) -> Result<SposArch, SpaceError> {
        SpaceError::check_index(SPACE, index, self.size())?;
        let choices = radix::decode(index, &self.radices())
            .into_iter()
            .map(|d| SposChoice::ALL[d as usize])
            .collect();
        Ok(SposArch { choices })
    }

    fn index_of(&self, arch: &SposArch) -> Result<u128, SpaceError> {
        self.validate(arch)?;
        let digits: Vec<u128> = arch.choices.iter().map(|c| c.index() as u128).collect();
        Ok(radix::encode(&digits, &self.radices()))
    }
}

impl Canonicalize for SposSpace {
    /// The architecture string itself. No two different choice lists are equivalent: every
    /// layer computes a block (there is no zero or identity choice), the chain has a fixed
    /// order, and the four blocks compute different function families at every position, so
    /// the canonical form is the identity.
    fn canonical(&self, arch: &SposArch) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(arch.to_string()))
    }
}

impl TextFormat for SposSpace {
    fn to_text(&self, arch: &SposArch) -> String {
        arch.to_string()
    }

    /// Parses block names separated by whitespace: an unknown name is
    /// [`ParseErrorKind::UnknownOp`], too few or too many names is
    /// [`ParseErrorKind::WrongCount`], and text after the last layer that is not a block name
    /// is [`ParseErrorKind::TrailingInput`].
    fn parse(&self, text: &str) -> Result<SposArch, SpaceError> {
        let words = chain_words(text, FORMAT)?;
        let n = self.layers.len();
        let choices = words
            .iter()
            .take(n)
            .map(|&(w, pos)| lookup(FORMAT, &SposChoice::table(), w, pos))
            .collect::<Result<Vec<_>, _>>()?;
        let count = |found| ParseErrorKind::WrongCount {
            what: "layers".into(),
            expected: n,
            found,
        };
        if words.len() < n {
            return Err(ParseError::new(FORMAT, count(words.len()), text.len(), "").into());
        }
        if let Some(&(w, pos)) = words.get(n) {
            let kind = if SposChoice::table().iter().any(|(name, _)| *name == w) {
                count(words.len())
            } else {
                ParseErrorKind::TrailingInput
            };
            return Err(ParseError::new(FORMAT, kind, pos, w).into());
        }
        Ok(SposArch { choices })
    }
}

impl ToGraph for SposSpace {
    /// A chain: `input`, one node per layer labelled with its block name, `output`.
    fn graph(&self, arch: &SposArch) -> Result<ArchGraph, SpaceError> {
        self.validate(arch)?;
        Ok(chain_graph(
            arch.choices.iter().map(|c| c.name().to_string()),
        ))
    }
}

/// Serialized as its configuration, so a saved space can be reloaded; loading validates it.
impl From<SposSpace> for SposConfig {
    fn from(space: SposSpace) -> Self {
        space.config
    }
}

impl TryFrom<SposConfig> for SposSpace {
    type Error = SpaceError;
    fn try_from(config: SposConfig) -> Result<Self, SpaceError> {
        SposSpace::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::laws;

    fn searched() -> SposArch {
        SposArch::from_indices(&SPOS_SEARCHED).unwrap()
    }

    const SEARCHED_TEXT: &str = "shufflenet_7x7 shufflenet_5x5 shufflenet_3x3 shufflenet_5x5 \
shufflenet_7x7 shufflenet_3x3 shufflenet_7x7 shufflenet_3x3 \
shufflenet_7x7 shufflenet_3x3 shufflenet_7x7 xception \
shufflenet_3x3 shufflenet_3x3 shufflenet_3x3 shufflenet_3x3 \
xception shufflenet_7x7 xception xception";

    #[test]
    fn laws_hold() {
        let s = SposSpace::default();
        laws::check_sample(&s, 1, 200).unwrap();
        laws::check_serde(&s, 2, 200).unwrap();
        laws::check_mutate(&s, 3, 200).unwrap();
        laws::check_neighbors(&s, 4, 50).unwrap();
        laws::check_text(&s, 5, 200).unwrap();
        laws::check_encode(&s, 6, 50).unwrap();
        laws::check_enumerable(&s, 7, 200).unwrap();
        laws::check_canonical(&s, 8, 50).unwrap();
        laws::check_graph(&s, 9, 50).unwrap();
    }

    #[test]
    fn small_configuration_keeps_the_laws_and_enumerates_fully() {
        let s = SposSpace::new(SposConfig {
            stem_channels: 8,
            stage_repeats: vec![2, 1],
            stage_channels: vec![16, 32],
            last_channels: 64,
        })
        .unwrap();
        assert_eq!(s.size(), 64);
        let all: Vec<_> = s.iter().collect();
        let set: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(set.len(), 64);
        for (i, a) in all.iter().enumerate() {
            assert_eq!(s.index_of(a).unwrap(), i as u128);
        }
        let canon: std::collections::HashSet<_> =
            all.iter().map(|a| s.canonical(a).unwrap()).collect();
        assert_eq!(canon.len(), 64, "no two choice lists are equivalent");
        laws::check_mutate(&s, 1, 50).unwrap();
        laws::check_neighbors(&s, 1, 20).unwrap();
        laws::check_text(&s, 1, 50).unwrap();
    }

    #[test]
    fn default_layers_match_the_repository() {
        let s = SposSpace::default();
        assert_eq!(s.num_layers(), 20);
        assert_eq!(s.size(), 4u128.pow(20));
        assert_eq!(s.encoding_len(), 80);
        let l = s.layers();
        let firsts: Vec<_> = l
            .iter()
            .filter(|l| l.index == 0)
            .map(|l| {
                (
                    l.stage,
                    l.in_channels,
                    l.out_channels,
                    l.stride,
                    l.mid_channels,
                )
            })
            .collect();
        assert_eq!(
            firsts,
            vec![
                (0, 16, 64, 2, 32),
                (1, 64, 160, 2, 80),
                (2, 160, 320, 2, 160),
                (3, 320, 640, 2, 320)
            ]
        );
        assert!(
            l.iter()
                .filter(|l| l.index > 0)
                .all(|l| l.stride == 1 && l.in_channels == l.out_channels)
        );
        assert_eq!(l.iter().filter(|l| l.stage == 2).count(), 8);
        assert_eq!(s.config().last_channels, 1024);
        assert_eq!(s.config().stem_channels, 16);
    }

    #[test]
    fn published_architecture_round_trips() {
        let s = SposSpace::default();
        let a = searched();
        s.validate(&a).unwrap();
        assert_eq!(s.to_text(&a), SEARCHED_TEXT);
        assert_eq!(s.parse(SEARCHED_TEXT).unwrap(), a);
        assert_eq!(a.to_indices(), SPOS_SEARCHED);
        assert_eq!(a.choices[11], SposChoice::Xception);
        assert_eq!(s.arch_at(s.index_of(&a).unwrap()).unwrap(), a);
        assert_eq!(s.canonical(&a).unwrap().as_str(), SEARCHED_TEXT);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            format!("\"{SEARCHED_TEXT}\"")
        );
        let g = s.graph(&a).unwrap();
        assert_eq!(g.labels.len(), 22);
        assert_eq!(g.labels[1], "shufflenet_7x7");
        assert_eq!(g.labels[21], "output");
        assert_eq!(g.edges, (0..21).map(|i| (i, i + 1)).collect::<Vec<_>>());
    }

    #[test]
    fn indices_helpers() {
        assert_eq!(SposChoice::ALL.map(|c| c.index()), [0, 1, 2, 3]);
        assert_eq!(SposChoice::from_index(3), Some(SposChoice::Xception));
        assert_eq!(SposChoice::from_index(4), None);
        assert_eq!(SposChoice::ALL.map(|c| c.kernel()), [3, 5, 7, 3]);
        let e = SposArch::from_indices(&[0, 1, 4]).unwrap_err();
        assert!(matches!(e, SpaceError::InvalidArch { .. }));
        assert!(e.to_string().contains("layer 2"));
        assert_eq!(SposArch::from_indices(&[]).unwrap().choices.len(), 0);
        assert_eq!(
            "xception".parse::<SposChoice>().unwrap(),
            SposChoice::Xception
        );
        assert_eq!(
            serde_json::to_string(&SposChoice::Shufflenet5x5).unwrap(),
            "\"shufflenet_5x5\""
        );
    }

    #[test]
    fn canonical_distinguishes_different_lists() {
        let s = SposSpace::default();
        let a = searched();
        for n in s.neighbors(&a).unwrap() {
            assert_ne!(s.canonical(&n).unwrap(), s.canonical(&a).unwrap());
        }
        assert_eq!(s.neighbors(&a).unwrap().len(), 60);
    }

    #[test]
    fn enumeration_order() {
        let s = SposSpace::default();
        assert!(
            s.arch_at(0)
                .unwrap()
                .choices
                .iter()
                .all(|&c| c == SposChoice::Shufflenet3x3)
        );
        assert_eq!(s.arch_at(3).unwrap().choices[0], SposChoice::Xception);
        assert_eq!(s.arch_at(4).unwrap().choices[1], SposChoice::Shufflenet5x5);
        assert!(
            s.arch_at(s.size() - 1)
                .unwrap()
                .choices
                .iter()
                .all(|&c| c == SposChoice::Xception)
        );
        assert!(matches!(
            s.arch_at(s.size()),
            Err(SpaceError::IndexOutOfRange { .. })
        ));
    }

    #[test]
    fn encoding_is_one_hot() {
        let s = SposSpace::default();
        let e = s.encode(&searched()).unwrap();
        for (i, chunk) in e.chunks(4).enumerate() {
            assert_eq!(chunk[SPOS_SEARCHED[i]], 1.0);
            assert_eq!(chunk.iter().sum::<f32>(), 1.0);
        }
    }

    fn parse_err(text: &str) -> ParseError {
        match SposSpace::default().parse(text) {
            Err(SpaceError::Parse(e)) => e,
            other => panic!("expected a parse error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn unknown_op_names_token_and_position() {
        let text = SEARCHED_TEXT.replacen("shufflenet_5x5", "shufflenet_9x9", 1);
        let e = parse_err(&text);
        let pos = SEARCHED_TEXT.find("shufflenet_5x5").unwrap();
        assert_eq!((e.position, e.token.as_str()), (pos, "shufflenet_9x9"));
        match &e.kind {
            ParseErrorKind::UnknownOp { known } => assert_eq!(known.len(), 4),
            k => panic!("{k:?}"),
        }
        assert!(e.to_string().contains("xception"));
        let e = "xception Xception".parse::<SposArch>().unwrap_err();
        assert_eq!((e.position, e.token.as_str()), (9, "Xception"));
    }

    #[test]
    fn wrong_count_names_position() {
        let short = SEARCHED_TEXT.rsplit_once(' ').unwrap().0;
        let e = parse_err(short);
        assert_eq!(
            e.kind,
            ParseErrorKind::WrongCount {
                what: "layers".into(),
                expected: 20,
                found: 19
            }
        );
        assert_eq!((e.position, e.token.as_str()), (short.len(), ""));
        let e = parse_err(&format!("{SEARCHED_TEXT} xception"));
        assert_eq!(
            e.kind,
            ParseErrorKind::WrongCount {
                what: "layers".into(),
                expected: 20,
                found: 21
            }
        );
        assert_eq!(
            (e.position, e.token.as_str()),
            (SEARCHED_TEXT.len() + 1, "xception")
        );
        let mut a = searched();
        a.choices.push(SposChoice::Xception);
        assert!(matches!(
            SposSpace::default().validate(&a),
            Err(SpaceError::InvalidArch { .. })
        ));
    }

    #[test]
    fn trailing_text_is_reported() {
        let e = parse_err(&format!("{SEARCHED_TEXT} # comment"));
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }), "{e}");
        assert_eq!(
            (e.position, e.token.as_str()),
            (SEARCHED_TEXT.len() + 1, "#")
        );
        let e = parse_err(&format!("{SEARCHED_TEXT} done"));
        assert_eq!(e.kind, ParseErrorKind::TrailingInput);
        assert_eq!(
            (e.position, e.token.as_str()),
            (SEARCHED_TEXT.len() + 1, "done")
        );
    }

    #[test]
    fn brackets_are_not_part_of_the_format() {
        // The repository's tuple form is read with `from_indices`, not as text.
        let e = parse_err("(2, 1, 0)");
        assert!(matches!(e.kind, ParseErrorKind::Expected { .. }));
        assert_eq!((e.position, e.token.as_str()), (0, "("));
        let e = parse_err(&format!("[{SEARCHED_TEXT}]"));
        assert_eq!((e.position, e.token.as_str()), (0, "["));
    }

    #[test]
    fn empty_input_is_reported() {
        for text in ["", " \t\n"] {
            let e = parse_err(text);
            assert_eq!(
                (e.kind, e.position, e.token.as_str()),
                (ParseErrorKind::Empty, 0, "")
            );
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let field = |c: SposConfig| match SposSpace::new(c) {
            Err(SpaceError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        let d = SposConfig::default;
        assert_eq!(
            field(SposConfig {
                stem_channels: 0,
                ..d()
            }),
            "stem_channels"
        );
        assert_eq!(
            field(SposConfig {
                last_channels: 0,
                ..d()
            }),
            "last_channels"
        );
        assert_eq!(
            field(SposConfig {
                stage_repeats: vec![],
                stage_channels: vec![],
                ..d()
            }),
            "stage_repeats"
        );
        assert_eq!(
            field(SposConfig {
                stage_repeats: vec![4, 4, 8],
                ..d()
            }),
            "stage_channels"
        );
        assert_eq!(
            field(SposConfig {
                stage_repeats: vec![4, 0, 8, 4],
                ..d()
            }),
            "stage_repeats"
        );
        assert_eq!(
            field(SposConfig {
                stage_channels: vec![64, 162, 320, 640],
                ..d()
            }),
            "stage_channels"
        );
        assert_eq!(
            field(SposConfig {
                stage_channels: vec![64, 0, 320, 640],
                ..d()
            }),
            "stage_channels"
        );
        assert_eq!(
            field(SposConfig {
                stage_channels: vec![64, 64, 320, 640],
                ..d()
            }),
            "stage_channels"
        );
        assert_eq!(
            field(SposConfig {
                stem_channels: 64,
                ..d()
            }),
            "stage_channels"
        );
        assert_eq!(SposSpace::new(d()).unwrap(), SposSpace::default());
    }
}
