//! The same plans on an Apache Ballista cluster: every demo, benchmark and construct-corpus
//! segment, and the one-pass count of all of them, run on a Ballista cluster in this
//! process (a scheduler and an executor talking over gRPC on loopback, the plans shipped
//! through datafusion-proto) and in process; the members must be identical.
//! `scripts/ballista_cluster.sh` does the same against separate scheduler and executor
//! processes. Needs `--features ballista`.
#![cfg(feature = "ballista")]

mod common;

use std::path::Path;

use datafusion::prelude::SessionContext;
use segql::Session;
use segql::catalog::Catalog;
use segql::diagnostic::SourceMap;

const FILES: [&str; 5] = [
    "examples/shop/segments.seg",
    "bench/segments.seg",
    "tests/sql/constructs.seg",
    "tests/sql/rankings.seg",
    "tests/sql/sequences.seg",
];

/// The demo catalog registered in `ctx`.
async fn session(ctx: SessionContext) -> Session {
    let mut sources = SourceMap::new();
    let catalog = Catalog::load(Path::new("examples/shop/segql.toml"), &mut sources)
        .expect("the demo catalog loads");
    Session::with_context(catalog, ctx, sources, true)
        .await
        .expect("the demo tables register")
}

/// `session` with the segments of `file` alone (the files reuse names).
fn load(session: &mut Session, file: &str) {
    session.clear_sources();
    session
        .add_file(Path::new(file))
        .unwrap_or_else(|r| panic!("{file} checks:\n{r}"));
}

/// Ballista's scheduler and executors run as tasks of this runtime. Unoptimized builds
/// need more than tokio's default 2 MiB of stack to plan and encode the one-pass count of
/// every segment (as `segql` gives its own runtime's threads).
fn cluster_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(segql::engine::WORKER_STACK_BYTES)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn every_segment_has_the_same_members_on_ballista() {
    cluster_runtime().block_on(every_segment_has_the_same_members());
}

async fn every_segment_has_the_same_members() {
    let cluster = segql::engine::standalone_ballista_context(2)
        .await
        .expect("a Ballista cluster starts in process");
    let mut local = session(segql::new_context()).await;
    let mut distributed = session(cluster).await;
    let mut compared = 0;
    let mut differing = Vec::new();
    for file in FILES {
        load(&mut local, file);
        load(&mut distributed, file);
        let names = local.program().segment_names();
        for name in &names {
            let expected = common::members(&local, name).await;
            let got = common::members(&distributed, name).await;
            compared += 1;
            if expected != got {
                differing.push(format!(
                    "{file}: {name}: {} members in process, {} on Ballista",
                    expected.len(),
                    got.len()
                ));
            }
        }
        // The listing of every segment in one plan (one row per membership, in segment
        // name and key order): the same rows in the same order.
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let local_listing = common::listing(&local, &names).await;
        let cluster_listing = common::listing(&distributed, &names).await;
        assert!(
            local_listing.windows(2).all(|w| w[0].0 <= w[1].0),
            "{file}: listed in segment name order"
        );
        assert_eq!(
            local_listing, cluster_listing,
            "{file}: every segment listed"
        );
        // The one-pass count of every segment is one plan with every measure: the same too.
        let local_counts = local.counts(&[]).await.expect("count in process");
        let cluster_counts = distributed.counts(&[]).await.expect("count on Ballista");
        assert_eq!(local_counts, cluster_counts, "{file}: counts");
        assert!(
            local_counts.iter().any(|(_, n)| *n > 0),
            "{file}: all empty"
        );
    }
    assert!(differing.is_empty(), "{}", differing.join("\n"));
    assert!(compared > 60, "only {compared} segments compared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_key_check_runs_on_ballista() {
    let cluster = session(
        segql::engine::standalone_ballista_context(1)
            .await
            .expect("a Ballista cluster starts in process"),
    )
    .await;
    cluster
        .check_profile_keys()
        .await
        .expect("the demo's keys are unique");
}
