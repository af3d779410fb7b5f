//! Load driver (issue 14): the real server in-process, a zero-latency
//! fake OpenAI provider in-process, and clients over real WebSockets.
//!
//! `cargo bench --bench load -- [turns|concurrent|memory|all]`
//!
//! Scenarios:
//! - `turns`: one run of 60, 200 and 1,000 turns; wall time and process
//!   CPU time (utime + stime from `/proc/self/stat`) per turn;
//! - `concurrent`: 10, 50 and 200 runs × 5 turns at once, 20 ms provider
//!   delay; turns per second and peak RSS (`VmHWM`, reset before each batch
//!   through `/proc/self/clear_refs` where the kernel allows);
//! - `memory`: `VmRSS` growth per idle connected client and per idle run.
//!
//! The driver, the fake and the server share the process (and its CPU
//! figures). Each measurement gets a fresh server and database, so earlier
//! rows do not weigh on later ones.

mod client;
mod fake;
mod procfs;

use std::time::{Duration, Instant};

use client::Client;
use fake::Fake;

const MAX_TURNS: u64 = 2_000;

/// One fresh server on 127.0.0.1:0 with its own temporary home.
struct Rig {
    _home: tempfile::TempDir,
    server: rummy::ServerHandle,
    addr: std::net::SocketAddr,
    roots: std::path::PathBuf,
}

async fn rig(fake: &Fake) -> Rig {
    let home = tempfile::tempdir().expect("temp dir");
    let vars = [
        ("RUMMY_HOME", home.path().to_string_lossy().into_owned()),
        (
            "RUMMY_DB_PATH",
            home.path().join("rummy.db").to_string_lossy().into_owned(),
        ),
        ("PORT", "0".into()),
        ("OPENAI_BASE_URL", format!("http://{}", fake.addr)),
        ("RUMMY_MODEL_fake", "openai/fake-model".into()),
        ("RUMMY_CONTEXT_fake", fake::CONTEXT_LENGTH.to_string()),
        ("RUMMY_MAX_TURNS", MAX_TURNS.to_string()),
        ("RUMMY_FETCH_TIMEOUT", "300000".into()),
        ("RUMMY_RPC_TIMEOUT", "300000".into()),
    ];
    let config = rummy::Config::from_vars(vars.map(|(k, v)| (k.to_string(), v)))
        .expect("driver config is valid");
    let server = rummy::Server::start(config, rummy::StartOptions::default())
        .await
        .expect("server starts");
    let addr = server.local_addr.expect("server listens");
    let roots = home.path().join("projects");
    Rig {
        _home: home,
        server,
        addr,
        roots,
    }
}

impl Rig {
    /// A connected client that said hello for its own project.
    async fn client(&self, project: &str) -> Client {
        let root = self.roots.join(project);
        std::fs::create_dir_all(&root).expect("project dir");
        let mut c = Client::connect(self.addr).await;
        c.hello(project, &root.to_string_lossy()).await;
        c
    }
}

static NEXT_RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Starts a run that lasts `turns` turns and waits for its end.
async fn drive(c: &mut Client, turns: u64) {
    let id = NEXT_RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let alias = c
        .start_run(&format!("load_{id}"), &format!("loadrun-{id}-{turns}"))
        .await;
    let (status, turn) = c.wait_end(&alias).await;
    assert_eq!(status, 200, "run {alias} ended with status {status}");
    assert_eq!(turn, turns, "run {alias} ended at turn {turn}");
}

struct Row {
    figure: String,
    value: String,
}

fn row(rows: &mut Vec<Row>, figure: impl Into<String>, value: impl Into<String>) {
    let (figure, value) = (figure.into(), value.into());
    eprintln!("  {figure}: {value}");
    rows.push(Row { figure, value });
}

