//! Feeds arbitrary JSON to the serde of the configurations and of the strategies' saved state.
//!
//! The first byte picks the mode:
//! - even: the rest is parsed as each configuration type; whatever parses is checked
//!   (`check()` must answer, not panic), printed and parsed back to the same value, and a
//!   strategy configuration that passes its check runs a few ask/tell rounds on NAS-Bench-201.
//! - odd: a real strategy runs a few rounds, its state is saved as JSON, the rest of the input
//!   overwrites bytes of that JSON (pairs of position and byte), and whatever still parses
//!   must run further ask/tell rounds without panicking (errors are fine).
//!
//! See docs/fuzzing.md.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use nas_estimate::{Budget, Metrics};
use nas_space::SearchSpace;
use nas_space::nb201::Nb201Space;
use nas_space::screen::ScreenConfig;
use nas_strategy::search::TrialRecord;
use nas_strategy::{
    BayesianOptimizationConfig, Bohb, BohbConfig, Hyperband, HyperbandConfig, MedianStoppingConfig,
    Outcome, RandomSearch, RegularizedEvolution, RegularizedEvolutionConfig, RetryConfig,
    SposEvolutionConfig, Strategy,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parses `text` as `T`; what parses must print and parse back to the same value.
fn round_trip<T>(text: &str) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value: T = serde_json::from_str(text).ok()?;
    let printed = serde_json::to_string(&value).expect("a parsed value serializes");
    let again: T = serde_json::from_str(&printed)
        .unwrap_or_else(|e| panic!("cannot parse own output {printed}: {e}"));
    // NaN never equals itself: compare the printed forms then.
    if again != value {
        let reprinted = serde_json::to_string(&again).expect("serializes");
        assert_eq!(reprinted, printed, "round trip of {value:?}");
    }
    Some(value)
}

/// A few ask/tell rounds; errors end them, panics fail the target.
fn drive<S: SearchSpace, St: Strategy<S>>(strategy: &mut St, space: &S, rounds: usize) {
    for i in 0..rounds {
        let Ok(trial) = strategy.ask(space) else {
            return;
        };
        let outcome = match i % 4 {
            0 => Outcome::Failed("fuzz".into()),
            1 => Outcome::Complete(Metrics::new(f64::NAN)),
            _ => Outcome::Complete(Metrics::new(i as f64)),
        };
        if strategy.tell(trial.id, outcome).is_err() {
            return;
        }
    }
}

fn configs(text: &str) {
    let space = Nb201Space::default();
    if let Some(c) = round_trip::<RegularizedEvolutionConfig>(text)
        && c.check().is_ok()
        && c.population_size <= 64
        && let Ok(mut s) = RegularizedEvolution::<Nb201Space>::new(c, 1)
    {
        drive(&mut s, &space, 8);
    }
    if let Some(c) = round_trip::<HyperbandConfig>(text)
        && c.check().is_ok()
        && let Ok(mut s) = Hyperband::<Nb201Space>::new(c, 1)
    {
        drive(&mut s, &space, 8);
    }
    if let Some(c) = round_trip::<BohbConfig>(text)
        && c.check().is_ok()
        && let Ok(mut s) = Bohb::<Nb201Space>::new(c, 1)
    {
        drive(&mut s, &space, 8);
    }
    if let Some(c) = round_trip::<BayesianOptimizationConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<SposEvolutionConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<RetryConfig>(text) {
        let _ = c.check();
    }
    let _ = round_trip::<MedianStoppingConfig>(text);
    if let Some(c) = round_trip::<ScreenConfig>(text) {
        let _ = c.check();
    }
    let _ = round_trip::<Budget>(text);
    let _ = round_trip::<Metrics>(text);
    let _ = round_trip::<TrialRecord<nas_space::nb201::Nb201Arch>>(text);
    #[cfg(feature = "burn")]
    burn_configs(text);
}

#[cfg(feature = "burn")]
fn burn_configs(text: &str) {
    use nas_supernet::chain_net::ChainNetConfig;
    use nas_supernet::darts_net::DartsNetConfig;
    use nas_supernet::darts_search::SearchConfig;
    use nas_supernet::nb201_net::Nb201NetConfig;
    use nas_supernet::ops::OpConfig;
    use nas_supernet::train::TrainConfig;
    if let Some(c) = round_trip::<SearchConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<Nb201NetConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<DartsNetConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<ChainNetConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<OpConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<TrainConfig>(text) {
        let _ = c.check();
    }
    if let Some(c) = round_trip::<nas_strategy::EnasConfig>(text) {
        let _ = c.check();
    }
}

/// Overwrites bytes of `json` at the positions the pairs of `edits` give.
fn corrupt(json: &str, edits: &[u8]) -> Vec<u8> {
    let mut bytes = json.as_bytes().to_vec();
    for pair in edits.chunks_exact(3) {
        if bytes.is_empty() {
            break;
        }
        let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
        bytes[at] = pair[2];
    }
    bytes
}

/// Runs `strategy` for `rounds`, saves its state, overwrites bytes of it with `edits`, and
/// drives whatever still parses for a few more rounds.
fn corrupted_state<St>(mut strategy: St, rounds: usize, edits: &[u8])
where
    St: Strategy<Nb201Space> + Serialize + DeserializeOwned,
{
    let space = Nb201Space::default();
    drive(&mut strategy, &space, rounds);
    let json = serde_json::to_string(&strategy).expect("state serializes");
    if let Ok(mut back) = serde_json::from_slice::<St>(&corrupt(&json, edits)) {
        drive(&mut back, &space, 6);
    }
}

fn states(rounds: usize, which: u8, edits: &[u8]) {
    match which % 3 {
        0 => corrupted_state(
            RegularizedEvolution::<Nb201Space>::new(
                RegularizedEvolutionConfig {
                    population_size: 4,
                    sample_size: 2,
                },
                7,
            )
            .expect("valid"),
            rounds,
            edits,
        ),
        1 => corrupted_state(
            Hyperband::<Nb201Space>::new(HyperbandConfig::default(), 7).expect("valid"),
            rounds,
            edits,
        ),
        _ => corrupted_state(RandomSearch::<Nb201Space>::new(7), rounds, edits),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            configs(text);
        }
    } else if let [rounds, which, edits @ ..] = rest {
        states(usize::from(rounds % 8), *which, edits);
    }
});
