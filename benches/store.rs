//! Entry store benchmarks, through the real `EntryStore` actor (message
//! passing included): set/get throughput, a pattern query over 10,000
//! entries, materializing the model-visible rows of runs of 100 / 1,000 /
//! 10,000 entries. Streamed output ingest is measured in `stream_ingest`.
//!
//! Run: `cargo bench --bench store`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rummy::context::project_rows;
use rummy::store::schemes::{bootstrap_schemes, RegisterSchemes};
use rummy::store::{
    CreateRun, EntryWrite, GetEntry, ModelContext, QueryEntries, SetEntry, Store, UpsertProject,
    Writer,
};
use rummy::tools::ToolRegistry;

struct Bench {
    _dir: tempfile::TempDir,
    system: actix::SystemRunner,
    store: Store,
    run_id: i64,
}

fn setup(entries: usize) -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let system = actix::System::new();
    let store = system.block_on(async {
        let conn = rummy::store::db::open(&path, 0).expect("open");
        let store = Store::start(conn, path.clone(), 0);
        let mut schemes = bootstrap_schemes();
        schemes.extend(ToolRegistry::builtin().schemes());
        store.run(RegisterSchemes(schemes)).await.expect("schemes");
        store
    });
    let run_id = system.block_on(async {
        let project_id = store
            .run(UpsertProject {
                name: "bench".into(),
                project_root: "/tmp/bench".into(),
                config_path: None,
            })
            .await
            .expect("project");
        let run = store
            .run(CreateRun {
                project_id,
                parent_run_id: None,
                alias: "bench_run".into(),
                model: "fake".into(),
                temperature: None,
                persona: None,
                context_limit: None,
                prompt: "bench".into(),
                flags: serde_json::json!({}),
            })
            .await
            .expect("run");
        for i in 0..entries {
            let visibility = if i % 3 == 0 { "visible" } else { "summarized" };
            store
                .run(SetEntry(EntryWrite {
                    body: Some(format!(
                        "fact number {i} about topic {} and more text",
                        i % 50
                    )),
                    visibility: Some(visibility.into()),
                    turn: 1,
                    ..EntryWrite::new(
                        run.id,
                        format!("known://topic_{}/fact_{i}", i % 50),
                        Writer::Model,
                    )
                }))
                .await
                .expect("seed");
        }
        run.id
    });
    Bench {
        _dir: dir,
        system,
        store,
        run_id,
    }
}

fn set_and_get(c: &mut Criterion) {
    let b = setup(1000);
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    group.bench_function("set", |bench| {
        bench.iter(|| {
            n += 1;
            b.system
                .block_on(b.store.run(SetEntry(EntryWrite {
                    body: Some(format!("value {n}")),
                    ..EntryWrite::new(b.run_id, format!("known://set/{}", n % 500), Writer::Model)
                })))
                .expect("set")
        })
    });
    group.bench_function("get", |bench| {
        bench.iter(|| {
            b.system
                .block_on(b.store.run(GetEntry {
                    run_id: b.run_id,
                    path: "known://topic_7/fact_507".into(),
                }))
                .expect("get")
        })
    });
    group.finish();
}

fn pattern_query(c: &mut Criterion) {
    let b = setup(10_000);
    c.bench_function("pattern query over 10000 entries", |bench| {
        bench.iter(|| {
            b.system
                .block_on(b.store.run(QueryEntries {
                    run_id: b.run_id,
                    pattern: "known://topic_1*/**".into(),
                    body_filter: Some("*number 1*".into()),
                    scheme: None,
                    state: None,
                    visibility: None,
                    token_divisor: 2.0,
                }))
                .expect("query")
        })
    });
}

fn materialize(c: &mut Criterion) {
    let tools = ToolRegistry::builtin();
    let mut group = c.benchmark_group("materialize");
    group.sample_size(20);
    for n in [100usize, 1_000, 10_000] {
        let b = setup(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                let rows = b
                    .system
                    .block_on(b.store.run(ModelContext(b.run_id)))
                    .expect("rows");
                project_rows(&rows, &tools, 2.0)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, set_and_get, pattern_query, materialize);
criterion_main!(benches);
