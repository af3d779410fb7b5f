//! Measures how long the yolo command runner takes from `cancel()` until
//! the command's whole process group is gone, for a group that honours
//! SIGTERM and for one that ignores it (SIGKILL after the default 2 s
//! grace). Run: `cargo run --example exec_kill_times`.

use rummy::exec::{self, ExecEvent, ExecLimits, ExecRequest};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const ROUNDS: usize = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let root = std::env::temp_dir();
    for (label, command) in [
        ("SIGTERM honoured", "sleep 300 & echo ready; sleep 300"),
        (
            "SIGTERM ignored ",
            "trap '' TERM; sleep 300 & echo ready; sleep 300",
        ),
    ] {
        let mut gone = Vec::new();
        let mut finished = Vec::new();
        for _ in 0..ROUNDS {
            let (g, f) = measure(command, &root).await;
            gone.push(g);
            finished.push(f);
        }
        println!(
            "{label}: cancel -> group gone {} | cancel -> Finished event {}",
            summary(&mut gone),
            summary(&mut finished)
        );
    }
}

/// (cancel -> no live process in the group, cancel -> Finished received)
async fn measure(command: &str, root: &std::path::Path) -> (Duration, Duration) {
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(ExecRequest::new(command, root), ExecLimits::default(), tx);
    let Some(pgid) = handle.pid() else {
        eprintln!("bash did not start");
        std::process::exit(1);
    };
    // Wait until the trap (if any) is set and the background job runs.
    while let Some(event) = rx.recv().await {
        if matches!(&event, ExecEvent::Chunk { bytes, .. } if bytes.starts_with(b"ready")) {
            break;
        }
    }
    let t0 = Instant::now();
    handle.cancel();
    let watcher = tokio::spawn(async move {
        while exec::process_group_alive(pgid).await {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        t0.elapsed()
    });
    while let Some(event) = rx.recv().await {
        if matches!(event, ExecEvent::Finished(_)) {
            break;
        }
    }
    let finished = t0.elapsed();
    let gone = watcher.await.unwrap_or(finished);
    (gone, finished)
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "min {:?} median {:?} max {:?}",
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    )
}
