//! `segql cluster`: a Ballista scheduler or executor in this process, so a cluster for
//! `--engine ballista://HOST:PORT` needs no other program.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use segql::engine::{self, DEFAULT_BALLISTA_PORT};

/// One node of a Ballista cluster.
#[derive(Subcommand)]
pub enum Node {
    /// Run a scheduler: it plans the stages of each query and hands tasks to executors
    Scheduler {
        /// The address to listen on
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// The port clients (`--engine ballista://HOST:PORT`) and executors connect to
        #[arg(long, default_value_t = DEFAULT_BALLISTA_PORT)]
        port: u16,
    },
    /// Run an executor: it runs tasks and serves their results to other executors
    Executor(ExecutorSettings),
}

#[derive(clap::Args)]
pub struct ExecutorSettings {
    /// The scheduler to register with, as HOST:PORT
    #[arg(long, default_value_t = format!("127.0.0.1:{DEFAULT_BALLISTA_PORT}"))]
    scheduler: String,
    /// The address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// The port of the executor's Arrow Flight service (task results)
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// The port of the executor's gRPC service (tasks from the scheduler)
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once (default: the number of cores)
    #[arg(long, value_name = "N")]
    slots: Option<usize>,
    /// Where shuffle files are written (default: a temporary directory)
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Memory all tasks together may use, e.g. 4GiB; operators spill beyond it
    /// (default: a share of the machine's memory)
    #[arg(long, value_name = "SIZE", value_parser = super::parse_size)]
    memory_limit: Option<usize>,
}

/// Runs `node` until it is stopped (Ctrl-C or SIGTERM).
pub async fn run(node: Node) -> ExitCode {
    let result = match node {
        Node::Scheduler { bind, port } => scheduler(&bind, port).await,
        Node::Executor(settings) => executor(settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn scheduler(bind: &str, port: u16) -> Result<(), String> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;

    let address: SocketAddr = format!("{bind}:{port}").parse().map_err(|_| {
        format!("`{bind}:{port}` is not an address to listen on; give `--bind` an IP address")
    })?;
    let config = SchedulerConfig {
        bind_host: bind.to_string(),
        bind_port: port,
        // Plans come configured by the client; executors get the client's settings.
        ..SchedulerConfig::default()
    }
    .with_override_config_producer(Arc::new(|| {
        engine::configure(ballista_core::utils::default_config_producer())
    }));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| format!("cannot start the scheduler: {e}"))?;
    eprintln!("segql cluster: scheduler listening on {address}");
    ballista_scheduler::scheduler_process::start_server(cluster, address, Arc::new(config))
        .await
        .map_err(|e| format!("the scheduler on {address} stopped: {e}"))
}

async fn executor(settings: ExecutorSettings) -> Result<(), String> {
    use ballista_core::registry::BallistaFunctionRegistry;
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    use datafusion::execution::SessionStateBuilder;

    let (scheduler_host, scheduler_port) = settings
        .scheduler
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| {
            format!(
                "`{}` is not a scheduler address; write HOST:PORT, e.g. 127.0.0.1:{DEFAULT_BALLISTA_PORT}",
                settings.scheduler
            )
        })?;
    let work_dir = match settings.work_dir {
        Some(dir) => Some(
            dir.to_str()
                .ok_or_else(|| format!("`{}` is not a UTF-8 path", dir.display()))?
                .to_string(),
        ),
        None => None,
    };
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: settings.bind.clone(),
        port: settings.port,
        grpc_port: settings.grpc_port,
        scheduler_host,
        scheduler_port,
        // Wait for a scheduler that is still starting instead of failing at once.
        scheduler_connect_timeout_seconds: 30,
        vcores: settings.slots.unwrap_or(defaults.vcores).max(1),
        work_dir,
        memory_pool_size: settings.memory_limit.map(|bytes| bytes as u64),
        override_config_producer: Some(Arc::new(|| {
            engine::configure(ballista_core::utils::default_config_producer())
        })),
        // Ballista's default registry lacks DataFusion's list functions (`array_has_any`
        // for `has any`, ...), and tasks using them would be rejected: take every
        // function a default DataFusion session has.
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(
            &SessionStateBuilder::new().with_default_features().build(),
        ))),
        ..defaults
    };
    eprintln!(
        "segql cluster: executor on {}:{} (gRPC {}) registering with {}",
        settings.bind, settings.port, settings.grpc_port, settings.scheduler
    );
    start_executor_process(Arc::new(config)).await.map_err(|e| {
        format!(
            "the executor on {}:{} stopped: {e}",
            settings.bind, settings.port
        )
    })
}
