//! Every space serializes (as its configuration) and reloads; an invalid configuration in a
//! saved file is a typed error when loaded, never a space that panics later.

use nas::space::darts::DartsSpace;
use nas::space::dpc::DpcSpace;
use nas::space::fpn::FpnSpace;
use nas::space::nasnet::NasNetSpace;
use nas::space::nasrl::NasRlSpace;
use nas::space::nb201::Nb201Space;
use nas::space::proxyless::ProxylessSpace;
use nas::space::spos::SposSpace;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// Round-trips `space` through JSON, then sets `field` to `bad` and expects a load error that
/// names the field.
fn check<S>(space: S, field: &str, bad: Value)
where
    S: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(&space).unwrap();
    let back: S = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, space);

    let mut broken = json;
    broken[field] = bad;
    let err = serde_json::from_value::<S>(broken).unwrap_err().to_string();
    assert!(err.contains(field), "error should name `{field}`: {err}");
}

#[test]
fn spaces_reload_and_reject_invalid_configs() {
    check(Nb201Space::default(), "ops", Value::Array(vec![]));
    check(DartsSpace::default(), "steps", 0.into());
    check(NasNetSpace::default(), "blocks", 0.into());
    check(ProxylessSpace::default(), "stages", Value::Array(vec![]));
    check(SposSpace::default(), "stage_repeats", Value::Array(vec![]));
    check(NasRlSpace::default(), "layers", 0.into());
    check(DpcSpace::default(), "rates", Value::Array(vec![]));
    check(FpnSpace::default(), "cells", 2.into());
}
