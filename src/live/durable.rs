//! Durable real-time state: an append-only log of what the engine accepted, and
//! checkpoints of the engine's state, in one directory.
//!
//! - `DIR/checkpoint`: the engine's state after some accepted input, with the source
//!   position after it and the number of changes it had caused. Written to a temporary
//!   file, synced, then renamed into place, so a crash leaves the old one or the new one.
//! - `DIR/log-N`: what was accepted since checkpoint `N`, one entry per line: an event
//!   (its source position and its NDJSON line) or an advance of the clock. Appended, and
//!   synced by [`Journal::sync`]: what was synced survives a crash of the process or the
//!   machine.
//!
//! [`Journal::open`] recovers: it loads the checkpoint and replays the log through the
//! engine, which is deterministic, so the engine ends exactly where it was after the last
//! entry that reached the file, and the changes the replay causes are the same changes,
//! with the same numbers, as the first time. Changes are numbered in the order they are
//! caused, from 0; a consumer that keeps the highest number it has seen can drop repeats.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::json::parse_event;
use super::{Change, Membership};
use crate::catalog::CatalogSchema;

const CHECKPOINT: &str = "checkpoint";
/// The first line of a checkpoint file; the state's encoding follows it.
const MAGIC: &[u8] = b"segql-live-checkpoint 3\n";

/// Where the source of events is after an accepted event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Input lines (or messages) consumed, rejected ones included.
    pub line: u64,
    /// Where reading resumes: a byte offset in a file, a stream sequence of a broker.
    pub offset: u64,
}

