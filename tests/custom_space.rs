//! A search space defined outside the library, used through the public API only: sampled,
//! mutated, serialized, checked with `nas_space::laws`, and searched by the library's strategies.

use std::fmt;
use std::str::FromStr;

use nas::estimate::{Budget, EstimateError, Metrics};
use nas::space::text::{Cursor, lookup};
use nas::space::{
    CanonicalForm, Canonicalize, Mutate, Neighborhood, ParseError, SearchSpace, SpaceError,
    TextFormat, laws,
};
use nas::strategy::search;
use nas::strategy::{RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig};
use rand::{Rng, RngExt, SeedableRng, rngs::ChaCha8Rng};
use serde::{Deserialize, Serialize};

/// Activation functions a layer may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Act {
    Relu,
    Gelu,
    Tanh,
}

const ACTS: [(&str, Act); 3] = [
    ("relu", Act::Relu),
    ("gelu", Act::Gelu),
    ("tanh", Act::Tanh),
];

/// An MLP: a width and an activation per layer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Mlp {
    layers: Vec<(u32, Act)>,
}

impl fmt::Display for Mlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .layers
            .iter()
            .map(|(w, a)| {
                let name = ACTS.iter().find(|(_, x)| x == a).map_or("?", |(n, _)| n);
                format!("{w}:{name}")
            })
            .collect();
        f.write_str(&parts.join("-"))
    }
}

impl FromStr for Mlp {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut c = Cursor::new(s, "MLP string");
        c.non_empty()?;
        let mut layers = Vec::new();
        loop {
            let (w, _) = c.number()?;
            c.expect_char(':')?;
            let (name, pos) = c.ident()?;
            layers.push((w as u32, lookup("MLP string", &ACTS, name, pos)?));
            if !c.eat_char('-') {
                break;
            }
        }
        c.finish()?;
        Ok(Mlp { layers })
    }
}

/// MLPs of 1 to `max_depth` layers with widths from a list.
struct MlpSpace {
    max_depth: usize,
    widths: Vec<u32>,
}

impl SearchSpace for MlpSpace {
    type Arch = Mlp;

    fn name(&self) -> &str {
        "mlp"
    }

    fn sample(&self, rng: &mut dyn Rng) -> Mlp {
        let depth = rng.random_range(1..=self.max_depth);
        Mlp {
            layers: (0..depth)
                .map(|_| {
                    (
                        self.widths[rng.random_range(0..self.widths.len())],
                        ACTS[rng.random_range(0..ACTS.len())].1,
                    )
                })
                .collect(),
        }
    }

    fn validate(&self, arch: &Mlp) -> Result<(), SpaceError> {
        if arch.layers.is_empty() || arch.layers.len() > self.max_depth {
            return Err(SpaceError::invalid(
                "mlp",
                format!("depth {} not in 1..={}", arch.layers.len(), self.max_depth),
            ));
        }
        match arch.layers.iter().find(|(w, _)| !self.widths.contains(w)) {
            Some((w, _)) => Err(SpaceError::invalid("mlp", format!("width {w} not allowed"))),
            None => Ok(()),
        }
    }
}

impl Neighborhood for MlpSpace {
    fn neighbors(&self, arch: &Mlp) -> Result<Vec<Mlp>, SpaceError> {
        self.validate(arch)?;
        let mut out = Vec::new();
        for i in 0..arch.layers.len() {
            for &w in &self.widths {
                if w != arch.layers[i].0 {
                    let mut n = arch.clone();
                    n.layers[i].0 = w;
                    out.push(n);
                }
            }
            for (_, a) in ACTS {
                if a != arch.layers[i].1 {
                    let mut n = arch.clone();
                    n.layers[i].1 = a;
                    out.push(n);
                }
            }
        }
        if arch.layers.len() < self.max_depth {
            let mut n = arch.clone();
            n.layers.push((self.widths[0], Act::Relu));
            out.push(n);
        }
        if arch.layers.len() > 1 {
            let mut n = arch.clone();
            n.layers.pop();
            out.push(n);
        }
        Ok(out)
    }
}

impl Mutate for MlpSpace {
    fn mutate(&self, arch: &Mlp, rng: &mut dyn Rng) -> Result<Mlp, SpaceError> {
        let ns = self.neighbors(arch)?;
        Ok(ns[rng.random_range(0..ns.len())].clone())
    }
}

impl Canonicalize for MlpSpace {
    fn canonical(&self, arch: &Mlp) -> Result<CanonicalForm, SpaceError> {
        self.validate(arch)?;
        Ok(CanonicalForm(arch.to_string()))
    }
}

impl TextFormat for MlpSpace {
    fn to_text(&self, arch: &Mlp) -> String {
        arch.to_string()
    }
    fn parse(&self, text: &str) -> Result<Mlp, SpaceError> {
        let a: Mlp = text.parse()?;
        self.validate(&a)?;
        Ok(a)
    }
}

fn space() -> MlpSpace {
    MlpSpace {
        max_depth: 4,
        widths: vec![32, 64, 128, 256],
    }
}

#[test]
fn custom_space_keeps_the_laws() {
    let s = space();
    laws::check_sample(&s, 1, 100).unwrap();
    laws::check_serde(&s, 2, 100).unwrap();
    laws::check_mutate(&s, 3, 100).unwrap();
    laws::check_neighbors(&s, 4, 30).unwrap();
    laws::check_text(&s, 5, 100).unwrap();
    laws::check_canonical(&s, 6, 30).unwrap();
}

#[test]
fn custom_space_sample_mutate_serialize() {
    let s = space();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let a = s.sample(&mut rng);
    let b = s.mutate(&a, &mut rng).unwrap();
    assert_ne!(a, b);
    let json = serde_json::to_string(&b).unwrap();
    assert_eq!(serde_json::from_str::<Mlp>(&json).unwrap(), b);
    assert_eq!(
        s.parse("64:gelu-32:relu").unwrap().layers,
        vec![(64, Act::Gelu), (32, Act::Relu)]
    );
    let err = s.parse("64:swish").unwrap_err();
    assert!(
        err.to_string().contains("swish") && err.to_string().contains("byte 3"),
        "{err}"
    );
    assert!(matches!(
        s.parse("48:relu"),
        Err(SpaceError::InvalidArch { .. })
    ));
}

#[test]
fn library_strategies_search_a_custom_space() {
    let s = space();
    // Objective: total width, penalizing tanh; the optimum is 4 layers of 256 without tanh.
    let mut est = |a: &Mlp, _: &Budget| -> Result<Metrics, EstimateError> {
        let v: f64 = a
            .layers
            .iter()
            .map(|&(w, act)| f64::from(w) - if act == Act::Tanh { 300.0 } else { 0.0 })
            .sum();
        Ok(Metrics::new(v))
    };
    let mut rea = RegularizedEvolution::<MlpSpace>::new(
        RegularizedEvolutionConfig {
            population_size: 20,
            sample_size: 5,
        },
        11,
    )
    .unwrap();
    let r = search::run(&s, &mut rea, &mut est, 400, |_| {}).unwrap();
    let best = r.best().unwrap();
    assert_eq!(
        best.outcome.complete().unwrap().objective,
        1024.0,
        "{}",
        best.arch
    );

    let mut rs = RandomSearch::<MlpSpace>::new(11);
    let r = search::run(&s, &mut rs, &mut est, 50, |_| {}).unwrap();
    let distinct: std::collections::HashSet<_> = r.trials.iter().map(|t| t.arch.clone()).collect();
    assert_eq!(distinct.len(), 50);
}
