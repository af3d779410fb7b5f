//! Yolo runs execute their commands on the server, over a real WebSocket
//! with no client deciding or streaming anything: output lands in the
//! `sh://` channels, a file edit reaches the disk, cancelling the run or
//! `stream/cancel` kills the whole process group, `RUMMY_SH_TIMEOUT` fails
//! the channels with outcome `timeout`, and `RUMMY_STREAM_MAX_BYTES` caps a
//! channel with a marker the model sees.

mod common;

use common::{hello_client, test_vars, FakeProvider, Reply, WsClient};
use rummy::{Config, Server, ServerHandle, StartOptions};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);
const DONE: &str = r#"<update status="200">done</update>"#;

struct Setup {
    _home: tempfile::TempDir,
    root: tempfile::TempDir,
    provider: FakeProvider,
    server: ServerHandle,
    a: WsClient,
    alias: String,
}

async fn yolo(replies: Vec<Reply>, env: &[(&str, &str)]) -> Setup {
    let home = tempfile::tempdir().expect("home");
    let root = tempfile::tempdir().expect("root");
    let provider = FakeProvider::start(replies).await;
    let mut vars = test_vars(home.path(), &provider.base_url());
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let server = Server::start(
        Config::from_vars(vars).expect("config"),
        StartOptions::default(),
    )
    .await
    .expect("starts");
    let addr = server.local_addr.expect("listening");
    let mut a = hello_client(addr, "yolo", &root.path().to_string_lossy()).await;
    let r = a
        .call(
            "set",
            json!({"path": "run://", "body": "do it",
                   "attributes": {"model": "fake", "mode": "act", "noRepo": true, "yolo": true}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    Setup {
        _home: home,
        root,
        provider,
        server,
        a,
        alias,
    }
}

impl Setup {
    async fn entries(&mut self, pattern: &str) -> Vec<Value> {
        self.a
            .call(
                "getEntries",
                json!({"run": self.alias, "pattern": pattern, "withBody": true}),
            )
            .await
            .expect("entries")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn end(&mut self) -> Value {
        let alias = self.alias.clone();
        self.a
            .wait_notification("run/state", LONG, |n| {
                n["params"]["run"] == alias.as_str() && n["params"]["status"] != 102
            })
            .await
    }

    /// Waits until the run's command channels are open (streaming).
    async fn wait_streaming(&mut self) {
        let deadline = tokio::time::Instant::now() + LONG;
        loop {
            let open = self
                .entries("sh://**")
                .await
                .iter()
                .any(|e| e["state"] == "streaming");
            if open {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "no open stream");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Live (non-zombie) processes whose command line contains `needle`.
fn processes_with(needle: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(needle) && !text.contains("bash -c")
        })
        .count()
}

async fn wait_gone(needle: &str) -> Duration {
    let start = Instant::now();
    while processes_with(needle) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{needle} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[actix_web::test]
async fn a_yolo_run_executes_its_command_and_its_edit_with_no_client() {
    let mut s = yolo(
        vec![
            Reply::Content(
                r#"<sh>printf 'hello\n'; printf 'oops\n' >&2</sh><set path="made.txt">made</set><update status="102">ran</update>"#
                    .into(),
            ),
            Reply::Content(DONE.into()),
        ],
        &[],
    )
    .await;
    assert_eq!(s.end().await["params"]["status"], 200);
    let channels = s.entries("sh://**").await;
    assert_eq!(channels.len(), 2, "{channels:?}");
    let out = channels
        .iter()
        .find(|c| c["path"].as_str().is_some_and(|p| p.ends_with("_1")));
    let err = channels
        .iter()
        .find(|c| c["path"].as_str().is_some_and(|p| p.ends_with("_2")));
    let (out, err) = (out.expect("stdout"), err.expect("stderr"));
    assert_eq!(out["body"], "hello\n");
    assert_eq!(err["body"], "oops\n");
    assert_eq!(out["state"], "resolved");
    let logs = s.entries("log://turn_1/sh/**").await;
    let body = logs[0]["body"].as_str().unwrap_or_default().to_string();
    assert!(body.contains("exit=0"), "{body}");
    assert_eq!(
        std::fs::read_to_string(s.root.path().join("made.txt")).expect("file"),
        "made"
    );
    // The model read the output in its next turn's packet.
    let second = s.provider.requests()[1].to_string();
    assert!(second.contains("hello"), "{second}");
}

#[actix_web::test]
async fn cancelling_a_yolo_run_kills_the_whole_process_group() {
    let mut s = yolo(
        vec![Reply::Content(
            r#"<sh>sleep 313 & sleep 317</sh><update status="102">waiting</update>"#.into(),
        )],
        &[],
    )
    .await;
    s.wait_streaming().await;
    assert!(processes_with("sleep 313") > 0 && processes_with("sleep 317") > 0);
    let started = Instant::now();
    s.a.call(
        "set",
        json!({"path": format!("run://{}", s.alias), "state": "cancelled"}),
    )
    .await
    .expect("cancelled");
    wait_gone("sleep 313").await;
    wait_gone("sleep 317").await;
    eprintln!("run cancel -> process group gone: {:?}", started.elapsed());
    assert_eq!(s.end().await["params"]["status"], 499);
    for ch in s.entries("sh://**").await {
        assert_eq!(ch["state"], "cancelled", "{ch}");
    }
}

#[actix_web::test]
async fn stream_cancel_kills_a_server_run_command_and_the_turn_goes_on() {
    let mut s = yolo(
        vec![
            Reply::Content(
                r#"<sh>sleep 331 & sleep 337</sh><update status="102">waiting</update>"#.into(),
            ),
            Reply::Content(DONE.into()),
        ],
        &[],
    )
    .await;
    s.wait_streaming().await;
    let log = s.entries("log://turn_1/sh/**").await[0]["path"].clone();
    let addr = s.server.local_addr.expect("listening");
    let mut b = hello_client(addr, "yolo", &s.root.path().to_string_lossy()).await;
    b.call("stream/cancel", json!({"run": s.alias, "path": log}))
        .await
        .expect("cancelled");
    wait_gone("sleep 331").await;
    wait_gone("sleep 337").await;
    assert_eq!(s.end().await["params"]["status"], 200);
}

#[actix_web::test]
async fn a_command_over_the_time_limit_fails_with_timeout() {
    let mut s = yolo(
        vec![
            Reply::Content(r#"<sh>sleep 347</sh><update status="102">waiting</update>"#.into()),
            Reply::Content(DONE.into()),
        ],
        &[("RUMMY_SH_TIMEOUT", "1")],
    )
    .await;
    assert_eq!(s.end().await["params"]["status"], 200);
    for ch in s.entries("sh://**").await {
        assert_eq!(ch["state"], "failed", "{ch}");
        assert_eq!(ch["outcome"], "timeout", "{ch}");
    }
    assert_eq!(processes_with("sleep 347"), 0);
}

#[actix_web::test]
async fn output_over_the_cap_is_cut_with_a_marker() {
    let mut s = yolo(
        vec![
            Reply::Content(
                r#"<sh>head -c 50000 /dev/zero | tr '\0' a</sh><update status="102">big</update>"#
                    .into(),
            ),
            Reply::Content(DONE.into()),
        ],
        &[("RUMMY_STREAM_MAX_BYTES", "1000")],
    )
    .await;
    assert_eq!(s.end().await["params"]["status"], 200);
    let out = s
        .entries("sh://**")
        .await
        .into_iter()
        .find(|c| c["path"].as_str().is_some_and(|p| p.ends_with("_1")))
        .expect("stdout");
    let body = out["body"].as_str().unwrap_or_default();
    assert!(body.starts_with(&"a".repeat(1000)), "{}", body.len());
    assert!(body.contains("RUMMY_STREAM_MAX_BYTES"), "{body}");
    assert!(body.len() < 1200, "{}", body.len());
}