/// A durable state directory that could not be used.
#[derive(Debug)]
pub struct StateError(String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

fn io_error(path: &Path, what: &str, error: std::io::Error) -> StateError {
    StateError(format!("cannot {what} `{}`: {error}", path.display()))
}

/// What a checkpoint records besides the engine's state.
#[derive(Debug, Serialize, Deserialize)]
struct Mark {
    fingerprint: u64,
    /// Made when the directory was first used: names this state's changes among others'.
    origin: u64,
    generation: u64,
    position: Position,
    changes: u64,
    accepted: u64,
}

/// The log of a state directory, open for appending.
pub struct Journal {
    dir: PathBuf,
    origin: u64,
    log: BufWriter<File>,
    generation: u64,
    /// After the last entry written.
    position: Position,
    /// Changes caused so far: the number the next change gets.
    changes: u64,
    accepted: u64,
    /// Accepted events since the last checkpoint.
    since_checkpoint: u64,
}

/// An engine brought back from a state directory.
pub struct Recovery {
    pub journal: Journal,
    pub live: Membership,
    /// The changes replaying the log caused, numbered from `first_change`: the changes
    /// caused after the checkpoint, which may or may not have reached their consumers.
    pub replayed: Vec<Change>,
    pub first_change: u64,
    /// `false` when the directory had no checkpoint and the engine starts new.
    pub resumed: bool,
}

impl Journal {
    /// Opens the state directory `dir`, creating it if needed, for an engine `live` fresh
    /// from [`Membership::new`]. With a checkpoint there, the engine is restored and the
    /// log replayed; without one, `initialize` prepares the engine (loads the tables, say)
    /// and a first checkpoint is written at once, so the starting state is never
    /// recomputed.
    pub fn open(
        dir: &Path,
        mut live: Membership,
        schema: &CatalogSchema,
        initialize: impl FnOnce(&mut Membership) -> Result<(), String>,
    ) -> Result<Recovery, StateError> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, "create the state directory", e))?;
        let fingerprint = live.fingerprint();
        let path = dir.join(CHECKPOINT);
        let bytes = match fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(error) if error.kind() == ErrorKind::NotFound => None,
            Err(error) => return Err(io_error(&path, "read the checkpoint", error)),
        };
        let Some(bytes) = bytes else {
            initialize(&mut live).map_err(StateError)?;
            let mark = Mark {
                fingerprint,
                origin: new_origin(),
                generation: 0,
                position: Position::default(),
                changes: 0,
                accepted: 0,
            };
            write_checkpoint(dir, &mark, &live)?;
            let journal = Journal::start(dir, &mark)?;
            return Ok(Recovery {
                journal,
                live,
                replayed: Vec::new(),
                first_change: 0,
                resumed: false,
            });
        };
        let corrupt = |detail: &str| {
            StateError(format!(
                "the checkpoint `{}` is damaged ({detail}); restore the directory from a backup, \
                 or start over with an empty --state directory",
                path.display()
            ))
        };
        let body = bytes.strip_prefix(MAGIC).ok_or_else(|| {
            corrupt("it does not start as a SegQL checkpoint of this version does")
        })?;
        let (mark, state): (Mark, &[u8]) =
            postcard::take_from_bytes(body).map_err(|e| corrupt(&e.to_string()))?;
        if mark.fingerprint != fingerprint {
            return Err(StateError(format!(
                "the state in `{}` was kept for other segments: the segment file, the chosen \
                 --segment names, the catalog or the SegQL version changed since; watch with \
                 a new --state directory (the old one still holds the old segments' state)",
                dir.display()
            )));
        }
        live.restore(state).map_err(|e| corrupt(&e.to_string()))?;
        let log = log_path(dir, mark.generation);
        let mut replayed = Vec::new();
        let mut position = mark.position;
        let mut accepted = mark.accepted;
        let mut since_checkpoint = 0;
        let text = match fs::read(&log) {
            Ok(text) => text,
            Err(error) if error.kind() == ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(io_error(&log, "read the log", error)),
        };
        // A last entry without its newline was cut short by a crash: it was never synced,
        // so it was never acknowledged, and it is dropped.
        let complete = text
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        let bad_entry = |number: usize, detail: &str| {
            StateError(format!(
                "entry {number} of the log `{}` is damaged ({detail}); restore the directory \
                 from a backup, or start over with an empty --state directory",
                log.display()
            ))
        };
        for (number, entry) in text[..complete].split(|b| *b == b'\n').enumerate() {
            if entry.is_empty() {
                continue;
            }
            let entry =
                std::str::from_utf8(entry).map_err(|_| bad_entry(number + 1, "not UTF-8"))?;
            match Entry::parse(entry) {
                Some(Entry::Event { at, line }) => {
                    let event = parse_event(line, schema)
                        .map_err(|message| bad_entry(number + 1, &message))?;
                    let changes = live
                        .ingest(event)
                        .map_err(|rejection| bad_entry(number + 1, &rejection.to_string()))?;
                    replayed.extend(changes);
                    position = at;
                    accepted += 1;
                    since_checkpoint += 1;
                }
                Some(Entry::Advance(time)) => replayed.extend(live.advance_to(time)),
                None => return Err(bad_entry(number + 1, "not a log entry")),
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| io_error(&log, "open the log", e))?;
        file.set_len(complete as u64)
            .map_err(|e| io_error(&log, "repair the log", e))?;
        remove_other_logs(dir, mark.generation);
        let first_change = mark.changes;
        let journal = Journal {
            dir: dir.to_path_buf(),
            origin: mark.origin,
            log: BufWriter::new(file),
            generation: mark.generation,
            position,
            changes: first_change + replayed.len() as u64,
            accepted,
            since_checkpoint,
        };
        Ok(Recovery {
            journal,
            live,
            replayed,
            first_change,
            resumed: true,
        })
    }

    fn start(dir: &Path, mark: &Mark) -> Result<Journal, StateError> {
        let log = log_path(dir, mark.generation);
        let file = File::create(&log).map_err(|e| io_error(&log, "create the log", e))?;
        sync_dir(dir)?;
        remove_other_logs(dir, mark.generation);
        Ok(Journal {
            dir: dir.to_path_buf(),
            origin: mark.origin,
            log: BufWriter::new(file),
            generation: mark.generation,
            position: mark.position,
            changes: mark.changes,
            accepted: mark.accepted,
            since_checkpoint: 0,
        })
    }

    /// Whether `dir` holds a checkpoint to resume from.
    pub fn exists(dir: &Path) -> bool {
        dir.join(CHECKPOINT).is_file()
    }

    /// A name for this state directory's changes, the same in every run on it: a change
    /// is identified by it and the change's number.
    pub fn origin(&self) -> String {
        format!("{:016x}", self.origin)
    }

    /// The source position after the last accepted event.
    pub fn position(&self) -> Position {
        self.position
    }

    /// How many events were accepted, over every run on this directory.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// How many changes were caused so far: the number the next one gets.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Accepted events not yet covered by a checkpoint.
    pub fn since_checkpoint(&self) -> u64 {
        self.since_checkpoint
    }

    /// Records an accepted event (its NDJSON `line`, read up to `at`); `caused` is the
    /// number of changes it caused. Returns the number of the first of them. Nothing is
    /// durable before [`Journal::sync`].
    pub fn event(&mut self, line: &str, at: Position, caused: usize) -> Result<u64, StateError> {
        // A line break outside a JSON string is white space; inside one it is not valid
        // JSON, which was rejected before. Either way one line holds the same event.
        let line = line.replace(['\n', '\r'], " ");
        let entry = format!("e\t{}\t{}\t{line}\n", at.line, at.offset);
        self.append(&entry)?;
        self.position = at;
        self.accepted += 1;
        self.since_checkpoint += 1;
        Ok(self.number(caused))
    }

    /// Records an advance of the clock to `time` that caused `caused` changes; returns
    /// the number of the first of them.
    pub fn advance(&mut self, time: i64, caused: usize) -> Result<u64, StateError> {
        self.append(&format!("t\t{time}\n"))?;
        Ok(self.number(caused))
    }

    fn number(&mut self, caused: usize) -> u64 {
        let first = self.changes;
        self.changes += caused as u64;
        first
    }

    fn append(&mut self, entry: &str) -> Result<(), StateError> {
        let path = log_path(&self.dir, self.generation);
        self.log
            .write_all(entry.as_bytes())
            .map_err(|e| io_error(&path, "append to the log", e))
    }

    /// Makes every entry recorded so far durable.
    pub fn sync(&mut self) -> Result<(), StateError> {
        let path = log_path(&self.dir, self.generation);
        self.log
            .flush()
            .and_then(|_| self.log.get_ref().sync_data())
            .map_err(|e| io_error(&path, "sync the log", e))
    }

    /// Writes a checkpoint of `live`, which must be the state after every recorded entry,
    /// and starts a new, empty log.
    pub fn checkpoint(&mut self, live: &Membership) -> Result<(), StateError> {
        self.sync()?;
        let mark = Mark {
            fingerprint: live.fingerprint(),
            origin: self.origin,
            generation: self.generation + 1,
            position: self.position,
            changes: self.changes,
            accepted: self.accepted,
        };
        write_checkpoint(&self.dir, &mark, live)?;
        let next = Journal::start(&self.dir, &mark)?;
        *self = next;
        Ok(())
    }
}

