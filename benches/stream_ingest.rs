//! Streamed output ingest with other store operations interleaved: after
//! every 4 KiB chunk another operation runs (a read of another entry of the
//! same run, and one write to another run), and every 200 chunks a reader
//! reads the stream itself (flush + read, as `getEntries` does).
//!
//! * `per_chunk_append`: each chunk rewrites the channel's body at once
//!   (`AppendEntry`), the cost model of upstream's `body = body || chunk`
//!   and of our earlier fold-before-every-other-operation: quadratic.
//! * `producer`: chunks go through the `StreamProducer` (batched writes
//!   sized to the body): ingest is linear. The stream reads themselves
//!   cost O(body) each (every byte is read again), so they weigh more as
//!   the stream grows.
//! * `producer_unread`: the same without the stream reads: MB/s stays flat.
//!
//! Run: `cargo bench --bench stream_ingest`

use actix::Actor;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rummy::hub::Hub;
use rummy::store::schemes::{bootstrap_schemes, RegisterSchemes};
use rummy::store::streams::OpenChannels;
use rummy::store::{
    AppendEntry, CreateRun, EntryState, EntryWrite, GetEntry, SetEntry, Store, UpsertProject,
    Writer,
};
use rummy::stream::{Acquire, Chunk, Complete, FlushRun, StreamKey, StreamRegistry};
use rummy::tools::ToolRegistry;
use std::time::Duration;

const LOG: &str = "log://turn_1/sh/bench";
const OUT: &str = "sh://turn_1/bench_1";
const CHUNK: usize = 4096;
const READ_EVERY: usize = 200;

struct Bench {
    _dir: tempfile::TempDir,
    system: actix::SystemRunner,
    store: Store,
    streams: actix::Addr<StreamRegistry>,
    run_id: i64,
    other_run: i64,
}

async fn run(store: &Store, project_id: i64, alias: &str) -> i64 {
    store
        .run(CreateRun {
            project_id,
            parent_run_id: None,
            alias: alias.into(),
            model: "fake".into(),
            temperature: None,
            persona: None,
            context_limit: None,
            prompt: "bench".into(),
            flags: serde_json::json!({}),
        })
        .await
        .expect("run")
        .id
}

fn setup() -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let system = actix::System::new();
    let (store, streams, run_id, other_run) = system.block_on(async {
        let conn = rummy::store::db::open(&path, 0).expect("open");
        let store = Store::start(conn, path.clone(), 0);
        let mut schemes = bootstrap_schemes();
        schemes.extend(ToolRegistry::builtin().schemes());
        store.run(RegisterSchemes(schemes)).await.expect("schemes");
        let project_id = store
            .run(UpsertProject {
                name: "bench".into(),
                project_root: "/tmp/bench".into(),
                config_path: None,
            })
            .await
            .expect("project");
        let run_id = run(&store, project_id, "bench_run").await;
        let other_run = run(&store, project_id, "other_run").await;
        for (run, path) in [(run_id, "known://other"), (other_run, "known://busy")] {
            store
                .run(SetEntry(EntryWrite {
                    body: Some("another entry".into()),
                    ..EntryWrite::new(run, path, Writer::Model)
                }))
                .await
                .expect("seed");
        }
        store
            .run(SetEntry(EntryWrite {
                body: Some("ran 'bench' (in progress)".into()),
                state: Some(EntryState::Resolved),
                attributes: Some(serde_json::json!({"command": "bench"})),
                turn: 1,
                ..EntryWrite::new(run_id, LOG, Writer::Model)
            }))
            .await
            .expect("log entry");
        store
            .run(OpenChannels {
                run_id,
                log_path: LOG.into(),
                command: "bench".into(),
                turn: 2,
            })
            .await
            .expect("channels");
        let hub = Hub::with_change_feed(store.addr().clone().recipient()).start();
        let streams = StreamRegistry::new(store.clone(), hub, 2.0).start();
        (store, streams, run_id, other_run)
    });
    Bench {
        _dir: dir,
        system,
        store,
        streams,
        run_id,
        other_run,
    }
}

/// The operations between two chunks: a read in the streaming run and a
/// write in another run (what a concurrent turn does).
async fn interleave(b: &Bench, i: usize) {
    b.store
        .run(GetEntry {
            run_id: b.run_id,
            path: "known://other".into(),
        })
        .await
        .expect("read");
    b.store
        .run(SetEntry(EntryWrite {
            body: Some(format!("busy {i}")),
            ..EntryWrite::new(b.other_run, "known://busy", Writer::Model)
        }))
        .await
        .expect("other run");
}

async fn read_stream(b: &Bench) -> usize {
    b.streams
        .send(FlushRun {
            run_id: Some(b.run_id),
        })
        .await
        .expect("flush");
    b.store
        .run(GetEntry {
            run_id: b.run_id,
            path: OUT.into(),
        })
        .await
        .expect("read")
        .expect("channel")
        .body
        .len()
}

fn ingest(c: &mut Criterion) {
    let chunk = "x".repeat(CHUNK);
    let mut group = c.benchmark_group("stream_ingest");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_millis(500));
    for chunks in [250usize, 500, 1000] {
        group.throughput(Throughput::Bytes((chunks * CHUNK) as u64));
        group.bench_with_input(
            BenchmarkId::new("per_chunk_append", chunks),
            &chunks,
            |bench, &chunks| {
                bench.iter_batched(
                    setup,
                    |b| {
                        b.system.block_on(async {
                            for i in 0..chunks {
                                b.store
                                    .run(AppendEntry {
                                        run_id: b.run_id,
                                        path: OUT.into(),
                                        chunk: chunk.clone(),
                                        writer: Writer::Plugin,
                                    })
                                    .await
                                    .expect("append");
                                interleave(&b, i).await;
                                if (i + 1) % READ_EVERY == 0 {
                                    read_stream(&b).await;
                                }
                            }
                            assert_eq!(read_stream(&b).await, chunks * CHUNK);
                        })
                    },
                    criterion::BatchSize::PerIteration,
                )
            },
        );
    }
    for (name, reads) in [("producer", true), ("producer_unread", false)] {
        for chunks in [250usize, 500, 1000, 2000, 4000] {
            group.throughput(Throughput::Bytes((chunks * CHUNK) as u64));
            group.bench_with_input(BenchmarkId::new(name, chunks), &chunks, |bench, &chunks| {
                bench.iter_batched(
                    setup,
                    |b| {
                        b.system.block_on(async {
                            let producer = b
                                .streams
                                .send(Acquire {
                                    key: StreamKey {
                                        run_id: b.run_id,
                                        log_path: LOG.into(),
                                    },
                                })
                                .await
                                .expect("registry")
                                .expect("open stream");
                            for i in 0..chunks {
                                producer
                                    .send(Chunk {
                                        channel: 1,
                                        bytes: chunk.clone().into_bytes(),
                                    })
                                    .await
                                    .expect("mailbox")
                                    .expect("chunk");
                                interleave(&b, i).await;
                                if reads && (i + 1) % READ_EVERY == 0 {
                                    assert_eq!(read_stream(&b).await, (i + 1) * CHUNK);
                                }
                            }
                            producer
                                .send(Complete {
                                    exit_code: 0,
                                    duration: None,
                                })
                                .await
                                .expect("mailbox")
                                .expect("complete");
                            assert_eq!(read_stream(&b).await, chunks * CHUNK);
                        })
                    },
                    criterion::BatchSize::PerIteration,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
