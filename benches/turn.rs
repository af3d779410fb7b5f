//! One turn's server-side work through the real `EntryStore` actor, for a
//! run of 10 / 100 / 1,000 / 10,000 visible entries (issue 14).
//!
//! Each iteration does what a turn does around the provider call, without
//! the call itself: `BeginTurn`, materialize (`CachedModelContext` and the
//! row derivations, kept between iterations as a run keeps them between
//! turns), build the packet (`assemble`), save `turn_context`, write the model's new known
//! entry and its action record (`SetEntry` ×2), record usage, and build the
//! `run/state` report (`ReportRun`). The new entry and its log overwrite
//! the same paths every iteration so the run keeps its size; only the
//! `turns` table grows.
//!
//! Run: `cargo bench --bench turn`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rummy::context::{assemble, DerivedRows, PacketInput};
use rummy::store::schemes::{bootstrap_schemes, RegisterSchemes};
use rummy::store::{
    BeginTurn, CachedModelContext, CreateRun, EnqueueLoop, EntryWrite, RecordTurnUsage, ReportRun,
    SaveTurnContext, SetEntry, SharedContextRows, SharedSavedContext, SharedScanRows, Store,
    TurnUsage, UpsertProject, Writer,
};
use rummy::tools::{Mode, ToolRegistry, ToolSet};
use std::sync::{Arc, Mutex};

/// Large enough that no run here is over budget.
const CONTEXT_SIZE: i64 = 10_000_000;

struct Bench {
    _dir: tempfile::TempDir,
    system: actix::SystemRunner,
    store: Store,
    run_id: i64,
    loop_id: i64,
    context_rows: SharedContextRows,
    derived: Mutex<DerivedRows>,
    scan: SharedScanRows,
    saved: SharedSavedContext,
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
    let (run_id, loop_id) = system.block_on(async {
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
                context_limit: Some(CONTEXT_SIZE),
                prompt: "bench".into(),
                flags: serde_json::json!({}),
            })
            .await
            .expect("run");
        let lp = store
            .run(EnqueueLoop {
                run_id: run.id,
                mode: "ask".into(),
                model: None,
                prompt: "bench".into(),
                config: serde_json::json!({}),
            })
            .await
            .expect("loop");
        for i in 0..entries {
            // Notes and action records, as earlier turns leave them.
            let path = match i % 2 {
                0 => format!("known://note_{i}"),
                _ => format!("log://turn_{}/set/known%3A//note_{}", 1 + i / 2, i - 1),
            };
            store
                .run(SetEntry(EntryWrite {
                    body: Some(format!("fact number {i}: {}", "some detail ".repeat(45))),
                    visibility: Some("visible".into()),
                    turn: 1 + (i as i64 / 2),
                    ..EntryWrite::new(run.id, path, Writer::Plugin)
                }))
                .await
                .expect("seed");
        }
        (run.id, lp.id)
    });
    Bench {
        _dir: dir,
        system,
        store,
        run_id,
        loop_id,
        context_rows: SharedContextRows::default(),
        derived: Mutex::default(),
        scan: SharedScanRows::default(),
        saved: SharedSavedContext::default(),
    }
}

async fn one_turn(b: &Bench, tools: &ToolRegistry) {
    let start = b
        .store
        .run(BeginTurn {
            run_id: b.run_id,
            loop_id: b.loop_id,
        })
        .await
        .expect("begin turn");
    let rows = b
        .store
        .run(CachedModelContext {
            run_id: b.run_id,
            cache: Arc::clone(&b.context_rows),
        })
        .await
        .expect("rows");
    let rows = b.derived.lock().expect("memo").derive(rows, tools, 2.0);
    let packet = assemble(&PacketInput {
        rows: &rows,
        tools,
        tool_set: ToolSet::new(Mode::Ask, false),
        persona: None,
        context_size: Some(CONTEXT_SIZE),
        budget_ceiling: 0.9,
        token_divisor: 2.0,
        turn: start.turn,
        usage_floor: 0,
    });
    criterion::black_box((&packet.system, &packet.user));
    b.store
        .run(SaveTurnContext {
            run_id: b.run_id,
            loop_id: b.loop_id,
            turn: start.turn,
            rows: packet.rows,
            token_divisor: 2.0,
            saved: Some(Arc::clone(&b.saved)),
        })
        .await
        .expect("save");
    for (path, writer) in [
        ("known://bench_note", Writer::Model),
        ("log://turn_bench/set/known%3A//bench_note", Writer::Plugin),
    ] {
        b.store
            .run(SetEntry(EntryWrite {
                body: Some("x".repeat(550)),
                turn: start.turn,
                ..EntryWrite::new(b.run_id, path.to_string(), writer)
            }))
            .await
            .expect("turn write");
    }
    b.store
        .run(RecordTurnUsage {
            turn_id: start.turn_id,
            usage: TurnUsage::default(),
        })
        .await
        .expect("usage");
    let report = b
        .store
        .run(ReportRun {
            run_id: b.run_id,
            turn: start.turn,
            token_divisor: 2.0,
            scan: Some(Arc::clone(&b.scan)),
            saved: Some(Arc::clone(&b.saved)),
        })
        .await
        .expect("report");
    criterion::black_box(report);
}

fn turn(c: &mut Criterion) {
    let tools = ToolRegistry::builtin();
    let mut group = c.benchmark_group("one turn's server-side work");
    group.sample_size(10);
    for n in [10usize, 100, 1_000, 10_000] {
        let b = setup(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| b.system.block_on(one_turn(&b, &tools)))
        });
    }
    group.finish();
}

criterion_group!(benches, turn);
criterion_main!(benches);
