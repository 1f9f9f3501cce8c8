//! Feeds arbitrary text to every architecture-string parser of `nas-space`.
//!
//! A parser must never panic, and whatever it accepts must print back to text that parses to
//! the same architecture. See docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_space::TextFormat;

fn check<S: TextFormat>(space: &S, text: &str) {
    if let Ok(arch) = space.parse(text) {
        let printed = space.to_text(&arch);
        let again = space
            .parse(&printed)
            .unwrap_or_else(|e| panic!("cannot parse own output {printed:?}: {e}"));
        assert_eq!(again, arch, "round trip through {printed:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(&nas_space::nb201::Nb201Space::default(), text);
    check(&nas_space::darts::DartsSpace::default(), text);
    check(&nas_space::nasnet::NasNetSpace::default(), text);
    check(&nas_space::proxyless::ProxylessSpace::default(), text);
    check(&nas_space::spos::SposSpace::default(), text);
    check(&nas_space::nasrl::NasRlSpace::default(), text);
    check(&nas_space::dpc::DpcSpace::default(), text);
    check(&nas_space::fpn::FpnSpace::default(), text);
});
