//! PNAS: progressive neural architecture search (Liu et al., ECCV 2018).
//!
//! Cells are grown block by block. Every cell of one block is evaluated; then, level by level,
//! the `beam` best evaluated cells of the level are expanded by one block in every possible
//! way, a surrogate predictor trained on everything evaluated so far ranks the expansions, and
//! the `beam` most promising are evaluated. Past the last level the search goes on in batches
//! of `beam`: the remaining expansions of the last level are re-ranked with the refitted
//! predictor; when they run out the next-best evaluated cells of the level before are
//! expanded, and when those run out too, random complete cells (ten per proposal of the
//! batch) are ranked instead. The search reports the space exhausted only when no unseen
//! cell can be drawn.
//!
//! The surrogate is PNAS' MLP-ensemble variant, on the path encoding of [`crate::predictor`]
//! (PNAS embeds its block tokens instead; the path encoding lets one predictor read cells of
//! every size). A space takes part by implementing [`Progressive`]: what its one-block cells
//! are, and how a cell grows. [`Nb201Space`] implements it with nodes as blocks, and
//! [`NasNetCells`] is PNAS' own setting: the NASNet space grown one block at a time, with one
//! cell structure for the normal and the reduction cell.

use std::collections::{HashMap, HashSet, VecDeque};

use nas_space::nasnet::{NasNetArch, NasNetBlock, NasNetConfig, NasNetSpace};
use nas_space::nb201::{Nb201Arch, Nb201Op, Nb201Space};
use nas_space::{ArchGraph, CanonicalForm, Canonicalize, SearchSpace, SpaceError, ToGraph};
use rand::{Rng, SeedableRng, rngs::ChaCha8Rng, seq::SliceRandom};
use serde::{Deserialize, Serialize};

use crate::predictor::{Ensemble, MlpConfig, paths};
use crate::{Outcome, Pending, Strategy, StrategyError, Trial, TrialId};

/// A space whose architectures grow block by block: the search space of [`Pnas`].
///
/// Level 1 holds the cells of one block; the cells of level [`levels`](Progressive::levels)
/// are the space's complete architectures. Cells of lower levels must be architectures of the
/// space too (so that they can be built and evaluated), smaller ones.
pub trait Progressive: SearchSpace {
    /// The number of levels (blocks of a complete cell).
    fn levels(&self) -> usize;

    /// Every cell of level 1.
    fn first_level(&self) -> Result<Vec<Self::Arch>, SpaceError>;

    /// Every cell of level `level + 1` that extends `arch`, a cell of level `level`.
    fn expand(&self, arch: &Self::Arch, level: usize) -> Result<Vec<Self::Arch>, SpaceError>;
}

impl Progressive for Nb201Space {
    /// Nodes 1, 2 and 3 are the blocks.
    fn levels(&self) -> usize {
        3
    }

    /// A cell of level 1 computes node 1 and outputs it: `|op~0|+|none~0|none~1|+|none~0|
    /// skip_connect~1|none~2|`, one per operation of the space.
    fn first_level(&self) -> Result<Vec<Nb201Arch>, SpaceError> {
        self.partial_ops()?;
        Ok(self
            .ops()
            .iter()
            .map(|&op| {
                let mut edges = [Nb201Op::None; 6];
                edges[0] = op;
                edges[4] = Nb201Op::SkipConnect;
                Nb201Arch::new(edges)
            })
            .collect())
    }

    /// Level 1 → 2: every choice of node 2's two edges; the output sums node 2 and, when node
    /// 2 does not read it, node 1 (PNAS concatenates the blocks no other block uses). Level
    /// 2 → 3: every choice of the output node's three edges.
    fn expand(&self, arch: &Nb201Arch, level: usize) -> Result<Vec<Nb201Arch>, SpaceError> {
        self.validate(arch)?;
        self.partial_ops()?;
        let ops = self.ops();
        let mut out = Vec::new();
        match level {
            1 => {
                for &a in ops {
                    for &b in ops {
                        let mut e = arch.edges;
                        e[1] = a;
                        e[2] = b;
                        e[3] = Nb201Op::None;
                        e[4] = if b == Nb201Op::None {
                            Nb201Op::SkipConnect
                        } else {
                            Nb201Op::None
                        };
                        e[5] = Nb201Op::SkipConnect;
                        out.push(Nb201Arch::new(e));
                    }
                }
            }
            2 => {
                for &a in ops {
                    for &b in ops {
                        for &c in ops {
                            let mut e = arch.edges;
                            e[3] = a;
                            e[4] = b;
                            e[5] = c;
                            out.push(Nb201Arch::new(e));
                        }
                    }
                }
            }
            _ => {
                return Err(SpaceError::invalid(
                    self.name(),
                    format!("NAS-Bench-201 cells grow from level 1 or 2, not from level {level}"),
                ));
            }
        }
        Ok(out)
    }
}

