//! `segql watch`: events in (standard input, a file, a NATS JetStream subject), membership
//! changes out (standard output, a file, a NATS subject), through the real-time
//! interpreter (`segql::live`); with `--state`, durably.

mod input;
mod nats;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use segql::Session;
use segql::live::durable::Journal;
use segql::live::json::{format_time, parse_event};
use segql::live::{Change, Membership};

use input::{Incoming, Source};
use output::{DeadLetters, Output, Stop};

/// What `watch` was asked to do.
#[derive(clap::Args)]
pub struct WatchArgs {
    /// Segments to keep (repeatable; default: every segment in FILE)
    #[arg(long = "segment", value_name = "NAME")]
    segments: Vec<String>,
    /// Where events come from: `-` (standard input, the default), a file, or a NATS
    /// JetStream subject, nats://HOST:PORT/SUBJECT
    #[arg(long, value_name = "-|PATH|nats://HOST:PORT/SUBJECT")]
    events: Option<String>,
    /// Keep reading the events file as it grows, until stopped
    #[arg(long, requires = "events")]
    follow: bool,
    /// The durable NATS consumer that reads --events nats://... (one per pipeline)
    #[arg(long, value_name = "NAME", default_value = "segql-watch")]
    consumer: String,
    /// Write changes to this file instead of standard output
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Publish changes to a NATS JetStream subject (then standard output gets none,
    /// unless --out names a file)
    #[arg(long, value_name = "nats://HOST:PORT/SUBJECT")]
    publish: Option<String>,
    /// Where rejected input lines go, with their line numbers and the reason
    #[arg(long, value_name = "PATH", default_value = "segql-dead-letters.ndjson")]
    dead_letters: PathBuf,
    /// Load the catalog's tables first; the members they imply are not emitted
    #[arg(long)]
    pub initial: bool,
    /// At the end of the input, advance the clock to TIME and emit what time changed
    #[arg(long, value_name = "TIME", value_parser = super::parse_time)]
    until: Option<i64>,
    /// Keep the engine's state in DIR: accepted events are logged and checkpointed, and a
    /// restart resumes exactly where the last run stopped (docs/realtime.md)
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// With --state: write a checkpoint after this many accepted events
    #[arg(long, value_name = "N", default_value_t = 100_000, requires = "state",
          value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// The most events handled between two syncs of the log; changes are written after
    /// each sync, so this bounds what a crash can make the next run repeat
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
}

pub async fn watch(session: &Session, args: WatchArgs) -> ExitCode {
    match run(session, &args).await {
        Ok(()) | Err(Stop::Closed) => ExitCode::SUCCESS,
        Err(Stop::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Stop::Diagnosed(diagnostic)) => {
            eprintln!("{diagnostic}");
            ExitCode::from(1)
        }
    }
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

impl From<segql::live::durable::StateError> for Stop {
    fn from(error: segql::live::durable::StateError) -> Stop {
        Stop::Failed(error.to_string())
    }
}

async fn run(session: &Session, args: &WatchArgs) -> Result<(), Stop> {
    let names: Vec<&str> = args.segments.iter().map(String::as_str).collect();
    let live = Membership::new(session.program(), session.schema(), &names)
        .map_err(|diagnostic| Stop::Diagnosed(diagnostic.to_string()))?;
    let source = Source::parse(args.events.as_deref(), args.follow)?;
    let publish = match args.publish.as_deref() {
        None => None,
        Some(text) => Some(nats::Address::parse(text).unwrap_or_else(|| {
            Err(format!(
                "--publish takes a NATS subject, nats://HOST:PORT/SUBJECT, not `{text}`; \
                 to write changes to a file use --out"
            ))
        })?),
    };

    // The engine: resumed from --state, or new (and loaded from the tables with --initial).
    let loads_tables = args.initial && !args.state.as_deref().is_some_and(Journal::exists);
    let initial = if loads_tables {
        let events = segql::live::current_events(session)
            .await
            .map_err(|report| Stop::Diagnosed(report.render(false).trim_end().to_string()))?;
        Some(events)
    } else {
        None
    };
    let as_of = session.as_of();
    let initialize = |live: &mut Membership| -> Result<(), String> {
        let Some(events) = initial else {
            return Ok(());
        };
        let count = events.len();
        live.initialize(events, as_of)
            .map_err(|r| format!("the catalog's tables cannot start the engine: {r}"))?;
        eprintln!(
            "segql watch: {count} rows loaded; the clock is at {}",
            format_time(live.now())
        );
        Ok(())
    };
    let (mut live, mut journal, replayed, resume) = match &args.state {
        None => {
            let mut live = live;
            initialize(&mut live)?;
            (live, None, Vec::new(), None)
        }
        Some(dir) => {
            let recovery = Journal::open(dir, live, session.schema(), initialize)?;
            let mut numbered = Vec::new();
            number(
                &mut numbered,
                Some(recovery.first_change),
                recovery.replayed,
            );
            let resume = recovery.resumed.then(|| recovery.journal.position());
            if recovery.resumed {
                eprintln!(
                    "segql watch: resumed from `{}`: {} events accepted so far, the clock at {}",
                    dir.display(),
                    recovery.journal.accepted(),
                    format_time(recovery.live.now())
                );
            }
            (recovery.live, Some(recovery.journal), numbered, resume)
        }
    };

    let publisher = match &publish {
        None => None,
        Some(address) => {
            let origin = journal.as_ref().map_or_else(String::new, Journal::origin);
            Some((nats::Publisher::open(address).await?, origin))
        }
    };
    let mut output = Output::open(args.out.as_deref(), publisher, resume.is_some())?;
    if let (Some(journal), Some(_)) = (&journal, &args.out) {
        let expected = journal.changes();
        if output.already_written() > expected {
            return Err(Stop::Failed(format!(
                "the output file holds {} changes, more than the {expected} the state in \
                 --state has caused: it belongs to another run; name a new --out file",
                output.already_written()
            )));
        }
    }
    // Changes caused after the last checkpoint, which may not have reached the output.
    output.write(&replayed).await?;

    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Incoming>(4 * args.batch as usize);
    let reader = match &source {
        Source::Nats(address) => {
            let subscription = nats::Subscription::open(address, &args.consumer, resume).await?;
            Reader::Task(tokio::spawn(subscription.run(sender)))
        }
        _ => {
            if resume.is_some_and(|at| at.line > 0) && matches!(source, Source::Stdin) {
                eprintln!(
                    "segql watch: standard input cannot be rewound: its lines are read as new \
                     events after the {} this state accepted",
                    journal.as_ref().map_or(0, Journal::accepted)
                );
            }
            Reader::Thread(input::spawn_lines(
                &source,
                resume.unwrap_or_default(),
                sender,
            )?)
        }
    };

    let mut shutdown = Shutdown::listen()?;
    let mut dead = DeadLetters::new(&args.dead_letters);
    let (mut accepted, mut written) = (0u64, replayed.len() as u64);
    let mut stopped = false;
    loop {
        let first = tokio::select! {
            incoming = receiver.recv() => incoming,
            () = shutdown.requested() => {
                stopped = true;
                None
            }
        };
        let Some(first) = first else {
            break;
        };
        let mut batch = vec![first];
        while (batch.len() as u64) < args.batch {
            match receiver.try_recv() {
                Ok(incoming) => batch.push(incoming),
                Err(_) => break,
            }
        }
        let mut changes: Vec<(Option<u64>, Change)> = Vec::new();
        let mut deliveries = Vec::new();
        for incoming in batch {
            deliveries.extend(incoming.ack);
            let line = match incoming.text {
                Ok(line) => line,
                Err(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    dead.reject(incoming.origin, "the line is not UTF-8", &text)?;
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let outcome = parse_event(&line, session.schema())
                .and_then(|event| live.ingest(event).map_err(|r| r.to_string()));
            match outcome {
                Ok(caused) => {
                    accepted += 1;
                    let first = (journal.as_mut())
                        .map(|journal| journal.event(&line, incoming.at, caused.len()))
                        .transpose()?;
                    number(&mut changes, first, caused);
                }
                Err(message) => dead.reject(incoming.origin, &message, &line)?,
            }
        }
        if let Some(journal) = &mut journal {
            journal.sync()?;
        }
        written += changes.len() as u64;
        output.write(&changes).await?;
        for delivery in deliveries {
            delivery.ack().await?;
        }
        if let Some(journal) = &mut journal
            && journal.since_checkpoint() >= args.checkpoint_every
        {
            journal.checkpoint(&live)?;
        }
    }
    if !stopped {
        reader.finish().await?;
        if let Some(until) = args.until {
            let caused = live.advance_to(until);
            let first = (journal.as_mut())
                .map(|journal| journal.advance(until, caused.len()))
                .transpose()?;
            let mut changes = Vec::new();
            number(&mut changes, first, caused);
            if let Some(journal) = &mut journal {
                journal.sync()?;
            }
            written += changes.len() as u64;
            output.write(&changes).await?;
        }
    }
    if let Some(journal) = &mut journal {
        journal.checkpoint(&live)?;
    }
    eprintln!(
        "segql watch: {accepted} events accepted, {written} changes written{}{}",
        dead.summary(),
        if stopped { "; stopped by a signal" } else { "" }
    );
    Ok(())
}

/// Appends `caused` to `changes`, numbered from `first` in a durable run.
fn number(changes: &mut Vec<(Option<u64>, Change)>, first: Option<u64>, caused: Vec<Change>) {
    match first {
        Some(first) => changes.extend((first..).map(Some).zip(caused)),
        None => changes.extend(caused.into_iter().map(|c| (None, c))),
    }
}

/// SIGINT and SIGTERM, listened to for the whole run: the run stops after the batch at
/// hand, with a checkpoint.
struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn listen() -> Result<Shutdown, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| signal(kind).map_err(|e| format!("cannot listen to signals: {e}"));
            Ok(Shutdown {
                interrupt: listen(SignalKind::interrupt())?,
                terminate: listen(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Shutdown {})
    }

    async fn requested(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The reader of the events, to learn at the end of the input whether it ended well.
enum Reader {
    Thread(std::thread::JoinHandle<Result<(), String>>),
    Task(tokio::task::JoinHandle<Result<(), String>>),
}

impl Reader {
    async fn finish(self) -> Result<(), String> {
        match self {
            Reader::Thread(thread) => tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|_| "the events reader stopped unexpectedly".to_string())?,
            Reader::Task(task) => task.await.map_err(|e| e.to_string())?,
        }
    }
}