/// The run lengths of `turns`: 60, 200 and 1,000, or the comma-separated
/// list in `LOAD_TURNS` (shorter rounds while profiling).
fn turn_counts() -> Vec<u64> {
    std::env::var("LOAD_TURNS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<u64>| !v.is_empty())
        .unwrap_or_else(|| vec![60, 200, 1_000])
}

async fn turns(fake: &Fake, rows: &mut Vec<Row>) {
    fake.set_delay(Duration::ZERO);
    let mut first = None;
    for n in turn_counts() {
        let rig = rig(fake).await;
        let mut c = rig.client("turns").await;
        let cpu0 = procfs::cpu_seconds();
        let t0 = Instant::now();
        drive(&mut c, n).await;
        let wall = t0.elapsed().as_secs_f64() * 1000.0 / n as f64;
        let cpu = (procfs::cpu_seconds() - cpu0) * 1000.0 / n as f64;
        let base = *first.get_or_insert(wall);
        row(
            rows,
            format!("per-turn, {n}-turn run"),
            format!(
                "{wall:.2} ms wall, {cpu:.2} ms CPU ({:.2}x the 60-turn wall)",
                wall / base
            ),
        );
        c.close().await;
        rig.server.stop().await;
    }
}

async fn concurrent(fake: &Fake, rows: &mut Vec<Row>) {
    fake.set_delay(Duration::from_millis(20));
    for runs in [10usize, 50, 200] {
        let rig = rig(fake).await;
        let mut clients = Vec::with_capacity(runs);
        for i in 0..runs {
            clients.push(rig.client(&format!("c{i}")).await);
        }
        let reset = procfs::reset_peak();
        let cpu0 = procfs::cpu_seconds();
        let t0 = Instant::now();
        futures_util::future::join_all(clients.iter_mut().map(|c| drive(c, 5))).await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = procfs::cpu_seconds() - cpu0;
        let turns = (runs * 5) as f64;
        row(
            rows,
            format!("{runs} runs x 5 turns, 20 ms provider"),
            format!(
                "{:.0} turns/s ({:.2} ms CPU per turn), peak RSS {:.1} MB{}",
                turns / secs,
                cpu * 1000.0 / turns,
                procfs::peak_rss_kb() as f64 / 1024.0,
                if reset {
                    ""
                } else {
                    " (process peak; reset refused)"
                }
            ),
        );
        for c in clients {
            c.close().await;
        }
        rig.server.stop().await;
    }
    fake.set_delay(Duration::ZERO);
}

async fn memory(fake: &Fake, rows: &mut Vec<Row>) {
    fake.set_delay(Duration::ZERO);
    let rig = rig(fake).await;
    // Warm up allocator arenas and lazy statics so they do not count.
    let mut warm = rig.client("warm").await;
    drive(&mut warm, 2).await;
    const CLIENTS: usize = 500;
    let before = procfs::rss_kb();
    let mut idle = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        idle.push(rig.client(&format!("idle{i}")).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_client = (procfs::rss_kb() as f64 - before as f64) / CLIENTS as f64;
    row(
        rows,
        format!("RSS per idle connected client ({CLIENTS} clients)"),
        format!("{per_client:.1} KB"),
    );
    const RUNS: u64 = 200;
    let before = procfs::rss_kb();
    for _ in 0..RUNS {
        drive(&mut warm, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_run = (procfs::rss_kb() as f64 - before as f64) / RUNS as f64;
    row(
        rows,
        format!("RSS per idle (finished) run ({RUNS} one-turn runs)"),
        format!("{per_run:.1} KB"),
    );
    for c in idle {
        c.close().await;
    }
    warm.close().await;
    rig.server.stop().await;
}

fn main() {
    // `cargo bench` passes `--bench`; anything else names a scenario.
    let scenario = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "all".into());
    let system = actix::System::new();
    let rows = system.block_on(async {
        let fake = Fake::start().expect("fake provider starts");
        let mut rows = Vec::new();
        let all = scenario == "all";
        if all || scenario == "turns" {
            eprintln!("turns:");
            turns(&fake, &mut rows).await;
        }
        if all || scenario == "concurrent" {
            eprintln!("concurrent:");
            concurrent(&fake, &mut rows).await;
        }
        if all || scenario == "memory" {
            eprintln!("memory:");
            memory(&fake, &mut rows).await;
        }
        row(
            &mut rows,
            "peak RSS of the whole driver process",
            format!("{:.1} MB", procfs::peak_rss_kb() as f64 / 1024.0),
        );
        fake.stop().await;
        rows
    });
    let width = rows.iter().map(|r| r.figure.len()).max().unwrap_or(0);
    println!("| {:width$} | measured |", "figure");
    println!("|{}|----------|", "-".repeat(width + 2));
    for r in rows {
        println!("| {:width$} | {} |", r.figure, r.value);
    }
}
