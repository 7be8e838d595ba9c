//! Where `segql watch` reads events: standard input or a file, line by line, on a thread
//! of their own; a NATS JetStream subject is in `nats.rs`. Every reader hands the main
//! loop [`Incoming`] lines through one channel.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use segql::live::durable::Position;
use tokio::sync::mpsc::Sender;

use super::nats;

/// One line (or message) of input.
pub struct Incoming {
    /// The text, or its bytes when they are not UTF-8.
    pub text: Result<String, Vec<u8>>,
    /// The source's position after it.
    pub at: Position,
    pub origin: Origin,
    /// A broker message to acknowledge once the event is durably accepted (or rejected).
    pub ack: Option<nats::Delivery>,
}

/// Where an input line came from, for the dead-letter file.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    Line(u64),
    Message { sequence: u64 },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Message { sequence } => write!(f, "message {sequence}"),
        }
    }
}

/// Where events come from, as `--events` names it.
pub enum Source {
    Stdin,
    File { path: PathBuf, follow: bool },
    Nats(nats::Address),
}

impl Source {
    pub fn parse(events: Option<&str>, follow: bool) -> Result<Source, String> {
        match events {
            None | Some("-") => Ok(Source::Stdin),
            Some(text) => match nats::Address::parse(text) {
                Some(address) => {
                    if follow {
                        return Err(
                            "--follow is for files; a NATS subject is always followed".to_string()
                        );
                    }
                    Ok(Source::Nats(address?))
                }
                None => Ok(Source::File {
                    path: PathBuf::from(text),
                    follow,
                }),
            },
        }
    }
}

/// How long to wait before looking again at a followed file that has no new line.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Starts a thread that sends the lines of standard input or a file, from `from` (a file
/// resumes at its byte offset; standard input starts where it is).
pub fn spawn_lines(
    source: &Source,
    from: Position,
    lines: Sender<Incoming>,
) -> Result<std::thread::JoinHandle<Result<(), String>>, String> {
    let (reader, follow, at): (Box<dyn Read + Send>, bool, Position) = match source {
        Source::File { path, follow } => {
            let mut file = File::open(path)
                .map_err(|e| format!("cannot read events from `{}`: {e}", path.display()))?;
            file.seek(SeekFrom::Start(from.offset)).map_err(|e| {
                format!(
                    "cannot resume `{}` at byte {}: {e}",
                    path.display(),
                    from.offset
                )
            })?;
            (Box::new(file), *follow, from)
        }
        _ => (Box::new(std::io::stdin()), false, Position::default()),
    };
    Ok(std::thread::spawn(move || {
        let mut reader = Lines {
            reader: BufReader::new(reader),
            follow,
            at,
            partial: Vec::new(),
        };
        loop {
            match reader.next() {
                Ok(Some(incoming)) => {
                    if lines.blocking_send(incoming).is_err() {
                        // The main loop stopped.
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(error) => return Err(format!("reading the events stopped: {error}")),
            }
        }
    }))
}

/// Input lines with their numbers and end offsets; a followed file is polled at its end
/// for more.
struct Lines<R> {
    reader: R,
    follow: bool,
    at: Position,
    /// Bytes of a line whose end has not arrived yet (followed files only).
    partial: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn next(&mut self) -> std::io::Result<Option<Incoming>> {
        loop {
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) if self.follow => std::thread::sleep(FOLLOW_POLL),
                Ok(0) if self.partial.is_empty() => return Ok(None),
                Ok(_) if self.follow && !self.partial.ends_with(b"\n") => {}
                Ok(_) => {
                    let mut bytes = std::mem::take(&mut self.partial);
                    self.at.offset += bytes.len() as u64;
                    self.at.line += 1;
                    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        bytes.pop();
                    }
                    return Ok(Some(Incoming {
                        text: String::from_utf8(bytes).map_err(|e| e.into_bytes()),
                        at: self.at,
                        origin: Origin::Line(self.at.line),
                        ack: None,
                    }));
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}
