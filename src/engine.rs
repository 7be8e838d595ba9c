//! Where plans run: in this process, or on an Apache Ballista cluster.
//!
//! Both engines take the same logical plans; [`context`] gives the DataFusion context a
//! [`crate::Session`] registers its tables in and executes through. On Ballista the
//! optimized plan travels to the executors through datafusion-proto, so every table must be
//! a file source at a path each executor can read (the catalog's sources always are) and
//! every function must be a DataFusion built-in (SegQL's are: `geo_distance_km` and the
//! other functions are lowered to built-in expressions).

use std::fmt;
use std::str::FromStr;

use datafusion::prelude::{SessionConfig, SessionContext};

use crate::diagnostic::Diagnostic;

/// The scheme of a Ballista scheduler address.
const BALLISTA_SCHEME: &str = "ballista://";
/// The port a Ballista scheduler listens on unless told otherwise.
pub const DEFAULT_BALLISTA_PORT: u16 = 50050;

/// An execution engine, as given to `--engine`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    /// DataFusion in this process (`local`).
    #[default]
    Local,
    /// The Ballista scheduler at `host:port` (`ballista://HOST[:PORT]`).
    Ballista { host: String, port: u16 },
}

impl FromStr for Engine {
    type Err = String;

    fn from_str(text: &str) -> Result<Engine, String> {
        if text == "local" {
            return Ok(Engine::Local);
        }
        let Some(address) = text.strip_prefix(BALLISTA_SCHEME) else {
            return Err(format!(
                "unknown engine `{text}`: use `local` or `ballista://HOST:PORT`"
            ));
        };
        let address = address.trim_end_matches('/');
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => {
                let port = port.parse::<u16>().map_err(|_| {
                    format!("`{port}` in `{text}` is not a port number: use `ballista://HOST:PORT`")
                })?;
                (host, port)
            }
            None => (address, DEFAULT_BALLISTA_PORT),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "`{text}` names no scheduler host: use `ballista://HOST:PORT`"
            ));
        }
        Ok(Engine::Ballista {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::Ballista { host, port } => write!(f, "{BALLISTA_SCHEME}{host}:{port}"),
        }
    }
}

/// The settings SegQL evaluates best with, whichever engine runs the plans:
/// - Parquet strings are read as plain `Utf8`, not `Utf8View`. With the wide profiles on
///   a hash join's build side, view arrays referring to every buffer of the joined table
///   once made a 50-segment count quadratic. Plans in this process read views again
///   ([`configure_local`]); Ballista's, measured only with `Utf8`, do not.
/// - Joins keep the sides the planner chose. DataFusion would swap a measure relation to
///   the probe side when its row estimate (the events it aggregates) exceeds the
///   profiles', and then build its hash table on the wide profiles.
/// - Tables carry no statistics. With them, DataFusion estimates each filter's selectivity
///   from the files' value ranges, and for some time comparisons (`year(ts) >= 2020` on
///   millisecond times) its floating-point estimate exceeded 1 and it rejected the plan.
///   The joins keep their sides anyway; Parquet still prunes row groups by their ranges.
pub fn configure(config: SessionConfig) -> SessionConfig {
    config
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.optimizer.join_reordering", false)
        .set_bool("datafusion.execution.collect_statistics", false)
}

/// [`configure`], plus what suits evaluations in this process: a hash join collects its
/// build side (a measure relation) into one table that every partition of its probe side
/// (the profiles) reads, instead of repartitioning both sides by key. The profiles then
/// stream from their scan without being hashed and copied between partitions: on the
/// segment benchmark at 1M profiles, the 50 segments one at a time took 4% less time in
/// all, and short ones up to 22% less (BENCHMARKS.md). Plans with many joins still
/// repartition them ([`crate::exec::state_for`]), and so do plans for a cluster, where one
/// task collecting a build side would be a bottleneck.
///
/// Parquet strings are read as `Utf8View`: decoding a dictionary-encoded column then
/// refers to the dictionary's bytes instead of copying them into every batch, and
/// comparisons and grouping read a string's first bytes inline. Counting the benchmark's
/// 50 segments took 6–8% less CPU, single segments up to 20% less, and a plan of four
/// hash joins with string measures on their build sides no more (BENCHMARKS.md).
pub fn configure_local(config: SessionConfig) -> SessionConfig {
    configure(config)
        .set_bool("datafusion.optimizer.repartition_joins", false)
        .set_bool("datafusion.execution.parquet.schema_force_view_types", true)
}

/// A context evaluating on `engine`; `memory_limit` bounds in-process evaluations.
pub async fn context(
    engine: &Engine,
    memory_limit: Option<usize>,
) -> Result<SessionContext, Diagnostic> {
    match engine {
        Engine::Local => Ok(crate::new_context_with_memory_limit(memory_limit)),
        Engine::Ballista { .. } if memory_limit.is_some() => Err(Diagnostic::error(
            "E0410",
            format!("`--memory-limit` applies to evaluations in this process, not on `{engine}`"),
        )
        .with_help(
            "drop `--memory-limit`, and bound each executor's memory where it starts (`segql-ballista executor --memory-limit SIZE`)",
        )),
        Engine::Ballista { host, port } => ballista_context(engine, host, *port).await,
    }
}

