//! Feeds arbitrary bytes to the search journal's reader (`nas_strategy::search::parse_journal`).
//!
//! It must never panic; every record it returns must serialize back to a line it reads again
//! as the same record. See docs/fuzzing.md.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nas_space::nb201::Nb201Arch;
use nas_strategy::search::parse_journal;

fn check<A>(data: &[u8])
where
    A: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(records) = parse_journal::<A>(data, Path::new("fuzz.jsonl")) else {
        return;
    };
    for r in &records {
        let line = serde_json::to_string(r).expect("a record serializes");
        let again = parse_journal::<A>(line.as_bytes(), Path::new("again.jsonl"))
            .unwrap_or_else(|e| panic!("cannot read back {line}: {e}"));
        assert_eq!(again.len(), 1, "{line}");
        // NaN metrics do not compare equal to themselves; compare their text instead.
        let again_line = serde_json::to_string(&again[0]).expect("a record serializes");
        assert_eq!(again_line, line);
    }
}

fuzz_target!(|data: &[u8]| {
    // Architectures of a real space (parsed from their text) and of a plain type.
    check::<Nb201Arch>(data);
    check::<Vec<u32>>(data);
});
