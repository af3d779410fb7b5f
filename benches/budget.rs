//! Budget enforcement benchmark, through the real `EntryStore` actor: one
//! over-budget check of a run of 1,000 / 10,000 visible entries and the
//! demotion that follows. Each iteration materializes (reads the model
//! context, assembles, saves `turn_context`), checks the ceiling, runs
//! `demoteTurnEntries` (nothing promoted this turn), falls back to
//! `demoteRunVisibleEntries`, then re-materializes and re-checks. The
//! entries are made visible again between iterations, outside the timing.
//!
//! Run: `cargo bench --bench budget`

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use rummy::context::budget::compute_budget;
use rummy::context::{assemble, derive_rows, PacketInput};
use rummy::store::schemes::{bootstrap_schemes, RegisterSchemes};
use rummy::store::{
    ChangeVisibility, CreateRun, DemoteRunVisibleEntries, DemoteTurnEntries, EnqueueLoop,
    EntryWrite, ModelContext, SaveTurnContext, SetEntry, Store, UpsertProject, Writer,
};
use rummy::tools::{Mode, ToolRegistry, ToolSet};

const CONTEXT_SIZE: i64 = 32_768;

struct Bench {
    _dir: tempfile::TempDir,
    system: actix::SystemRunner,
    store: Store,
    run_id: i64,
    loop_id: i64,
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
            // Notes, files and action records, all promoted in earlier turns.
            let path = match i % 3 {
                0 => format!("known://topic_{}/fact_{i}", i % 50),
                1 => format!("src/module_{}/file_{i}.rs", i % 50),
                _ => format!("log://turn_{}/set/known%3A//topic_{i}", 1 + i % 5),
            };
            store
                .run(SetEntry(EntryWrite {
                    body: Some(format!(
                        "fact number {i} about topic {} and more text to weigh",
                        i % 50
                    )),
                    visibility: Some("visible".into()),
                    turn: 1 + (i as i64 % 5),
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
    }
}

/// Materializes and checks; returns whether the packet fits.
async fn check(b: &Bench, tools: &ToolRegistry) -> bool {
    let rows = b.store.run(ModelContext(b.run_id)).await.expect("rows");
    let rows = derive_rows(&rows, tools, 2.0);
    let packet = assemble(&PacketInput {
        rows: &rows,
        tools,
        tool_set: ToolSet::new(Mode::Ask, false),
        persona: None,
        context_size: Some(CONTEXT_SIZE),
        budget_ceiling: 0.9,
        token_divisor: 2.0,
        turn: 6,
        usage_floor: 0,
    });
    b.store
        .run(SaveTurnContext {
            run_id: b.run_id,
            loop_id: b.loop_id,
            turn: 6,
            rows: packet.rows,
            token_divisor: 2.0,
            saved: None,
        })
        .await
        .expect("save");
    compute_budget(CONTEXT_SIZE, 0.9, packet.total_tokens).ok
}

fn check_and_demote(c: &mut Criterion) {
    let tools = ToolRegistry::builtin();
    let mut group = c.benchmark_group("budget check + demotion");
    group.sample_size(10);
    for n in [1_000usize, 10_000] {
        let b = setup(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter_batched(
                || {
                    b.system
                        .block_on(b.store.run(ChangeVisibility {
                            run_id: b.run_id,
                            pattern: "**".into(),
                            body_filter: None,
                            visibility: "visible".into(),
                            promote_turn: None,
                        }))
                        .expect("re-promote");
                },
                |()| {
                    b.system.block_on(async {
                        assert!(!check(&b, &tools).await, "the run starts over budget");
                        let own = b
                            .store
                            .run(DemoteTurnEntries {
                                run_id: b.run_id,
                                turn: 6,
                            })
                            .await
                            .expect("turn demotion");
                        assert!(own.is_empty());
                        let all = b
                            .store
                            .run(DemoteRunVisibleEntries { run_id: b.run_id })
                            .await
                            .expect("run-wide demotion");
                        assert_eq!(all.len(), n);
                        check(&b, &tools).await
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, check_and_demote);
criterion_main!(benches);