/// What PNAS needs of a NAS-Bench-201 space: `none` and `skip_connect` wire its smaller cells.
trait PartialOps {
    fn partial_ops(&self) -> Result<(), SpaceError>;
}

impl PartialOps for Nb201Space {
    fn partial_ops(&self) -> Result<(), SpaceError> {
        for op in [Nb201Op::None, Nb201Op::SkipConnect] {
            if !self.ops().contains(&op) {
                return Err(SpaceError::invalid(
                    self.name(),
                    format!(
                        "PNAS's cells of one and two blocks need `{op}`, which this space \
                         excludes; search the full space, or use another strategy"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The NASNet cell space grown block by block, as PNAS searches it: an architecture of `b`
/// blocks (`1 ≤ b ≤ config.blocks`) is a NASNet architecture of `b` blocks, and PNAS' cells use
/// one structure for the normal and the reduction cell (the reduction cell applies it with
/// stride 2), so [`first_level`](Progressive::first_level), [`expand`](Progressive::expand)
/// and [`sample`](SearchSpace::sample) give `normal == reduce`. Validation, canonical forms
/// and graphs are those of [`NasNetSpace`] with `b` blocks.
///
/// Level 1 holds every block (2 × 2 inputs, `ops²`, the combiners; PNAS' 8 operations and
/// `add` give 256, 136 up to symmetry); a cell of `b` blocks grows into `(b + 2)² · ops² ·
/// combiners` cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NasNetCells {
    /// `spaces[b - 1]`: the NASNet space of `b` blocks.
    spaces: Vec<NasNetSpace>,
}

impl NasNetCells {
    /// The cells of `config.ops` and `config.combiners`, grown up to `config.blocks` blocks.
    /// Fails as [`NasNetSpace::new`] does.
    pub fn new(config: NasNetConfig) -> Result<Self, SpaceError> {
        let spaces = (1..=config.blocks.max(1))
            .map(|blocks| {
                NasNetSpace::new(NasNetConfig {
                    blocks,
                    ..config.clone()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Checks `blocks` itself (0, or beyond the maximum).
        NasNetSpace::new(config)?;
        Ok(Self { spaces })
    }

    /// The space of complete cells.
    pub fn full(&self) -> &NasNetSpace {
        self.spaces.last().expect("at least one block")
    }

    /// The NASNet space of `arch`'s size, or an error naming the sizes allowed.
    fn space_of(&self, arch: &NasNetArch) -> Result<&NasNetSpace, SpaceError> {
        let b = arch.blocks();
        if b == 0 || b > self.spaces.len() || arch.reduce.len() != b {
            return Err(SpaceError::invalid(
                self.name(),
                format!(
                    "a cell has {} normal and {} reduction blocks; PNAS grows cells of 1 to {} \
                     blocks, the same number in both",
                    b,
                    arch.reduce.len(),
                    self.spaces.len()
                ),
            ));
        }
        Ok(&self.spaces[b - 1])
    }

    /// Every block that may follow `b` blocks.
    fn blocks_after(&self, b: usize) -> Vec<NasNetBlock> {
        let config = self.full().config();
        let mut out = Vec::new();
        for i0 in 0..b + 2 {
            for i1 in 0..b + 2 {
                for &o0 in &config.ops {
                    for &o1 in &config.ops {
                        for &c in &config.combiners {
                            out.push(NasNetBlock::new((o0, i0), (o1, i1), c));
                        }
                    }
                }
            }
        }
        out
    }
}

impl SearchSpace for NasNetCells {
    type Arch = NasNetArch;

    fn name(&self) -> &str {
        "nasnet-pnas"
    }

    /// A complete cell, the same for the normal and the reduction cell.
    fn sample(&self, rng: &mut dyn Rng) -> NasNetArch {
        let mut arch = self.full().sample(rng);
        arch.reduce = arch.normal.clone();
        arch
    }

    fn validate(&self, arch: &NasNetArch) -> Result<(), SpaceError> {
        self.space_of(arch)?.validate(arch)
    }
}

impl Canonicalize for NasNetCells {
    fn canonical(&self, arch: &NasNetArch) -> Result<CanonicalForm, SpaceError> {
        self.space_of(arch)?.canonical(arch)
    }
}

impl ToGraph for NasNetCells {
    fn graph(&self, arch: &NasNetArch) -> Result<ArchGraph, SpaceError> {
        self.space_of(arch)?.graph(arch)
    }
}

impl Progressive for NasNetCells {
    fn levels(&self) -> usize {
        self.spaces.len()
    }

    fn first_level(&self) -> Result<Vec<NasNetArch>, SpaceError> {
        Ok(self
            .blocks_after(0)
            .into_iter()
            .map(|b| NasNetArch {
                normal: vec![b],
                reduce: vec![b],
            })
            .collect())
    }

    /// `arch` with one more block, in both cells.
    fn expand(&self, arch: &NasNetArch, level: usize) -> Result<Vec<NasNetArch>, SpaceError> {
        self.validate(arch)?;
        let b = arch.blocks();
        if b != level || b >= self.spaces.len() {
            return Err(SpaceError::invalid(
                self.name(),
                format!(
                    "cannot grow a cell of {b} blocks at level {level} (levels 1 to {})",
                    self.spaces.len().saturating_sub(1)
                ),
            ));
        }
        Ok(self
            .blocks_after(b)
            .into_iter()
            .map(|block| {
                let mut next = arch.clone();
                next.normal.push(block);
                next.reduce.push(block);
                next
            })
            .collect())
    }
}

/// Configuration of [`Pnas`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PnasConfig {
    /// `K`: the cells evaluated per level, and the evaluated cells of a level that are
    /// expanded (PNAS: 256 on CIFAR-10 with a budget of about 1,200 models).
    pub beam: usize,
    /// The surrogate: an ensemble of MLPs on the path encoding.
    pub predictor: MlpConfig,
}

impl Default for PnasConfig {
    /// A beam of 16 and BANANAS' MLP ensemble ([`MlpConfig::default`]).
    fn default() -> Self {
        Self {
            beam: 16,
            predictor: MlpConfig::default(),
        }
    }
}

impl PnasConfig {
    /// Checks every value.
    pub fn check(&self) -> Result<(), StrategyError> {
        self.predictor.check("PNAS")?;
        if self.beam == 0 {
            return Err(StrategyError::InvalidConfig {
                strategy: "PNAS",
                field: "beam",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// Past the expansions, complete cells are drawn at random: at most this many draws per batch,
/// for a pool of up to `RANDOM_POOL × beam` unseen cells.
const RANDOM_DRAWS: usize = 10_000;
const RANDOM_POOL: usize = 10;

/// An evaluated cell: architecture, objective, level.
type Observation<A> = (A, f64, usize);

/// PNAS (see the [module](self) documentation).
///
/// - Each level's cells are proposed in the predictor's order; a cell is never proposed twice
///   up to its canonical form (cells of different levels can coincide).
/// - With parallel workers the next level may be needed before the current one is told in
///   full: it is then grown from the cells told so far (from the level's proposals in order
///   when none is), and ranked by the predictor once two cells are told (in a seeded random
///   order before).
/// - Deterministic for a seed; the whole state, including the ranked queue, serializes.
///
/// # Example
///
/// ```
/// use nas_estimate::Metrics;
/// use nas_space::nb201::{Nb201Op, Nb201Space};
/// use nas_strategy::{Outcome, Pnas, PnasConfig, Strategy};
/// use nas_strategy::predictor::MlpConfig;
///
/// let space = Nb201Space::default();
/// let config = PnasConfig { beam: 8, predictor: MlpConfig { epochs: 50, ..MlpConfig::default() } };
/// let mut pnas = Pnas::<Nb201Space>::new(config, 0)?;
/// let score = |a: &nas_space::nb201::Nb201Arch| {
///     a.edges.iter().filter(|&&o| o == Nb201Op::NorConv3x3).count() as f64
/// };
/// let mut best = 0.0f64;
/// for _ in 0..40 {
///     let trial = pnas.ask(&space)?;
///     best = best.max(score(&trial.arch));
///     pnas.tell(trial.id, Outcome::Complete(Metrics::new(score(&trial.arch))))?;
/// }
/// assert!(best >= 5.0);
/// # Ok::<(), nas_strategy::StrategyError>(())
/// ```
#[derive(Debug, Serialize, Deserialize)]
pub struct Pnas<S: SearchSpace> {
    config: PnasConfig,
    #[serde(with = "crate::rng_serde")]
    rng: ChaCha8Rng,
    pending: Pending<S::Arch>,
    /// The level of each pending trial.
    pending_level: HashMap<TrialId, usize>,
    /// Evaluated cells, in the order told.
    observed: Vec<Observation<S::Arch>>,
    /// Canonical forms of every cell proposed.
    seen: HashSet<CanonicalForm>,
    /// The level being proposed (0 before the first proposal).
    level: usize,
    /// This level's proposals, in order, and those still to make.
    issued: Vec<S::Arch>,
    queue: VecDeque<S::Arch>,
    /// Past the last level: the expansions not proposed yet, and the cells of the level before
    /// that were expanded.
    reserve: Vec<S::Arch>,
    expanded: HashSet<CanonicalForm>,
}

impl<S: SearchSpace> Pnas<S> {
    /// Checks `config` and seeds the strategy.
    pub fn new(config: PnasConfig, seed: u64) -> Result<Self, StrategyError> {
        config.check()?;
        Ok(Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            pending: Pending::default(),
            pending_level: HashMap::new(),
            observed: Vec::new(),
            seen: HashSet::new(),
            level: 0,
            issued: Vec::new(),
            queue: VecDeque::new(),
            reserve: Vec::new(),
            expanded: HashSet::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PnasConfig {
        &self.config
    }

    /// The level being proposed (1 = one block; 0 before the first proposal).
    pub fn level(&self) -> usize {
        self.level
    }

    /// The evaluated cells: (architecture, objective, level), in the order told.
    pub fn observations(&self) -> &[Observation<S::Arch>] {
        &self.observed
    }
}

impl<S> Pnas<S>
where
    S: Progressive + Canonicalize + ToGraph,
{
    /// The cells of `level` to expand: the `beam` best told, skipping those already expanded;
    /// the level's proposals in order when none is told.
    fn parents(&self, space: &S, level: usize) -> Result<Vec<S::Arch>, StrategyError> {
        let mut told: Vec<&Observation<S::Arch>> =
            self.observed.iter().filter(|o| o.2 == level).collect();
        told.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut candidates: Vec<S::Arch> = told.into_iter().map(|o| o.0.clone()).collect();
        if candidates.is_empty() && level == self.level {
            candidates = self.issued.clone();
        }
        let mut out = Vec::new();
        for c in candidates {
            if out.len() == self.config.beam {
                break;
            }
            if !self.expanded.contains(&space.canonical(&c)?) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// `cells` ranked by the predictor fitted on every observation, best first (a seeded
    /// shuffle with fewer than two observations).
    fn rank(&mut self, space: &S, mut cells: Vec<S::Arch>) -> Result<Vec<S::Arch>, StrategyError> {
        if self.observed.len() < 2 {
            cells.shuffle(&mut self.rng);
            return Ok(cells);
        }
        let x = self
            .observed
            .iter()
            .map(|o| paths(space, &o.0))
            .collect::<Result<Vec<_>, _>>()?;
        let y: Vec<f64> = self.observed.iter().map(|o| o.1).collect();
        let seed = rand::RngExt::random(&mut self.rng);
        let model = Ensemble::fit(&self.config.predictor, &x, &y, seed)?;
        let mut scored = cells
            .into_iter()
            .map(|c| Ok((model.mean_std(&paths(space, &c)?).0, c)))
            .collect::<Result<Vec<_>, StrategyError>>()?;
        // Stable: ties keep the expansion order.
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(scored.into_iter().map(|(_, c)| c).collect())
    }

    /// Expands `parents` (cells of `level`), dropping cells proposed before and duplicates.
    fn grow(
        &mut self,
        space: &S,
        parents: &[S::Arch],
        level: usize,
    ) -> Result<Vec<S::Arch>, StrategyError> {
        let mut out = Vec::new();
        let mut forms = HashSet::new();
        for p in parents {
            self.expanded.insert(space.canonical(p)?);
            for c in space.expand(p, level)? {
                let f = space.canonical(&c)?;
                if !self.seen.contains(&f) && forms.insert(f) {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    /// Refills the queue: the next level, or the next batch of the last one.
    fn advance(&mut self, space: &S) -> Result<(), StrategyError> {
        let last = space.levels();
        if self.level == 0 {
            let first = space.first_level()?;
            self.level = 1;
            self.issued.clear();
            self.queue = first.into();
            return Ok(());
        }
        if self.level < last {
            let parents = self.parents(space, self.level)?;
            let children = self.grow(space, &parents, self.level)?;
            let ranked = self.rank(space, children)?;
            self.level += 1;
            self.issued.clear();
            let k = self.config.beam.min(ranked.len());
            let mut ranked = ranked;
            self.reserve = ranked.split_off(k);
            self.queue = ranked.into();
            return Ok(());
        }
        // Past the last level: re-rank what is left, growing more when it runs out.
        self.reserve.retain(|c| {
            space
                .canonical(c)
                .map(|f| !self.seen.contains(&f))
                .unwrap_or(false)
        });
        // Grow the next-best told cells of the level before, as long as some are left.
        while self.reserve.is_empty() && last > 1 {
            let parents = self.parents(space, last - 1)?;
            if parents.is_empty() {
                break;
            }
            self.reserve = self.grow(space, &parents, last - 1)?;
        }
        // Then complete cells drawn at random, ranked by the predictor like the expansions.
        if self.reserve.is_empty() {
            let mut forms = HashSet::new();
            for _ in 0..RANDOM_DRAWS {
                if self.reserve.len() == RANDOM_POOL * self.config.beam {
                    break;
                }
                let c = space.sample(&mut self.rng);
                let f = space.canonical(&c)?;
                if !self.seen.contains(&f) && forms.insert(f) {
                    self.reserve.push(c);
                }
            }
        }
        if self.reserve.is_empty() {
            return Err(StrategyError::Exhausted(self.seen.len()));
        }
        let reserve = std::mem::take(&mut self.reserve);
        let mut ranked = self.rank(space, reserve)?;
        let k = self.config.beam.min(ranked.len());
        self.reserve = ranked.split_off(k);
        self.queue = ranked.into();
        Ok(())
    }
}

impl<S> Strategy<S> for Pnas<S>
where
    S: Progressive + Canonicalize + ToGraph,
{
    fn ask(&mut self, space: &S) -> Result<Trial<S::Arch>, StrategyError> {
        // Each advance either fills the queue with unseen cells or fails (exhausted), so this
        // ends; the bound guards against a space whose expansions are all seen.
        for _ in 0..1_000 {
            while let Some(c) = self.queue.pop_front() {
                if self.seen.insert(space.canonical(&c)?) {
                    self.issued.push(c.clone());
                    let trial = self.pending.open(c);
                    self.pending_level.insert(trial.id, self.level);
                    return Ok(trial);
                }
            }
            self.advance(space)?;
        }
        Err(StrategyError::Exhausted(self.seen.len()))
    }

    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), StrategyError> {
        let arch = self.pending.close(id)?;
        let level = self.pending_level.remove(&id).unwrap_or(self.level);
        if let Outcome::Complete(m) | Outcome::Pruned(m) = &outcome
            && m.objective.is_finite()
        {
            self.observed.push((arch, m.objective, level));
        }
        Ok(())
    }
}