#[cfg(feature = "ballista")]
async fn ballista_context(
    engine: &Engine,
    host: &str,
    port: u16,
) -> Result<SessionContext, Diagnostic> {
    use ballista::prelude::{SessionConfigExt, SessionContextExt};
    use datafusion::execution::SessionStateBuilder;

    let unreachable = |detail: String| {
        Diagnostic::error(
            "E0410",
            format!("cannot reach the Ballista scheduler at `{engine}`: {detail}"),
        )
        .with_help(
            "start a scheduler and executors first (see docs/scaling.md), or check the host and port",
        )
    };
    // Connect once up front: the context itself connects lazily, and a wrong address
    // would otherwise surface as a failed query.
    let address = format!("{host}:{port}");
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect(&address),
    )
    .await
    .map_err(|_| unreachable("no answer within 10 s".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let state = SessionStateBuilder::new()
        .with_config(configure(SessionConfig::new_with_ballista()))
        .with_default_features()
        .build();
    SessionContext::remote_with_state(&format!("df://{address}"), state)
        .await
        .map_err(|e| unreachable(e.to_string()))
}

#[cfg(not(feature = "ballista"))]
async fn ballista_context(
    engine: &Engine,
    _host: &str,
    _port: u16,
) -> Result<SessionContext, Diagnostic> {
    Err(Diagnostic::error(
        "E0410",
        format!("this segql was built without Ballista support, so it cannot run on `{engine}`"),
    )
    .with_help("build it with `cargo build --release --features ballista`"))
}

/// The stack of each runtime worker thread `segql` starts. Planning, encoding and
/// executing the plan of many segments at once recurse with its depth, beyond tokio's
/// default 2 MiB in unoptimized builds.
pub const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

/// A Ballista cluster in this process (a scheduler and an executor with `parallelism`
/// task slots), configured as [`context`] configures remote ones. For tests and trials.
#[cfg(feature = "ballista")]
pub async fn standalone_ballista_context(parallelism: usize) -> Result<SessionContext, Diagnostic> {
    use ballista::prelude::{SessionConfigExt, SessionContextExt};
    use datafusion::execution::SessionStateBuilder;

    let config = configure(SessionConfig::new_with_ballista())
        .with_ballista_standalone_parallelism(parallelism);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    SessionContext::standalone_with_state(state)
        .await
        .map_err(|e| crate::internal_error(&format!("cannot start a Ballista cluster: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_from_their_names() {
        assert_eq!("local".parse::<Engine>(), Ok(Engine::Local));
        assert_eq!(
            "ballista://10.0.0.5:50070".parse::<Engine>(),
            Ok(Engine::Ballista {
                host: "10.0.0.5".into(),
                port: 50070
            })
        );
        assert_eq!(
            "ballista://scheduler/".parse::<Engine>(),
            Ok(Engine::Ballista {
                host: "scheduler".into(),
                port: DEFAULT_BALLISTA_PORT
            })
        );
        assert_eq!(
            "ballista://h:1".parse::<Engine>().map(|e| e.to_string()),
            Ok("ballista://h:1".to_string())
        );
    }

    #[test]
    fn bad_engines_say_what_to_write() {
        for (text, expected) in [
            ("spark://x", "unknown engine `spark://x`"),
            ("ballista://", "names no scheduler host"),
            ("ballista://:50050", "names no scheduler host"),
            (
                "ballista://h:port",
                "`port` in `ballista://h:port` is not a port number",
            ),
            ("ballista://h:99999", "is not a port number"),
        ] {
            let error = text.parse::<Engine>().expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[tokio::test]
    async fn memory_limits_are_for_local_runs() {
        let engine = Engine::Ballista {
            host: "127.0.0.1".into(),
            port: 1,
        };
        let Err(error) = context(&engine, Some(1 << 30)).await else {
            panic!("a memory limit was accepted for Ballista");
        };
        assert_eq!(error.code, "E0410");
        assert!(
            error.message.contains("--memory-limit"),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn an_unreachable_or_unbuilt_engine_is_a_diagnostic() {
        let engine = Engine::Ballista {
            host: "127.0.0.1".into(),
            port: 1,
        };
        let Err(error) = context(&engine, None).await else {
            panic!("port 1 answered");
        };
        assert_eq!(error.code, "E0410");
        let expected = if cfg!(feature = "ballista") {
            "cannot reach the Ballista scheduler at `ballista://127.0.0.1:1`"
        } else {
            "built without Ballista support"
        };
        assert!(error.message.contains(expected), "{}", error.message);
    }
}
