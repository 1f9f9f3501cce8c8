//! Feeds arbitrary bytes to the NAS-Bench-201 table's reader (`Nb201Table::from_reader`).
//!
//! It must never panic: a malformed table is an `EstimateError::Corrupt` naming the line.
//! See docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nas_estimate::tabular::Nb201Table;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Nb201Table::from_reader(data, "fuzz.csv") {
        // Every error names the file.
        assert!(e.to_string().contains("fuzz.csv"), "{e}");
    }
});
