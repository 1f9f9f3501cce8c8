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

/// How every record's line begins (the first field of [`TrialRecord`]): a torn last line is a
/// prefix of a record, so it begins with this too, or is a prefix of it.
const RECORD_START: &[u8] = b"{\"id\":";

/// Whether `line` can be the start of a record cut off by a partial write.
fn is_torn_record(line: &[u8]) -> bool {
    // A crash before an unsynced write reached the disk can leave its length as zero bytes.
    if line.iter().all(|&b| b == 0) {
        return true;
    }
    let n = line.len().min(RECORD_START.len());
    line[..n] == RECORD_START[..n]
}

/// Reads the journal at `path` (an absent file is an empty journal). A last line without a
/// line end that does not parse but begins like a record is a torn write, reported in
/// `torn_line` and dropped on [`Writer::open`]; any other line that does not parse is an
/// error naming it (so a file that is not a journal is refused, never trimmed).
pub(crate) fn read<A: DeserializeOwned>(path: &Path) -> Result<Contents<A>, StrategyError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(error(path, 0, e)),
    };
    parse(&bytes, path)
}

/// The trials of a journal's bytes, as [`read_records`] reads them from a file (a torn last
/// line left out); `source` names the journal in errors. For journals that do not live in a
/// file of their own (an archive, a database column, a network stream).
///
/// # Errors
/// [`StrategyError::Journal`] naming `source` and the line when a line is not a trial of this
/// architecture type.
pub fn parse_records<A: DeserializeOwned>(
    bytes: &[u8],
    source: &Path,
) -> Result<Vec<TrialRecord<A>>, StrategyError> {
    Ok(parse(bytes, source)?
        .records
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// The journal in `bytes` (see [`read`]); `path` names it in errors.
fn parse<A: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<Contents<A>, StrategyError> {
    let mut contents = Contents {
        records: Vec::new(),
        valid_len: 0,
        torn_line: None,
        needs_newline: false,
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
                Err(_) if !terminated && is_torn_record(line) => {
                    contents.torn_line = Some(number);
                    break;
                }
                Err(e) if contents.records.is_empty() => {
                    return Err(error(
                        path,
                        number,
                        format!(
                            "not a search journal (its first record does not parse: {e}); \
                             give the trials.jsonl a search wrote, or a new path"
                        ),
                    ));
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

/// When the journal is forced to disk ([`crate::search::Search::journal_sync`]): each sync
/// waits for the storage device, so a finished trial survives a power loss or an operating
/// system crash, not only a killed process (which loses nothing written either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JournalSync {
    /// After every record (the default: trials that take seconds or more).
    #[default]
    EachRecord,
    /// After every `n` records, and when the search ends (fast trials, e.g. a table
    /// look-up, where a sync per record would dominate; a crash loses at most `n - 1`).
    Every(usize),
    /// Only when the search ends.
    AtEnd,
}

/// An open journal, locked against other processes: every search that journals to the same
/// file takes the same exclusive lock before reading it, so two processes never resume (and
/// append to) one journal at once.
pub(crate) struct Locked {
    file: File,
    path: PathBuf,
}

impl Locked {
    /// Opens (or creates) the journal at `path` and takes its exclusive lock without waiting.
    ///
    /// # Errors
    /// [`StrategyError::Journal`] when the file cannot be opened, or when another search
    /// (another process, or another [`crate::search::Search`] here) holds it.
    pub fn open(path: &Path) -> Result<Self, StrategyError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| error(path, 0, format!("cannot open for appending: {e}")))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(error(
                    path,
                    0,
                    "another search is writing this journal (it holds the file's lock): \
                     wait for it to end, or give this search another journal path",
                ));
            }
            // A file system without locks (some network mounts): journal without one.
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(error(path, 0, format!("cannot lock the file: {e}")));
            }
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }
}

/// Appends records to a locked journal, one line each (the lock is released when it drops).
pub(crate) struct Writer {
    file: File,
    path: PathBuf,
    sync: JournalSync,
    /// Records appended since the last sync.
    unsynced: usize,
}

impl Writer {
    /// Makes `locked` ready for appending, after cutting off a torn last line.
    pub fn open<A>(
        locked: Locked,
        contents: &Contents<A>,
        sync: JournalSync,
    ) -> Result<Self, StrategyError> {
        let Locked { mut file, path } = locked;
        let path = path.as_path();
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
            sync,
            unsynced: 0,
        })
    }

    /// Appends `record` as one line, in one write, and syncs as the [`JournalSync`] says.
    pub fn append<A: Serialize>(&mut self, record: &TrialRecord<A>) -> Result<(), StrategyError> {
        let mut line = serde_json::to_vec(record).map_err(|e| error(&self.path, 0, e))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|e| error(&self.path, 0, format!("cannot append: {e}")))?;
        self.unsynced += 1;
        let due = match self.sync {
            JournalSync::EachRecord => true,
            JournalSync::Every(n) => self.unsynced >= n,
            JournalSync::AtEnd => false,
        };
        if due { self.sync() } else { Ok(()) }
    }

    /// Forces the appended records to disk.
    pub fn sync(&mut self) -> Result<(), StrategyError> {
        if self.unsynced == 0 {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| error(&self.path, 0, format!("cannot sync to disk: {e}")))?;
        self.unsynced = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;
    use nas_estimate::{Budget, Metrics};

    #[test]
    fn every_record_begins_as_a_torn_line_is_recognised() {
        let record = TrialRecord {
            id: 7,
            arch: "cell".to_string(),
            budget: Budget::full(),
            outcome: Outcome::Complete(Metrics::new(1.0)),
            seconds: 0.5,
            worker: 0,
            started_at: 0.0,
            ended_at: 0.5,
            seed: Some(3),
            issued: 8,
        };
        let line = serde_json::to_vec(&record).unwrap();
        assert!(line.starts_with(RECORD_START));
        for cut in 0..line.len() {
            assert!(is_torn_record(&line[..cut]), "a prefix of {cut} bytes");
        }
        assert!(!is_torn_record(b"{\"best\": 1}"));
        assert!(is_torn_record(&[0, 0, 0]), "zeros a crash left");
        assert!(!is_torn_record(b"[1, 2]"));
    }
}
