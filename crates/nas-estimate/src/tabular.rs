//! Tabular benchmarks: look an architecture's accuracy up instead of training it.
//!
//! [`Nb201Table`] reads the NAS-Bench-201 / NATS-Bench topology table in CSV form (the file
//! `nats_bench_tss_200ep.csv`: 200-epoch test accuracy on CIFAR-10, CIFAR-100 and
//! ImageNet16-120 for all 15,625 cells). The table is not distributed with this library; users
//! give the path of their own copy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nas_space::nb201::Nb201Arch;
use serde::{Deserialize, Serialize};

use crate::{Budget, EstimateError, Estimator, Metrics};

const WHAT: &str = "NAS-Bench-201 table";
const HINT: &str = "give the path of `nats_bench_tss_200ep.csv` (columns CIFAR10TestAccuracy200Epochs, \
CIFAR100TestAccuracy200Epochs, ImageNetTestAccuracy200Epochs, ArchitectureString, UniqueString)";

/// The number of rows (cells) of the NAS-Bench-201 table.
pub const NB201_ROWS: usize = 15_625;

/// The datasets of NAS-Bench-201.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nb201Dataset {
    /// CIFAR-10.
    Cifar10,
    /// CIFAR-100.
    Cifar100,
    /// ImageNet16-120 (ImageNet downsampled to 16x16, 120 classes).
    ImageNet16_120,
}

impl Nb201Dataset {
    /// All three datasets.
    pub const ALL: [Nb201Dataset; 3] = [
        Nb201Dataset::Cifar10,
        Nb201Dataset::Cifar100,
        Nb201Dataset::ImageNet16_120,
    ];

    /// The name used in metrics: `cifar10`, `cifar100`, `imagenet16-120`.
    pub fn name(self) -> &'static str {
        match self {
            Nb201Dataset::Cifar10 => "cifar10",
            Nb201Dataset::Cifar100 => "cifar100",
            Nb201Dataset::ImageNet16_120 => "imagenet16-120",
        }
    }
}

impl std::str::FromStr for Nb201Dataset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Nb201Dataset::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown dataset `{s}`: expected cifar10, cifar100 or imagenet16-120")
            })
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nb201Row {
    /// The cell.
    pub arch: Nb201Arch,
    /// 200-epoch test accuracy (%) on CIFAR-10, CIFAR-100 and ImageNet16-120.
    pub test_accuracy: [f64; 3],
    /// The benchmark's functional-equivalence key.
    pub unique_string: String,
}

impl Nb201Row {
    /// The test accuracy on `dataset`.
    pub fn accuracy(&self, dataset: Nb201Dataset) -> f64 {
        self.test_accuracy[dataset as usize]
    }
}

/// The NAS-Bench-201 table, in the benchmark's row order (row `i` is architecture index `i`
/// of NATS-Bench / NAS-Bench-201).
#[derive(Debug, Clone)]
pub struct Nb201Table {
    rows: Vec<Nb201Row>,
    index: HashMap<Nb201Arch, usize>,
}

#[derive(Deserialize)]
struct RawRow {
    #[serde(rename = "CIFAR10TestAccuracy200Epochs")]
    cifar10: f64,
    #[serde(rename = "CIFAR100TestAccuracy200Epochs")]
    cifar100: f64,
    #[serde(rename = "ImageNetTestAccuracy200Epochs")]
    imagenet: f64,
    #[serde(rename = "ArchitectureString")]
    arch: String,
    #[serde(rename = "UniqueString")]
    unique: String,
}

impl Nb201Table {
    /// Reads the table from `path`. Fails with [`EstimateError::MissingFile`] if there is no
    /// file, and [`EstimateError::Corrupt`] naming the line if a column is missing, a number or
    /// an architecture string is malformed, a cell appears twice, or the table does not hold
    /// exactly 15,625 rows.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EstimateError> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(EstimateError::MissingFile {
                what: WHAT,
                path: path.to_path_buf(),
                hint: HINT,
            });
        }
        let file = std::fs::File::open(path).map_err(|source| EstimateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(std::io::BufReader::new(file), path)
    }

    /// Reads the table from `reader` (the CSV text of [`Nb201Table::open`]); `source` names it
    /// in errors. Fails with [`EstimateError::Corrupt`] as [`Nb201Table::open`] does, and also
    /// on an accuracy that is not a number in [0, 100].
    pub fn from_reader(
        reader: impl std::io::Read,
        source: impl AsRef<Path>,
    ) -> Result<Self, EstimateError> {
        let path = source.as_ref();
        let corrupt = |line: Option<u64>, reason: String| EstimateError::Corrupt {
            what: WHAT,
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut reader = csv::Reader::from_reader(reader);
        let mut rows = Vec::with_capacity(NB201_ROWS);
        let mut index = HashMap::with_capacity(NB201_ROWS);
        for rec in reader.deserialize::<RawRow>() {
            let raw = rec.map_err(|e| {
                let line = e.position().map(|p| p.line());
                corrupt(line, format!("{e} ({HINT})"))
            })?;
            let line = Some(rows.len() as u64 + 2);
            let arch: Nb201Arch = raw
                .arch
                .parse()
                .map_err(|e| corrupt(line, format!("{e}")))?;
            let test_accuracy = [raw.cifar10, raw.cifar100, raw.imagenet];
            if let Some(bad) = test_accuracy.iter().find(|a| !(0.0..=100.0).contains(*a)) {
                return Err(corrupt(
                    line,
                    format!("accuracy {bad} is not a percentage in [0, 100]"),
                ));
            }
            if rows.len() >= NB201_ROWS {
                return Err(corrupt(
                    line,
                    format!("more than {NB201_ROWS} rows (wrong file?)"),
                ));
            }
            if let Some(prev) = index.insert(arch, rows.len()) {
                return Err(corrupt(
                    line,
                    format!("cell {arch} already appears on line {}", prev + 2),
                ));
            }
            rows.push(Nb201Row {
                arch,
                test_accuracy,
                unique_string: raw.unique,
            });
        }
        if rows.len() != NB201_ROWS {
            return Err(corrupt(
                None,
                format!(
                    "expected {NB201_ROWS} rows, found {} (truncated or wrong file?)",
                    rows.len()
                ),
            ));
        }
        Ok(Self { rows, index })
    }

    /// The rows in the benchmark's order.
    pub fn rows(&self) -> &[Nb201Row] {
        &self.rows
    }

    /// The benchmark's index of `arch` (its row).
    pub fn index_of(&self, arch: &Nb201Arch) -> Option<usize> {
        self.index.get(arch).copied()
    }

    /// The row of `arch`.
    pub fn get(&self, arch: &Nb201Arch) -> Option<&Nb201Row> {
        self.index_of(arch).map(|i| &self.rows[i])
    }

    /// The best row on `dataset`; among ties, the first in the benchmark's row order.
    pub fn best(&self, dataset: Nb201Dataset) -> &Nb201Row {
        self.rows.iter().fold(&self.rows[0], |best, r| {
            if r.accuracy(dataset) > best.accuracy(dataset) {
                r
            } else {
                best
            }
        })
    }

    /// An estimator that answers with the test accuracy on `dataset` (an oracle: use it to
    /// compare search strategies by number of queries).
    pub fn estimator(&self, dataset: Nb201Dataset) -> Nb201Oracle<'_> {
        Nb201Oracle {
            table: self,
            dataset,
        }
    }

    /// The path this reader expects by default when none is given: `$NAS_NB201_CSV`.
    pub fn path_from_env() -> Option<PathBuf> {
        std::env::var_os("NAS_NB201_CSV").map(PathBuf::from)
    }
}

