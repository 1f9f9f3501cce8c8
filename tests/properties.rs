//! Property tests over every built-in space: print → parse round trips, serde round trips,
//! "mutate gives a valid, different architecture", decision sequences that map to
//! architectures and back, and parsers that never panic on arbitrary or corrupted input.

use nas::space::darts::DartsSpace;
use nas::space::dpc::DpcSpace;
use nas::space::fpn::FpnSpace;
use nas::space::nasnet::NasNetSpace;
use nas::space::nasrl::NasRlSpace;
use nas::space::nb201::Nb201Space;
use nas::space::proxyless::ProxylessSpace;
use nas::space::spos::SposSpace;
use nas::space::{Mutate, Sequential, TextFormat, laws};
use proptest::prelude::*;
use rand::{SeedableRng, rngs::ChaCha8Rng};

/// Checks the laws on one architecture drawn with `seed`.
fn round_trips<S: TextFormat + Mutate>(space: &S, seed: u64) -> Result<(), TestCaseError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let arch = space.sample(&mut rng);
    let text = space.to_text(&arch);
    prop_assert!(!text.contains('\n'), "text is one line: {text:?}");
    let parsed = space.parse(&text);
    prop_assert!(parsed.is_ok(), "cannot parse {text:?}: {:?}", parsed.err());
    prop_assert_eq!(parsed.unwrap(), arch.clone());

    let json = serde_json::to_string(&arch).unwrap();
    let back: S::Arch = serde_json::from_str(&json).unwrap();
    prop_assert_eq!(&back, &arch);

    let child = space.mutate(&arch, &mut rng);
    prop_assert!(child.is_ok(), "{:?}", child.err());
    let child = child.unwrap();
    prop_assert_ne!(&child, &arch);
    prop_assert!(space.validate(&child).is_ok());
    Ok(())
}

/// `from_decisions` and `to_decisions` are inverse on random decision vectors and samples
/// (the [`laws::check_sequential`] checks from one seed).
fn decision_laws<S: Sequential>(space: &S, seed: u64) -> Result<(), TestCaseError> {
    let checked = laws::check_sequential(space, seed, 4);
    prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    Ok(())
}

/// Parsing arbitrary text returns (never panics); whatever parses prints back to text that
/// parses to the same architecture.
fn parse_is_total<S: TextFormat>(space: &S, text: &str) -> Result<(), TestCaseError> {
    if let Ok(arch) = space.parse(text) {
        let again = space.parse(&space.to_text(&arch));
        prop_assert_eq!(again.ok(), Some(arch));
    }
    Ok(())
}

/// A valid string of the space with one edit (delete, duplicate or replace a character).
fn corrupted<S: TextFormat>(space: &S, seed: u64, pos: usize, edit: u8, ch: char) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chars: Vec<char> = space.to_text(&space.sample(&mut rng)).chars().collect();
    let i = pos % chars.len().max(1);
    match edit % 3 {
        0 => {
            chars.remove(i);
        }
        1 => chars.insert(i, chars[i]),
        _ => chars[i] = ch,
    }
    chars.into_iter().collect()
}

macro_rules! space_properties {
    ($name:ident, $space:expr) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(64))]

                #[test]
                fn round_trips_and_mutates(seed in any::<u64>()) {
                    round_trips(&$space, seed)?;
                }

                #[test]
                fn decisions_round_trip(seed in any::<u64>()) {
                    decision_laws(&$space, seed)?;
                }

                #[test]
                fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
                    parse_is_total(&$space, &text)?;
                }

                #[test]
                fn corrupted_text_never_panics(
                    seed in any::<u64>(),
                    pos in any::<usize>(),
                    edit in any::<u8>(),
                    ch in prop::sample::select(vec!['|', '+', '~', '(', ')', '[', ']', '\'', ',', '<', ' ', '0', '9', 'x', 's', '_', 'é']),
                ) {
                    let space = $space;
                    parse_is_total(&space, &corrupted(&space, seed, pos, edit, ch))?;
                }
            }
        }
    };
}

space_properties!(nb201, Nb201Space::default());
space_properties!(darts, DartsSpace::default());
space_properties!(nasnet, NasNetSpace::default());
space_properties!(proxyless, ProxylessSpace::default());
space_properties!(spos, SposSpace::default());
space_properties!(nasrl, NasRlSpace::default());
space_properties!(dpc, DpcSpace::default());
space_properties!(fpn, FpnSpace::default());
