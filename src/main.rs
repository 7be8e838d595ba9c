//! The `segql` command line.

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// jemalloc instead of the system allocator (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let arguments = cli::Cli::parse();
    // The compiler's stages recurse with the input's nesting; a thread with a stack of that
    // size lets them run without switching stacks (see `diagnostic::with_deep_stack`).
    let stack = segql::diagnostic::DEEP_STACK_BYTES * 2;
    let command = std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .thread_stack_size(segql::engine::WORKER_STACK_BYTES)
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("error: cannot start the runtime: {error}");
                    return ExitCode::from(1);
                }
            };
            runtime.block_on(cli::run(arguments))
        });
    match command.map(|thread| thread.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: segql stopped unexpectedly");
            ExitCode::from(1)
        }
    }
}
