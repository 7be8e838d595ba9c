//! `segql watch`: NDJSON events in, NDJSON membership changes out, through the real-time
//! interpreter (`segql::live`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use segql::Session;
use segql::live::json::{change_line, parse_event};
use segql::live::{Change, Membership};

/// What `watch` was asked to do.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// Segments to keep (repeatable; default: every segment in FILE)
    #[arg(long = "segment", value_name = "NAME")]
    segments: Vec<String>,
    /// Where events come from: `-` (standard input, the default) or a file
    #[arg(long, value_name = "-|PATH")]
    events: Option<PathBuf>,
    /// Keep reading the events file as it grows, until stopped
    #[arg(long, requires = "events")]
    follow: bool,
    /// Write changes to this file instead of standard output
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Where rejected input lines go, with their line numbers and the reason
    #[arg(long, value_name = "PATH", default_value = "segql-dead-letters.ndjson")]
    dead_letters: PathBuf,
    /// Load the catalog's tables first; the members they imply are not emitted
    #[arg(long)]
    pub initial: bool,
    /// At the end of the input, advance the clock to TIME and emit what time changed
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    until: Option<i64>,
}

/// How long to wait before looking again at a followed file that has no new line.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub async fn watch(session: &Session, args: WatchArgs) -> ExitCode {
    let names: Vec<&str> = args.segments.iter().map(String::as_str).collect();
    let mut live = match Membership::new(session.program(), session.schema(), &names) {
        Ok(live) => live,
        Err(diagnostic) => {
            eprintln!("{diagnostic}");
            return ExitCode::from(1);
        }
    };
    if args.initial {
        let events = match segql::live::current_events(session).await {
            Ok(events) => events,
            Err(report) => {
                eprint!("{}", report.render(false));
                return ExitCode::from(1);
            }
        };
        let count = events.len();
        if let Err(rejection) = live.initialize(events, session.as_of()) {
            eprintln!("error: the catalog's tables cannot start the engine: {rejection}");
            return ExitCode::from(1);
        }
        eprintln!(
            "segql watch: {count} rows loaded; the clock is at {}",
            segql::live::json::format_time(live.now())
        );
    }
    tokio::task::block_in_place(|| stream(&mut live, session, &args))
}

fn stream(live: &mut Membership, session: &Session, args: &WatchArgs) -> ExitCode {
    let input: Box<dyn Read> = match args.events.as_deref() {
        None => Box::new(std::io::stdin()),
        Some(path) if path == Path::new("-") => Box::new(std::io::stdin()),
        Some(path) if path.to_str().is_some_and(|p| p.contains("://")) => {
            eprintln!(
                "error: `{}` is not a file: reading events from a message broker is not supported yet; \
                 pipe the stream to standard input (for NATS: `nats sub SUBJECT --raw | segql watch ...`)",
                path.display()
            );
            return ExitCode::from(1);
        }
        Some(path) => match File::open(path) {
            Ok(file) => Box::new(file),
            Err(error) => {
                eprintln!(
                    "error: cannot read events from `{}`: {error}",
                    path.display()
                );
                return ExitCode::from(1);
            }
        },
    };
    let mut output = match Output::open(args.out.as_deref()) {
        Ok(output) => output,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let mut dead = DeadLetters::new(&args.dead_letters);
    let mut lines = Lines::new(BufReader::new(input), args.follow && args.events.is_some());
    let (mut accepted, mut changes) = (0u64, 0u64);
    while let Some((number, line)) = lines.next() {
        let line = match line {
            Ok(line) => line,
            Err(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if let Err(message) = dead.reject(number, "the line is not UTF-8", &text) {
                    eprintln!("error: {message}");
                    return ExitCode::from(1);
                }
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let outcome = parse_event(&line, session.schema())
            .and_then(|event| live.ingest(event).map_err(|r| r.to_string()));
        match outcome {
            Ok(emitted) => {
                accepted += 1;
                changes += emitted.len() as u64;
                if let Err(code) = output.write(&emitted) {
                    return code;
                }
            }
            Err(message) => {
                if let Err(message) = dead.reject(number, &message, &line) {
                    eprintln!("error: {message}");
                    return ExitCode::from(1);
                }
            }
        }
    }
    if let Some(error) = lines.error {
        eprintln!("error: reading the events stopped: {error}");
        return ExitCode::from(1);
    }
    if let Some(until) = args.until {
        let emitted = live.advance_to(until);
        changes += emitted.len() as u64;
        if let Err(code) = output.write(&emitted) {
            return code;
        }
    }
    eprintln!(
        "segql watch: {accepted} events accepted, {changes} changes written{}",
        dead.summary()
    );
    ExitCode::SUCCESS
}

/// Input lines with their numbers; a followed file is polled at its end for more.
struct Lines<R> {
    reader: R,
    follow: bool,
    number: usize,
    /// Bytes of a line whose end has not arrived yet (followed files only).
    partial: Vec<u8>,
    error: Option<std::io::Error>,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R, follow: bool) -> Lines<R> {
        Lines {
            reader,
            follow,
            number: 0,
            partial: Vec::new(),
            error: None,
        }
    }

    /// The next line (or its bytes, when they are not UTF-8) with its 1-based number.
    #[allow(clippy::type_complexity)]
    fn next(&mut self) -> Option<(usize, Result<String, Vec<u8>>)> {
        loop {
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) if self.follow => std::thread::sleep(FOLLOW_POLL),
                Ok(0) if self.partial.is_empty() => return None,
                Ok(_) if self.follow && !self.partial.ends_with(b"\n") => {}
                Ok(_) => {
                    let mut bytes = std::mem::take(&mut self.partial);
                    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        bytes.pop();
                    }
                    self.number += 1;
                    return Some((
                        self.number,
                        String::from_utf8(bytes).map_err(|e| e.into_bytes()),
                    ));
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    self.error = Some(error);
                    return None;
                }
            }
        }
    }
}