/// An [`Estimator`] over [`Nb201Arch`] backed by the table: the objective is the 200-epoch test
/// accuracy on one dataset; `values` holds all three (`cifar10`, `cifar100`, `imagenet16-120`)
/// and the benchmark index (`nb201_index`). The budget is ignored (the table has one fidelity).
#[derive(Debug, Clone, Copy)]
pub struct Nb201Oracle<'a> {
    table: &'a Nb201Table,
    dataset: Nb201Dataset,
}

impl Estimator<Nb201Arch> for Nb201Oracle<'_> {
    fn estimate(&mut self, arch: &Nb201Arch, _budget: &Budget) -> Result<Metrics, EstimateError> {
        let i = self
            .table
            .index_of(arch)
            .ok_or_else(|| EstimateError::UnknownArch(arch.to_string()))?;
        let row = &self.table.rows[i];
        let mut m = Metrics::new(row.accuracy(self.dataset)).with("nb201_index", i as f64);
        for d in Nb201Dataset::ALL {
            m = m.with(d.name(), row.accuracy(d));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_tmp(name: &str, content: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nas-estimate-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(content.as_bytes())
            .unwrap();
        p
    }

    const HEADER: &str = "CIFAR10TestAccuracy200Epochs,CIFAR100TestAccuracy200Epochs,ImageNetTestAccuracy200Epochs,ArchitectureString,UniqueString\n";

    #[test]
    fn missing_file_is_a_typed_error_with_a_hint() {
        let e = Nb201Table::open("/definitely/not/here.csv").unwrap_err();
        assert!(matches!(e, EstimateError::MissingFile { .. }));
        assert!(e.to_string().contains("nats_bench_tss_200ep.csv"));
    }

    #[test]
    fn corrupt_rows_name_the_line() {
        let p = write_tmp(
            "bad_arch.csv",
            &format!("{HEADER}1,2,3,|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|,x\n"),
        );
        let e = Nb201Table::open(&p).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, EstimateError::Corrupt { line: Some(2), .. }),
            "{msg}"
        );
        assert!(msg.contains("bogus"), "{msg}");

        let p = write_tmp(
            "bad_number.csv",
            &format!("{HEADER}1,abc,3,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x\n"),
        );
        assert!(matches!(
            Nb201Table::open(&p).unwrap_err(),
            EstimateError::Corrupt { .. }
        ));

        let p = write_tmp("missing_col.csv", "a,b\n1,2\n");
        assert!(matches!(
            Nb201Table::open(&p).unwrap_err(),
            EstimateError::Corrupt { .. }
        ));

        let row = "1,2,3,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x\n";
        let p = write_tmp("dup.csv", &format!("{HEADER}{row}{row}"));
        let e = Nb201Table::open(&p).unwrap_err();
        assert!(
            matches!(e, EstimateError::Corrupt { line: Some(3), .. }),
            "{e}"
        );

        let p = write_tmp("short.csv", &format!("{HEADER}{row}"));
        let e = Nb201Table::open(&p).unwrap_err();
        assert!(e.to_string().contains("15625"), "{e}");
    }

    #[test]
    fn accuracies_must_be_percentages() {
        for bad in ["nan", "inf", "-1", "100.5"] {
            let text =
                format!("{HEADER}{bad},2,3,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x\n");
            let e = Nb201Table::from_reader(text.as_bytes(), "memory.csv").unwrap_err();
            assert!(
                matches!(e, EstimateError::Corrupt { line: Some(2), .. }),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains("memory.csv"), "{e}");
            assert!(e.to_string().contains("[0, 100]"), "{e}");
        }
    }
}
