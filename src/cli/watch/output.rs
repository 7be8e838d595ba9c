//! Where `segql watch` writes: changes to standard output, a file or a NATS subject, and
//! rejected input to the dead-letter file.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use segql::live::Change;
use segql::live::json::change_line;

use super::input::Origin;
use super::nats::Publisher;

/// Why writing stopped.
pub enum Stop {
    /// The reader of standard output went away (`| head`): stop quietly.
    Closed,
    Failed(String),
    /// A diagnostic, printed as it is.
    Diagnosed(String),
}

/// Where changes go, each change once, flushed after every batch so subscribers see them
/// at once.
pub struct Output {
    lines: Lines,
    publisher: Option<(Publisher, String)>,
    /// Changes numbered below this are already in the output file (a resumed run).
    written: u64,
}

enum Lines {
    Stdout(std::io::Stdout),
    File(File, PathBuf),
    /// Only published.
    None,
}

impl Output {
    /// Standard output, or `path`; with a publisher and no path, only the publisher. A
    /// resumed durable run (`resume`) appends to `path` after its last complete line and
    /// skips the changes the file already holds.
    pub fn open(
        path: Option<&Path>,
        publisher: Option<(Publisher, String)>,
        resume: bool,
    ) -> Result<Output, String> {
        let cannot = |path: &Path, e: std::io::Error| {
            format!("cannot write changes to `{}`: {e}", path.display())
        };
        let (lines, written) = match path {
            None if publisher.is_some() => (Lines::None, 0),
            None => (Lines::Stdout(std::io::stdout()), 0),
            Some(path) if resume => {
                let mut file = OpenOptions::new()
                    .create(true)
                    .read(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| cannot(path, e))?;
                let written = complete_lines(&mut file).map_err(|e| cannot(path, e))?;
                (Lines::File(file, path.to_path_buf()), written)
            }
            Some(path) => (
                Lines::File(
                    File::create(path).map_err(|e| cannot(path, e))?,
                    path.to_path_buf(),
                ),
                0,
            ),
        };
        Ok(Output {
            lines,
            publisher,
            written,
        })
    }

    /// How many changes the output file held when a resumed run opened it.
    pub fn already_written(&self) -> u64 {
        self.written
    }

    /// Writes `changes`, each with its number when the run is durable. A change the
    /// output file already holds (by number) is not written again.
    pub async fn write(&mut self, changes: &[(Option<u64>, Change)]) -> Result<(), Stop> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for (id, change) in changes {
            if id.is_some_and(|id| id < self.written) {
                continue;
            }
            text.push_str(&change_line(change, *id));
            text.push('\n');
        }
        let result = match &mut self.lines {
            Lines::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush())
            }
            Lines::File(file, _) => file.write_all(text.as_bytes()).and_then(|_| file.flush()),
            Lines::None => Ok(()),
        };
        match result {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::BrokenPipe => return Err(Stop::Closed),
            Err(error) => {
                let target = match &self.lines {
                    Lines::File(_, path) => format!("`{}`", path.display()),
                    _ => "standard output".to_string(),
                };
                return Err(Stop::Failed(format!(
                    "cannot write changes to {target}: {error}"
                )));
            }
        }
        if let Some((publisher, origin)) = &self.publisher {
            publisher
                .publish(changes, origin)
                .await
                .map_err(Stop::Failed)?;
        }
        Ok(())
    }
}

/// Counts the complete lines of a change file and cuts off a last line a crash left
/// unfinished.
fn complete_lines(file: &mut File) -> std::io::Result<u64> {
    let mut text = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut text)?;
    let complete = text
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    if complete < text.len() {
        file.set_len(complete as u64)?;
    }
    Ok(text[..complete].iter().filter(|b| **b == b'\n').count() as u64)
}

/// Rejected input lines: reported on standard error with where they came from, and
/// appended, whole, to the dead-letter file, which is created at the first one.
pub struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
    count: u64,
}

impl DeadLetters {
    pub fn new(path: &Path) -> DeadLetters {
        DeadLetters {
            path: path.to_path_buf(),
            file: None,
            count: 0,
        }
    }

    pub fn reject(&mut self, origin: Origin, reason: &str, input: &str) -> Result<(), String> {
        eprintln!("{origin}: {reason}; skipped to `{}`", self.path.display());
        let cannot = |e: std::io::Error| {
            format!(
                "cannot write the dead-letter file `{}`: {e}",
                self.path.display()
            )
        };
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(cannot)?;
            self.file = Some(file);
        }
        let place = match origin {
            Origin::Line(n) => format!("\"line\":{n}"),
            Origin::Message { sequence } => format!("\"sequence\":{sequence}"),
        };
        let record = format!(
            "{{{place},\"error\":{},\"input\":{}}}",
            serde_json::Value::from(reason),
            serde_json::Value::from(input)
        );
        if let Some(file) = &mut self.file {
            writeln!(file, "{record}")
                .and_then(|_| file.flush())
                .map_err(cannot)?;
        }
        self.count += 1;
        Ok(())
    }

    pub fn summary(&self) -> String {
        match self.count {
            0 => String::new(),
            1 => format!(", 1 line rejected (see `{}`)", self.path.display()),
            n => format!(", {n} lines rejected (see `{}`)", self.path.display()),
        }
    }
}
