//! The append-only JSON-lines journal: one [`TrialRecord`] per finished trial.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::TrialRecord;
use crate::StrategyError;

/// A journal as read back: its records with their 1-based line numbers, and what to do before
/// appending to it.
pub(crate) struct Contents<A> {
    pub records: Vec<(usize, TrialRecord<A>)>,
    /// The length of the part of the file that holds whole lines.
    valid_len: u64,
    /// The last line was cut off by a partial write: its 1-based number.
    pub torn_line: Option<usize>,
    /// The last record has no line end (written by hand or by another tool).
    needs_newline: bool,
}

fn error(path: &Path, line: usize, reason: impl ToString) -> StrategyError {
    StrategyError::Journal {
        path: path.to_path_buf(),
        line,
        reason: reason.to_string(),
    }
}

/// The trials recorded in the journal at `path`, in the order they were written (as they
/// finished; a synchronous search writes each round in trial-id order): what a killed or
/// finished search left, for analysis (`nas::strategy::search::read_journal`). A last line
/// cut off by a partial write is left out.
///
/// # Errors
/// [`StrategyError::Journal`] naming the path (and the line) when the file is missing or
/// unreadable or a line is not a trial of this architecture type.
pub fn read_records<A: DeserializeOwned>(
    path: &Path,
) -> Result<Vec<TrialRecord<A>>, StrategyError> {
    if !path.is_file() {
        return Err(error(
            path,
            0,
            "no such journal file: give the trials.jsonl a search wrote",
        ));
    }
    Ok(read(path)?.records.into_iter().map(|(_, r)| r).collect())
}

/// Reads the journal at `path` (an absent file is an empty journal). A last line without a
/// line end that does not parse is a torn write, reported in `torn_line` and dropped on
/// [`Writer::open`]; any other line that does not parse is an error naming it.
pub(crate) fn read<A: DeserializeOwned>(path: &Path) -> Result<Contents<A>, StrategyError> {
    let mut contents = Contents {
        records: Vec::new(),
        valid_len: 0,
        torn_line: None,
        needs_newline: false,
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(contents),
        Err(e) => return Err(error(path, 0, e)),
    };
    let mut offset = 0;
    let mut number = 0;
    while offset < bytes.len() {
        number += 1;
        let (end, next, terminated) = match bytes[offset..].iter().position(|&b| b == b'\n') {
            Some(i) => (offset + i, offset + i + 1, true),
            None => (bytes.len(), bytes.len(), false),
        };
        let line = &bytes[offset..end];
        if !line.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<TrialRecord<A>>(line) {
                Ok(record) => contents.records.push((number, record)),
                Err(_) if !terminated => {
                    contents.torn_line = Some(number);
                    break;
                }
                Err(e) => return Err(error(path, number, e)),
            }
        }
        contents.valid_len = next as u64;
        contents.needs_newline = !terminated;
        offset = next;
    }
    Ok(contents)
}

/// Appends records to a journal, one line each.
pub(crate) struct Writer {
    file: File,
    path: PathBuf,
}

impl Writer {
    /// Opens (or creates) the journal for appending, after cutting off a torn last line.
    pub fn open<A>(path: &Path, contents: &Contents<A>) -> Result<Self, StrategyError> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| error(path, 0, format!("cannot open for appending: {e}")))?;
        if contents.torn_line.is_some() {
            file.set_len(contents.valid_len)
                .map_err(|e| error(path, 0, format!("cannot drop the torn last line: {e}")))?;
        }
        if contents.needs_newline {
            file.write_all(b"\n")
                .map_err(|e| error(path, 0, format!("cannot append: {e}")))?;
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends `record` as one line, in one write.
    pub fn append<A: Serialize>(&mut self, record: &TrialRecord<A>) -> Result<(), StrategyError> {
        let mut line = serde_json::to_vec(record).map_err(|e| error(&self.path, 0, e))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|e| error(&self.path, 0, format!("cannot append: {e}")))
    }
}