/// Where changes go: standard output or a file, flushed after every event's changes so
/// subscribers see them at once.
enum Output {
    Stdout(std::io::Stdout),
    File(File, PathBuf),
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output, String> {
        match path {
            None => Ok(Output::Stdout(std::io::stdout())),
            Some(path) => File::create(path)
                .map(|file| Output::File(file, path.to_path_buf()))
                .map_err(|e| format!("cannot write changes to `{}`: {e}", path.display())),
        }
    }

    fn write(&mut self, changes: &[Change]) -> Result<(), ExitCode> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for change in changes {
            text.push_str(&change_line(change));
            text.push('\n');
        }
        let result = match self {
            Output::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush())
            }
            Output::File(file, _) => file.write_all(text.as_bytes()).and_then(|_| file.flush()),
        };
        match result {
            Ok(()) => Ok(()),
            // A closed pipe (`| head`): the reader is gone, stop quietly.
            Err(error) if error.kind() == ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
            Err(error) => {
                let target = match self {
                    Output::Stdout(_) => "standard output".to_string(),
                    Output::File(_, path) => format!("`{}`", path.display()),
                };
                eprintln!("error: cannot write changes to {target}: {error}");
                Err(ExitCode::from(1))
            }
        }
    }
}

/// Rejected input lines: reported on standard error with their numbers and appended,
/// whole, to the dead-letter file, which is created at the first one.
struct DeadLetters {
    path: PathBuf,
    file: Option<File>,
    count: u64,
}

impl DeadLetters {
    fn new(path: &Path) -> DeadLetters {
        DeadLetters {
            path: path.to_path_buf(),
            file: None,
            count: 0,
        }
    }

    fn reject(&mut self, line: usize, reason: &str, input: &str) -> Result<(), String> {
        eprintln!(
            "line {line}: {reason}; skipped to `{}`",
            self.path.display()
        );
        if self.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| {
                    format!(
                        "cannot write the dead-letter file `{}`: {e}",
                        self.path.display()
                    )
                })?;
            self.file = Some(file);
        }
        let record = format!(
            "{{\"line\":{line},\"error\":{},\"input\":{}}}",
            serde_json::Value::from(reason),
            serde_json::Value::from(input)
        );
        if let Some(file) = &mut self.file {
            writeln!(file, "{record}")
                .and_then(|_| file.flush())
                .map_err(|e| {
                    format!(
                        "cannot write the dead-letter file `{}`: {e}",
                        self.path.display()
                    )
                })?;
        }
        self.count += 1;
        Ok(())
    }

    fn summary(&self) -> String {
        match self.count {
            0 => String::new(),
            1 => format!(", 1 line rejected (see `{}`)", self.path.display()),
            n => format!(", {n} lines rejected (see `{}`)", self.path.display()),
        }
    }
}