/// One line of the log.
enum Entry<'a> {
    Event { at: Position, line: &'a str },
    Advance(i64),
}

impl<'a> Entry<'a> {
    fn parse(entry: &'a str) -> Option<Entry<'a>> {
        let mut fields = entry.splitn(4, '\t');
        match fields.next()? {
            "e" => {
                let line = fields.next()?.parse().ok()?;
                let offset = fields.next()?.parse().ok()?;
                Some(Entry::Event {
                    at: Position { line, offset },
                    line: fields.next()?,
                })
            }
            "t" => Some(Entry::Advance(fields.next()?.parse().ok()?)),
            _ => None,
        }
    }
}

/// Distinct for every directory made: the clock's nanoseconds and the process id.
fn new_origin() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("log-{generation}"))
}

fn write_checkpoint(dir: &Path, mark: &Mark, live: &Membership) -> Result<(), StateError> {
    let path = dir.join(CHECKPOINT);
    let temporary = dir.join(format!("{CHECKPOINT}.tmp"));
    let failed = |e: std::io::Error| io_error(&temporary, "write the checkpoint", e);
    let file = File::create(&temporary).map_err(failed)?;
    let mut out = BufWriter::new(file);
    out.write_all(MAGIC).map_err(failed)?;
    let encoded = |e: postcard::Error| StateError(format!("cannot encode the checkpoint: {e}"));
    postcard::to_io(mark, &mut out).map_err(encoded)?;
    live.save(&mut out).map_err(encoded)?;
    let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
    file.sync_all().map_err(failed)?;
    fs::rename(&temporary, &path).map_err(|e| io_error(&path, "replace the checkpoint", e))?;
    sync_dir(dir)
}

/// Makes a rename or a new file in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, "sync the state directory", e))
}

