//! Proposals survive a crash: the real `rummy serve` binary is killed with
//! SIGKILL while a run waits on a proposal, then started again on the same
//! database. The run still waits on the same proposal, a client that says
//! hello hears it again, and accepting it finishes the interrupted turn
//! from what was recorded and lets the loop go on.

mod common;

use common::{test_vars, FakeProvider, Reply, WsClient};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A `rummy serve` child process and the address it listens on.
struct Served {
    child: Child,
    addr: SocketAddr,
}

/// Starts the binary with the test settings and waits for its listening
/// line ("rummy listening on ws://ADDR") on its log output.
fn serve(home: &Path, provider: &str) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rummy"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in test_vars(home, provider) {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("rummy serve starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("ws://") {
                let addr: String = line[at + 5..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(LONG)
        .expect("the server reports its address")
        .parse()
        .expect("a socket address");
    Served { child, addr }
}

async fn hello(addr: SocketAddr, root: &str) -> WsClient {
    let mut c = WsClient::connect(addr).await;
    c.call("rummy/hello", json!({"name": "crash", "projectRoot": root}))
        .await
        .expect("hello succeeds");
    c
}

async fn get_run(c: &mut WsClient, alias: &str) -> Value {
    c.call("getRun", json!({ "run": alias }))
        .await
        .expect("getRun")
}

async fn entry(c: &mut WsClient, alias: &str, path: &str) -> Option<Value> {
    let rows = c
        .call("getEntries", json!({"run": alias, "pattern": "**"}))
        .await
        .expect("entries");
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|r| r["path"] == path)
        .cloned()
}

#[actix_web::test]
async fn a_run_waiting_on_a_proposal_survives_kill_9_and_resumes_when_accepted() {
    let home = tempfile::tempdir().expect("home");
    let root = tempfile::tempdir().expect("project");
    let root_str = root.path().to_string_lossy().into_owned();
    // Turn 1 proposes a new file, then writes a note that must only be
    // written once the proposal is decided; turn 2 ends the first loop; the
    // prompt queued while waiting gets turn 3.
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<set path="made.txt">made before the crash</set><set path="known://after">written after the decision</set><update status="102">proposed</update>"#
                .into(),
        ),
        Reply::Content(r#"<update status="200">first loop done</update>"#.into()),
        Reply::Content(r#"<update status="200">second loop done</update>"#.into()),
    ])
    .await;

    let mut first = serve(home.path(), &provider.base_url());
    let mut a = hello(first.addr, &root_str).await;
    let started = a
        .call(
            "set",
            json!({"path": "run://", "body": "make a file",
                   "attributes": {"model": "fake", "mode": "act"}}),
        )
        .await
        .expect("run starts");
    let alias = started["alias"].as_str().expect("alias").to_string();
    let announced = a
        .wait_notification("run/proposal", LONG, |n| {
            n["params"]["run"] == alias.as_str()
        })
        .await;
    let path = announced["params"]["proposed"][0]["path"].clone();
    assert_eq!(path, "log://turn_1/set/made.txt", "{announced}");
    let before = get_run(&mut a, &alias).await;
    assert_eq!(before["status"], 202);
    assert_eq!(before["pendingProposals"][0]["path"], path);
    assert!(entry(&mut a, &alias, "known://after").await.is_none());

    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    drop(a);
    assert_eq!(provider.requests().len(), 1);

    let mut second = serve(home.path(), &provider.base_url());
    let mut b = hello(second.addr, &root_str).await;
    let again = b
        .wait_notification("run/proposal", LONG, |n| {
            n["params"]["run"] == alias.as_str()
        })
        .await;
    assert_eq!(again["params"]["proposed"][0]["path"], path, "{again}");
    let after = get_run(&mut b, &alias).await;
    assert_eq!(after["status"], 202, "still waiting, not 499: {after}");
    assert_eq!(after["pendingProposals"].as_array().map(Vec::len), Some(1));
    assert_eq!(after["pendingProposals"][0]["path"], path);

    // A prompt sent while the run waits becomes its next loop; the
    // proposal stays pending.
    b.call(
        "set",
        json!({"path": format!("run://{alias}"), "body": "and then this",
               "attributes": {"mode": "act"}}),
    )
    .await
    .expect("prompt queued");
    let waiting = get_run(&mut b, &alias).await;
    assert_eq!(waiting["status"], 202);
    assert_eq!(waiting["pendingProposals"][0]["path"], path);

    let resolved = b
        .call(
            "set",
            json!({"run": alias, "path": path, "state": "resolved"}),
        )
        .await
        .expect("accepted");
    assert_eq!(resolved["run"], alias.as_str(), "{resolved}");
    b.wait_notification("run/state", LONG, |n| {
        n["params"]["run"] == alias.as_str()
            && n["params"]["status"] == 200
            && n["params"]["turn"] == 3
    })
    .await;

    assert_eq!(
        std::fs::read_to_string(root.path().join("made.txt")).expect("file written"),
        "made before the crash"
    );
    let note = entry(&mut b, &alias, "known://after")
        .await
        .expect("the command after the proposal ran on resume");
    assert_eq!(note["state"], "resolved", "{note}");
    let log = entry(&mut b, &alias, "log://turn_1/set/made.txt")
        .await
        .expect("log entry");
    assert_eq!(log["state"], "resolved", "{log}");
    // One model call before the crash, one per later turn: the interrupted
    // turn was finished from its record, not asked again.
    assert_eq!(provider.requests().len(), 3);
    let done = get_run(&mut b, &alias).await;
    assert_eq!(done["status"], 200);
    assert_eq!(done["pendingProposals"], json!([]));

    second.child.kill().expect("stop");
    second.child.wait().expect("reaped");
}
