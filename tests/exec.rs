//! The yolo command runner against real processes: output channels, exit
//! codes, the environment scrub, the cap, timeouts and process-group kills.

use rummy::exec::{
    self, collect, truncation_marker, ExecEvent, ExecLimits, ExecOutcome, ExecRequest, KillReason,
    STDERR, STDOUT,
};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// "Eventually" bound for anything that should take milliseconds.
const GENEROUS: Duration = Duration::from_secs(10);

fn request(command: &str, cwd: &Path) -> ExecRequest {
    // Only PATH from the real environment: the tests never depend on (or
    // change) the rest of it.
    ExecRequest::new(command, cwd).with_env(std::env::var_os("PATH").map(|p| ("PATH", p)))
}

fn limits() -> ExecLimits {
    ExecLimits {
        timeout: Some(Duration::from_secs(120)),
        max_bytes: None,
        ..ExecLimits::default()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Non-zombie processes of group `pgid`, as `ps` sees them (independent of
/// the runner's own check).
fn live_members(pgid: u32) -> usize {
    let out = std::process::Command::new("ps")
        .args(["-e", "-o", "pgid=,stat="])
        .output()
        .expect("ps runs");
    text(&out.stdout)
        .lines()
        .filter(|line| {
            let mut fields = line.split_whitespace();
            fields.next() == Some(pgid.to_string().as_str())
                && fields.next().is_some_and(|stat| !stat.starts_with('Z'))
        })
        .count()
}

async fn wait_group_gone(pgid: u32) {
    let start = Instant::now();
    while live_members(pgid) > 0 {
        assert!(
            start.elapsed() < GENEROUS,
            "process group {pgid} still has live members"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Receives until a chunk on `channel` contains `needle`.
async fn wait_for_output(rx: &mut mpsc::Receiver<ExecEvent>, channel: u8, needle: &str) {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(GENEROUS, async {
        while let Some(event) = rx.recv().await {
            match event {
                ExecEvent::Chunk { channel: c, bytes } if c == channel => {
                    seen.extend(bytes);
                    if text(&seen).contains(needle) {
                        return true;
                    }
                }
                ExecEvent::Finished(outcome) => panic!("finished early: {outcome:?}"),
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "never saw {needle:?}");
}

async fn finished(rx: &mut mpsc::Receiver<ExecEvent>) -> ExecOutcome {
    tokio::time::timeout(GENEROUS, collect(rx))
        .await
        .expect("the command finishes")
        .outcome
        .expect("a Finished event")
}

#[tokio::test]
async fn both_channels_arrive_complete_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let script = "for i in $(seq 1 3000); do echo out$i; echo err$i >&2; done";
    let (tx, mut rx) = mpsc::channel(64);
    let _handle = exec::spawn(request(script, dir.path()), limits(), tx);
    let mut chunks = 0;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let outcome = loop {
        match rx.recv().await.expect("events until Finished") {
            ExecEvent::Chunk { channel, bytes } => {
                assert!(!bytes.is_empty(), "no empty chunks");
                chunks += 1;
                match channel {
                    STDOUT => stdout.extend(bytes),
                    STDERR => stderr.extend(bytes),
                    other => panic!("unknown channel {other}"),
                }
            }
            ExecEvent::Truncated { .. } => panic!("no cap set"),
            ExecEvent::Finished(outcome) => break outcome,
        }
    };
    assert!(rx.recv().await.is_none(), "nothing after Finished");
    let want_out: String = (1..=3000).map(|i| format!("out{i}\n")).collect();
    let want_err: String = (1..=3000).map(|i| format!("err{i}\n")).collect();
    assert_eq!(text(&stdout), want_out);
    assert_eq!(text(&stderr), want_err);
    assert!(chunks >= 2);
    assert!(outcome.succeeded(), "{outcome:?}");
}

#[tokio::test]
async fn output_streams_before_the_command_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(
        request("echo first; echo warn >&2; sleep 300", dir.path()),
        limits(),
        tx,
    );
    wait_for_output(&mut rx, STDOUT, "first\n").await;
    handle.cancel();
    let rest = collect(&mut rx).await;
    assert!(matches!(
        rest.outcome,
        Some(ExecOutcome::Killed {
            reason: KillReason::Cancelled,
            ..
        })
    ));
}

#[tokio::test]
async fn the_exit_code_decides_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let ok = exec::run(request("true", dir.path()), limits()).await;
    let ok = ok.outcome.unwrap();
    assert!(ok.succeeded());
    assert_eq!(ok.exit_code(), Some(0));
    assert!(ok.duration().is_some());

    let failed = exec::run(request("echo nope >&2; exit 3", dir.path()), limits()).await;
    assert_eq!(text(&failed.stderr), "nope\n");
    let outcome = failed.outcome.unwrap();
    assert!(!outcome.succeeded());
    assert!(matches!(outcome, ExecOutcome::Exited { code: 3, .. }));

    let signaled = exec::run(request("kill -KILL $$", dir.path()), limits()).await;
    assert!(
        matches!(
            signaled.outcome,
            Some(ExecOutcome::Signaled { signal: 9, .. })
        ),
        "{:?}",
        signaled.outcome
    );
}

#[tokio::test]
async fn the_environment_is_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    let mut parent: Vec<(String, String)> = vec![
        ("FOO_API_KEY".into(), "secret1".into()),
        ("BAR_TOKEN".into(), "secret2".into()),
        ("RUMMY_X".into(), "secret3".into()),
        ("rummy_lower".into(), "secret4".into()),
        ("KEEP_ME".into(), "kept".into()),
    ];
    if let Ok(path) = std::env::var("PATH") {
        parent.push(("PATH".into(), path));
    }
    let req = ExecRequest::new("env", dir.path()).with_env(parent);
    let got = exec::run(req, limits()).await;
    assert!(got.outcome.unwrap().succeeded());
    let env = text(&got.stdout);
    let lines: Vec<&str> = env.lines().collect();
    assert!(lines.contains(&"KEEP_ME=kept"), "{env}");
    for secret in ["secret1", "secret2", "secret3", "secret4"] {
        assert!(!env.contains(secret), "{secret} leaked: {env}");
    }
    let pwd = format!("PWD={}", dir.path().display());
    assert!(lines.contains(&pwd.as_str()), "{env}");
}

#[tokio::test]
async fn the_working_directory_is_the_given_root() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker.txt"), "here").unwrap();
    let got = exec::run(request("pwd -P; cat marker.txt", dir.path()), limits()).await;
    let root = dir.path().canonicalize().unwrap();
    assert_eq!(text(&got.stdout), format!("{}\nhere", root.display()));
}

#[tokio::test]
async fn a_capped_channel_ends_with_the_marker_and_never_blocks_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ExecLimits {
        max_bytes: Some(1000),
        ..limits()
    };
    // 5 MB through a 64 KiB pipe: only a reader that keeps draining lets
    // this finish. stderr stays under the cap.
    let (tx, mut rx) = mpsc::channel(64);
    let _handle = exec::spawn(
        request("yes | head -c 5000000; echo small >&2", dir.path()),
        limits,
        tx,
    );
    let mut truncated = Vec::new();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let outcome = tokio::time::timeout(GENEROUS, async {
        loop {
            match rx.recv().await.expect("events until Finished") {
                ExecEvent::Chunk {
                    channel: STDOUT,
                    bytes,
                } => {
                    assert!(truncated.is_empty(), "no stdout after its marker");
                    stdout.extend(bytes);
                }
                ExecEvent::Chunk { bytes, .. } => stderr.extend(bytes),
                ExecEvent::Truncated { channel, limit } => truncated.push((channel, limit)),
                ExecEvent::Finished(outcome) => break outcome,
            }
        }
    })
    .await
    .expect("the command is never blocked by a full pipe");
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(truncated, [(STDOUT, 1000)]);
    let mut want = "y\n".repeat(500).into_bytes();
    want.extend(truncation_marker(1000));
    assert_eq!(stdout, want);
    assert_eq!(
        text(&truncation_marker(1000)),
        "\n[output truncated after 1000 bytes (RUMMY_STREAM_MAX_BYTES)]\n"
    );
    assert_eq!(text(&stderr), "small\n");
}

#[tokio::test]
async fn uncapped_output_is_complete_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let _handle = exec::spawn(
        request("head -c 3000000 /dev/zero", dir.path()),
        limits(),
        tx,
    );
    let mut total = 0usize;
    let mut chunks = 0usize;
    let outcome = loop {
        match rx.recv().await.expect("events") {
            ExecEvent::Chunk { bytes, .. } => {
                assert!(bytes.iter().all(|b| *b == 0));
                total += bytes.len();
                chunks += 1;
            }
            ExecEvent::Truncated { .. } => panic!("no cap"),
            ExecEvent::Finished(outcome) => break outcome,
        }
    };
    assert!(outcome.succeeded());
    assert_eq!(total, 3_000_000);
    // Batched: far fewer chunks than 4 KiB reads would give.
    assert!(chunks <= 3_000_000 / 4096, "{chunks} chunks");
}

#[tokio::test]
async fn a_timeout_ends_the_group_with_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ExecLimits {
        timeout: Some(Duration::from_millis(300)),
        ..limits()
    };
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(request("sleep 300 & sleep 300", dir.path()), limits, tx);
    let pgid = handle.pid().unwrap();
    let outcome = finished(&mut rx).await;
    match outcome {
        ExecOutcome::TimedOut { after, duration } => {
            assert_eq!(after, Duration::from_millis(300));
            assert!(duration >= after);
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    wait_group_gone(pgid).await;
}

#[tokio::test]
async fn cancel_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(
        request("sleep 300 & echo ready; sleep 300", dir.path()),
        limits(),
        tx,
    );
    let pgid = handle.pid().unwrap();
    wait_for_output(&mut rx, STDOUT, "ready").await;
    assert!(
        live_members(pgid) >= 2,
        "bash or sleep and the background sleep"
    );
    let t0 = Instant::now();
    handle.cancel();
    handle.cancel(); // idempotent
    let outcome = finished(&mut rx).await;
    let to_finished = t0.elapsed();
    assert!(
        matches!(
            outcome,
            ExecOutcome::Killed {
                reason: KillReason::Cancelled,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        live_members(pgid),
        0,
        "the group is gone once Finished arrives"
    );
    assert!(!exec::process_group_alive(pgid).await);
    eprintln!("cancel -> group gone and Finished (SIGTERM honoured): {to_finished:?}");
}

#[tokio::test]
async fn a_group_ignoring_sigterm_is_sigkilled_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ExecLimits {
        kill_grace: Duration::from_millis(500),
        ..limits()
    };
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(
        request(
            "trap '' TERM; sleep 300 & echo ready; sleep 300",
            dir.path(),
        ),
        limits,
        tx,
    );
    let pgid = handle.pid().unwrap();
    wait_for_output(&mut rx, STDOUT, "ready").await;
    let t0 = Instant::now();
    handle.cancel();
    let outcome = finished(&mut rx).await;
    let to_finished = t0.elapsed();
    assert!(matches!(outcome, ExecOutcome::Killed { .. }), "{outcome:?}");
    assert_eq!(live_members(pgid), 0);
    // SIGKILL comes only after the grace.
    assert!(to_finished >= Duration::from_millis(500), "{to_finished:?}");
    eprintln!("cancel -> group gone and Finished (SIGTERM ignored, 500 ms grace): {to_finished:?}");
}

#[tokio::test]
async fn dropping_the_handle_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(
        request("sleep 300 & echo ready; sleep 300", dir.path()),
        limits(),
        tx,
    );
    let pgid = handle.pid().unwrap();
    wait_for_output(&mut rx, STDOUT, "ready").await;
    drop(handle);
    let outcome = finished(&mut rx).await;
    assert!(
        matches!(
            outcome,
            ExecOutcome::Killed {
                reason: KillReason::HandleDropped,
                ..
            }
        ),
        "{outcome:?}"
    );
    wait_group_gone(pgid).await;
}

#[tokio::test]
async fn background_jobs_end_when_the_command_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(
        request("sleep 300 & echo started", dir.path()),
        limits(),
        tx,
    );
    let pgid = handle.pid().unwrap();
    let got = tokio::time::timeout(GENEROUS, collect(&mut rx))
        .await
        .expect("a leftover background job does not keep the command open");
    assert_eq!(text(&got.stdout), "started\n");
    assert!(got.outcome.unwrap().succeeded());
    assert_eq!(live_members(pgid), 0);
}

#[tokio::test]
async fn a_missing_root_is_a_spawn_failure() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let (tx, mut rx) = mpsc::channel(64);
    let handle = exec::spawn(request("true", &missing), limits(), tx);
    assert_eq!(handle.pid(), None);
    match finished(&mut rx).await {
        ExecOutcome::SpawnFailed { error } => {
            assert!(error.contains("could not start bash in"), "{error}");
            assert!(error.contains("nope"), "{error}");
        }
        other => panic!("expected SpawnFailed, got {other:?}"),
    }
    handle.cancel(); // harmless
}

#[tokio::test]
async fn a_dropped_receiver_neither_blocks_nor_orphans_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let handle = exec::spawn(
        request("head -c 2000000 /dev/zero; echo done", dir.path()),
        limits(),
        tx,
    );
    let pgid = handle.pid().unwrap();
    // Nobody reads the events, yet the command runs to its end.
    wait_group_gone(pgid).await;
}

#[test]
fn limits_come_from_the_two_settings() {
    let config = rummy::Config::from_vars([
        ("RUMMY_HOME", "/tmp/rummy-exec-test"),
        ("RUMMY_SH_TIMEOUT", "7"),
        ("RUMMY_STREAM_MAX_BYTES", "0"),
    ])
    .unwrap();
    let limits = ExecLimits::from_config(&config);
    assert_eq!(limits.timeout, Some(Duration::from_secs(7)));
    assert_eq!(limits.max_bytes, None);
    assert_eq!(limits.kill_grace, Duration::from_secs(2));
    let shipped = rummy::Config::from_vars([("RUMMY_HOME", "/tmp/rummy-exec-test")]).unwrap();
    assert_eq!(ExecLimits::from_config(&shipped), ExecLimits::default());
}