/// Logs of older generations, left by a crash between a checkpoint and their removal.
fn remove_other_logs(dir: &Path, generation: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let current = format!("log-{generation}");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("log-") && name != current {
            // A log the checkpoint already covers; failing to remove it only wastes space.
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Session;
    use crate::catalog::{Catalog, TableConfig};
    use crate::check::ir::Type;

    async fn demo_session() -> Session {
        let catalog = Catalog::new(
            TableConfig::new("customers", None, "customer_id")
                .with_column("customer_id", Type::Int),
        )
        .with_event(
            TableConfig::new("purchased", None, "customer_id")
                .with_time("ts")
                .with_column("customer_id", Type::Int)
                .with_column("ts", Type::Timestamp),
        );
        let mut session = Session::without_data(catalog).await.expect("a session");
        session
            .add_source("s.seg", "segment recent = purchased within 30d")
            .expect("the segment");
        session
    }

    fn engine(session: &Session) -> Membership {
        Membership::new(session.program(), session.schema(), &[]).expect("an engine")
    }

    /// Opens `dir` for a new engine of `session`'s program, with nothing to load.
    fn open(dir: &Path, session: &Session) -> Result<Recovery, StateError> {
        Journal::open(dir, engine(session), session.schema(), |_| Ok(()))
    }

    const PROFILE: &str = r#"{"event": "profile", "customer_id": 7}"#;
    const PURCHASE: &str = r#"{"event": "purchased", "customer_id": 7, "ts": "1998-01-01"}"#;

    /// Records `line` as accepted, applying it to `live`.
    fn accept(journal: &mut Journal, live: &mut Membership, session: &Session, line: &str) {
        let event = parse_event(line, session.schema()).expect("an event");
        let caused = live.ingest(event).expect("accepted").len();
        let at = Position {
            line: journal.position().line + 1,
            offset: 0,
        };
        journal.event(line, at, caused).expect("logged");
    }

    #[tokio::test]
    async fn a_log_cut_short_by_a_crash_replays_up_to_its_last_whole_entry() {
        let session = demo_session().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let recovery = open(dir.path(), &session).expect("a new state");
        assert!(!recovery.resumed);
        let (mut journal, mut live) = (recovery.journal, recovery.live);
        accept(&mut journal, &mut live, &session, PROFILE);
        accept(&mut journal, &mut live, &session, PURCHASE);
        journal.sync().expect("synced");
        drop(journal);
        // A crash in the middle of writing the next entry.
        let log = log_path(dir.path(), 0);
        let mut file = OpenOptions::new().append(true).open(&log).expect("the log");
        file.write_all(b"e\t3\t0\t{\"event\": \"purch")
            .expect("torn");

        let recovery = Journal::open(dir.path(), engine(&session), session.schema(), |_| {
            panic!("a resumed state is not initialized again")
        })
        .expect("resumed");
        assert!(recovery.resumed);
        assert_eq!(recovery.journal.accepted(), 2);
        assert_eq!(recovery.journal.position().line, 2);
        // The purchase made customer 7 a member, change number 0, which replay repeats.
        assert_eq!(recovery.first_change, 0);
        assert_eq!(recovery.replayed.len(), 1);
        assert!(recovery.replayed[0].entered);
        assert_eq!(recovery.live.members("recent"), live.members("recent"));
        let text = fs::read_to_string(&log).expect("the log");
        assert!(text.ends_with('\n') && text.lines().count() == 2, "{text}");

        // After a checkpoint nothing is replayed, and the numbering goes on.
        let (mut journal, live) = (recovery.journal, recovery.live);
        journal.checkpoint(&live).expect("a checkpoint");
        assert!(!log.exists(), "the covered log is removed");
        let recovery = open(dir.path(), &session).expect("resumed");
        assert!(recovery.replayed.is_empty());
        assert_eq!(recovery.journal.changes(), 1);
        assert_eq!(recovery.live.members("recent"), live.members("recent"));
    }

    #[tokio::test]
    async fn damaged_or_foreign_state_is_refused_with_what_to_do() {
        let session = demo_session().await;
        let dir = tempfile::tempdir().expect("tempdir");
        drop(open(dir.path(), &session));
        let checkpoint = dir.path().join(CHECKPOINT);
        let mut bytes = fs::read(&checkpoint).expect("the checkpoint");
        bytes.truncate(MAGIC.len() + 3);
        fs::write(&checkpoint, &bytes).expect("damaged");
        let error = open(dir.path(), &session).err().expect("refused");
        assert!(error.to_string().contains("is damaged"), "{error}");
        assert!(
            error.to_string().contains("empty --state directory"),
            "{error}"
        );

        let mut other = demo_session().await;
        other
            .add_source("t.seg", "segment old = purchased within 90d")
            .expect("another segment");
        let dir = tempfile::tempdir().expect("tempdir");
        drop(open(dir.path(), &session));
        let error = open(dir.path(), &other).err().expect("refused");
        assert!(
            error.to_string().contains("kept for other segments"),
            "{error}"
        );
    }
}
