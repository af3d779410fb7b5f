//! Streaming commands over a real WebSocket: a model's `<sh>`/`<env>` is a
//! proposal; accepting it opens two channels that the client fills with
//! `stream` and closes with `stream/completed`, `stream/aborted` or (from
//! any client) `stream/cancel`; a restart closes what was left open.

mod common;

use common::{hello_client, start_server, test_vars, Reply, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);
const LOG: &str = "log://turn_1/sh/ls%20-la";
const OUT: &str = "sh://turn_1/ls%20-la_1";
const ERR: &str = "sh://turn_1/ls%20-la_2";

struct Setup {
    t: TestServer,
    root: tempfile::TempDir,
    /// Started the run; runs the command.
    a: WsClient,
    /// Another client of the same project.
    b: WsClient,
    alias: String,
}

impl Setup {
    async fn entries(&mut self) -> Vec<Value> {
        let rows = self
            .b
            .call(
                "getEntries",
                json!({"run": self.alias, "pattern": "**", "withBody": true}),
            )
            .await
            .expect("entries");
        rows.as_array().expect("rows").clone()
    }

    async fn entry(&mut self, path: &str) -> Value {
        self.entries()
            .await
            .into_iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("{path} is listed"))
    }

    async fn stream(&mut self, channel: i64, chunk: &str) -> Result<Value, Value> {
        self.a
            .call(
                "stream",
                json!({"run": self.alias, "path": LOG, "channel": channel, "chunk": chunk}),
            )
            .await
    }

    async fn end(&mut self) -> Value {
        let alias = self.alias.clone();
        self.a
            .wait_notification("run/state", LONG, |n| {
                n["params"]["run"] == alias && n["params"]["status"] != 102
            })
            .await
    }
}

async fn start(mode: &str, replies: &[&str]) -> Setup {
    let t = start_server(
        replies
            .iter()
            .map(|r| Reply::Content(r.to_string()))
            .collect(),
    )
    .await;
    let root = tempfile::tempdir().expect("root");
    let root_str = root.path().to_string_lossy().into_owned();
    let addr = t.server.local_addr.expect("listening");
    let mut a = hello_client(addr, "streams", &root_str).await;
    let b = hello_client(addr, "streams", &root_str).await;
    let r = a
        .call(
            "set",
            json!({"path": "run://", "body": "list the files",
                   "attributes": {"model": "fake", "mode": mode}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    Setup {
        t,
        root,
        a,
        b,
        alias,
    }
}

/// A run whose model proposes `ls -la` and ends; the proposal is accepted
/// by the second client, so the stream is open.
async fn accepted() -> Setup {
    let mut s = start(
        "act",
        &[r#"<sh>ls -la</sh><update status="200">listing</update>"#],
    )
    .await;
    let alias = s.alias.clone();
    let n =
        s.b.wait_notification("run/proposal", LONG, |n| n["params"]["run"] == alias)
            .await;
    let p = &n["params"]["proposed"][0];
    assert_eq!(p["path"], LOG);
    assert_eq!(p["body"], "");
    let attrs: Value = serde_json::from_str(p["attributes"].as_str().expect("attrs")).unwrap();
    assert_eq!(attrs["command"], "ls -la");
    assert_eq!(attrs["summary"], "ls -la");
    let answer =
        s.b.call(
            "set",
            json!({"run": alias, "path": LOG, "state": "resolved"}),
        )
        .await
        .expect("accepted");
    assert_eq!(answer["run"], alias.as_str());
    assert_eq!(s.end().await["params"]["status"], 200);
    s
}

#[actix_web::test]
async fn a_client_streams_both_channels_and_completes() {
    let mut s = accepted().await;
    let log = s.entry(LOG).await;
    assert_eq!(log["state"], "resolved");
    assert_eq!(
        log["body"],
        format!("ran 'ls -la' (in progress). Output: {OUT}, {ERR}")
    );
    for path in [OUT, ERR] {
        let ch = s.entry(path).await;
        assert_eq!(ch["state"], "streaming", "{ch}");
        assert_eq!(ch["visibility"], "summarized");
        assert_eq!(ch["body"], "");
        assert_eq!(ch["attributes"]["command"], "ls -la");
    }
    assert_eq!(s.entry(OUT).await["attributes"]["channel"], 1);
    assert_eq!(s.entry(ERR).await["attributes"]["channel"], 2);

    for part in ["total 8\n", "a.txt\n", "b.txt\n"] {
        assert_eq!(
            s.stream(1, part).await.expect("chunk"),
            json!({"status": "ok"})
        );
    }
    s.stream(2, "warning: odd\n").await.expect("stderr chunk");
    // A reader sees what arrived so far, in order, while the stream is open.
    assert_eq!(s.entry(OUT).await["body"], "total 8\na.txt\nb.txt\n");
    assert_eq!(s.entry(OUT).await["state"], "streaming");

    let done =
        s.a.call(
            "stream/completed",
            json!({"run": s.alias, "path": LOG, "exit_code": 0, "duration": "0.1s"}),
        )
        .await
        .expect("completed");
    assert_eq!(done, json!({"ok": true, "channels": 2}));
    let out = s.entry(OUT).await;
    assert_eq!(out["state"], "resolved");
    assert_eq!(out["outcome"], Value::Null);
    assert_eq!(s.entry(ERR).await["body"], "warning: odd\n");
    assert_eq!(
        s.entry(LOG).await["body"],
        format!("ran 'ls -la', exit=0 (0.1s). Output: {OUT} (10 tokens), {ERR} (7 tokens)")
    );
    // Nothing more is taken.
    let late = s.stream(1, "late").await.expect_err("ended");
    assert!(
        late["message"].as_str().unwrap().contains("already ended"),
        "{late}"
    );
    assert_eq!(s.entry(OUT).await["body"], "total 8\na.txt\nb.txt\n");

    // A continuation reads the output with <get>: the model sees it.
    s.t.provider.push_replies([Reply::Content(format!(
        r#"<get path="{OUT}"/><update status="102">reading</update>"#
    ))]);
    s.t.provider.push_replies([Reply::Content(
        r#"<update status="200">seen</update>"#.into(),
    )]);
    s.a.call(
        "set",
        json!({"path": format!("run://{}", s.alias), "body": "read it",
               "attributes": {"mode": "act"}}),
    )
    .await
    .expect("continued");
    assert_eq!(s.end().await["params"]["status"], 200);
    let requests = s.t.provider.requests();
    let last = requests.last().expect("a request").to_string();
    assert!(
        last.contains("# sh ls -la\\ntotal 8\\na.txt\\nb.txt"),
        "{last}"
    );
    assert!(
        last.contains(&format!(
            r#"<sh path=\"{LOG}\" status=\"200\" command=\"ls -la\" summary=\"ls -la\">"#
        )),
        "{last}"
    );
}

#[actix_web::test]
async fn a_failed_exit_fails_the_channels() {
    let mut s = accepted().await;
    s.stream(2, "ls: cannot access\n").await.expect("chunk");
    let done =
        s.a.call(
            "stream/completed",
            json!({"run": s.alias, "path": LOG, "exit_code": 2}),
        )
        .await
        .expect("completed");
    assert_eq!(done["channels"], 2);
    let err = s.entry(ERR).await;
    assert_eq!(err["state"], "failed");
    assert_eq!(err["outcome"], "exit:2");
    assert_eq!(
        s.entry(LOG).await["body"],
        format!("ran 'ls -la', exit=2. Output: {OUT} (empty), {ERR} (9 tokens)")
    );
}

#[actix_web::test]
async fn an_abort_keeps_what_was_streamed() {
    let mut s = accepted().await;
    s.stream(1, "partial").await.expect("chunk");
    let r =
        s.a.call(
            "stream/aborted",
            json!({"run": s.alias, "path": LOG, "reason": "killed", "duration": "2s"}),
        )
        .await
        .expect("aborted");
    assert_eq!(r, json!({"status": "ok", "channels": 2}));
    let out = s.entry(OUT).await;
    assert_eq!(
        (out["state"].clone(), out["outcome"].clone()),
        (json!("cancelled"), json!("killed"))
    );
    assert_eq!(out["body"], "partial");
    assert_eq!(
        s.entry(LOG).await["body"],
        format!("aborted 'ls -la' (killed, 2s). Output: {OUT} (4 tokens), {ERR} (empty)")
    );
    let again =
        s.a.call("stream/cancel", json!({"run": s.alias, "path": LOG}))
            .await
            .expect_err("already ended");
    assert!(again["message"].as_str().unwrap().contains("already ended"));
    assert_eq!(s.entry(OUT).await["outcome"], "killed", "nothing changed");
}

#[actix_web::test]
async fn another_client_cancels_and_every_client_hears_it() {
    let mut s = accepted().await;
    s.stream(1, "x").await.expect("chunk");
    let r =
        s.b.call(
            "stream/cancel",
            json!({"run": s.alias, "path": LOG, "reason": "user cancelled from another client"}),
        )
        .await
        .expect("cancelled");
    assert_eq!(r, json!({"ok": true, "channels": 2}));
    let alias = s.alias.clone();
    for c in [&mut s.a, &mut s.b] {
        let n = c
            .wait_notification("stream/cancelled", LONG, |n| n["params"]["run"] == alias)
            .await;
        assert_eq!(
            n["params"],
            json!({"run": alias, "path": LOG, "reason": "user cancelled from another client"})
        );
    }
    let out = s.entry(OUT).await;
    assert_eq!(out["state"], "cancelled");
    assert_eq!(out["outcome"], "user cancelled from another client");
    assert_eq!(
        s.entry(LOG).await["body"],
        format!("cancelled 'ls -la' (user cancelled from another client). Output: {OUT} (1 tokens), {ERR} (empty)")
    );
    let late = s.stream(2, "y").await.expect_err("ended");
    assert!(late["message"].as_str().unwrap().contains("already ended"));
}

#[actix_web::test]
async fn an_orphaned_stream_is_cancelled_after_its_client_left() {
    let mut s = accepted().await;
    s.stream(1, "half").await.expect("chunk");
    let Setup {
        a, mut b, alias, ..
    } = s;
    a.close().await;
    let r = b
        .call(
            "stream/cancel",
            json!({"run": alias, "path": LOG, "reason": "stale cleanup"}),
        )
        .await
        .expect("cancelled");
    assert_eq!(r["channels"], 2);
    let rows = b
        .call(
            "getEntries",
            json!({"run": alias, "pattern": "sh://**", "withBody": true}),
        )
        .await
        .expect("entries");
    for row in rows.as_array().expect("rows") {
        assert_eq!(row["state"], "cancelled", "{row}");
        assert_eq!(row["outcome"], "stale cleanup");
    }
    assert_eq!(rows[0]["body"], "half");
}

#[actix_web::test]
async fn bad_stream_calls_are_refused_and_change_nothing() {
    let mut s = accepted().await;
    let alias = s.alias.clone();
    let cases = [
        (
            json!({"path": LOG, "channel": 1, "chunk": "x"}),
            "run is required",
        ),
        (
            json!({"run": alias, "channel": 1, "chunk": "x"}),
            "path is required",
        ),
        (
            json!({"run": alias, "path": LOG, "chunk": "x"}),
            "channel is required (numeric)",
        ),
        (
            json!({"run": alias, "path": LOG, "channel": 1}),
            "chunk is required",
        ),
        (
            json!({"run": "nope", "path": LOG, "channel": 1, "chunk": "x"}),
            "run not found: nope",
        ),
        (
            json!({"run": alias, "path": OUT, "channel": 1, "chunk": "x"}),
            "path must be a log entry (log://turn_N/...); got: sh://turn_1/ls%20-la_1",
        ),
        (
            json!({"run": alias, "path": "log://turn_1/update/listing", "channel": 1, "chunk": "x"}),
            "path must be a streaming command's log entry",
        ),
        (
            json!({"run": alias, "path": LOG, "channel": 3, "chunk": "x"}),
            "channel must be 1 (stdout) or 2 (stderr); got: 3",
        ),
    ];
    for (params, wanted) in cases {
        let e =
            s.a.call_unchecked("stream", params.clone())
                .await
                .expect_err("refused");
        let message = e["message"].as_str().expect("message");
        assert!(message.contains(wanted), "{params}: {message}");
        assert_eq!(e["code"], -32602, "{e}");
    }
    let e =
        s.a.call(
            "stream/completed",
            json!({"run": alias, "path": "log://turn_9/sh/none"}),
        )
        .await
        .expect_err("no such stream");
    assert!(e["message"].as_str().unwrap().contains("streaming command"));
    for path in [OUT, ERR] {
        let ch = s.entry(path).await;
        assert_eq!(
            (ch["state"].clone(), ch["body"].clone()),
            (json!("streaming"), json!(""))
        );
    }
}

#[actix_web::test]
async fn a_restart_closes_open_streams_as_cancelled() {
    let mut s = accepted().await;
    s.stream(1, "before the crash").await.expect("chunk");
    let alias = s.alias.clone();
    let root = s.root.path().to_string_lossy().into_owned();
    let Setup { t, a, b, .. } = s;
    a.close().await;
    b.close().await;
    t.server.stop().await;
    let again = rummy::Server::start(
        rummy::Config::from_vars(test_vars(t.home.path(), &t.provider.base_url())).expect("config"),
        rummy::StartOptions::default(),
    )
    .await
    .expect("restarts on the same database");
    let mut c = hello_client(again.local_addr.expect("listening"), "streams", &root).await;
    let rows = c
        .call(
            "getEntries",
            json!({"run": alias, "pattern": "**", "withBody": true}),
        )
        .await
        .expect("entries");
    let find = |p: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p}"))
    };
    for path in [OUT, ERR] {
        let ch = find(path);
        assert_eq!(ch["state"], "cancelled", "{ch}");
        assert_eq!(ch["outcome"], "server restart");
    }
    assert_eq!(find(OUT)["body"], "before the crash");
    let body =
        format!("cancelled 'ls -la' (server restart). Output: {OUT} (8 tokens), {ERR} (empty)");
    assert_eq!(find(LOG)["body"], body);
    let run = c
        .call("getRun", json!({"run": alias}))
        .await
        .expect("getRun");
    let history = run["context"]["history"].as_array().expect("history");
    assert!(
        history
            .iter()
            .any(|h| h["path"] == LOG && h["body"] == body),
        "{history:?}"
    );
    let late = c
        .call(
            "stream",
            json!({"run": alias, "path": LOG, "channel": 1, "chunk": "x"}),
        )
        .await
        .expect_err("closed");
    assert!(late["message"].as_str().unwrap().contains("already ended"));
    again.stop().await;
}

#[actix_web::test]
async fn ask_mode_refuses_sh_and_allows_env() {
    let mut s = start(
        "ask",
        &[r#"<sh>rm -rf build</sh><env>uname -a</env><update status="200">looked</update>"#],
    )
    .await;
    let alias = s.alias.clone();
    let n =
        s.b.wait_notification("run/proposal", LONG, |n| n["params"]["run"] == alias)
            .await;
    assert_eq!(
        n["params"]["proposed"][0]["path"],
        "log://turn_1/env/uname%20-a"
    );
    s.b.call(
        "set",
        json!({"run": alias, "path": "log://turn_1/env/uname%20-a", "state": "resolved"}),
    )
    .await
    .expect("accepted");
    s.end().await;
    let rows = s.entries().await;
    assert!(
        rows.iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("log://turn_1/sh/")),
        "the refused <sh> is never recorded: {rows:?}"
    );
    let errors: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .starts_with("log://turn_1/error/")
        })
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e["body"] == "Rejected <sh> in ask mode"),
        "{errors:?}"
    );
    for ch in ["env://turn_1/uname%20-a_1", "env://turn_1/uname%20-a_2"] {
        assert!(
            rows.iter()
                .any(|r| r["path"] == ch && r["state"] == "streaming"),
            "{ch}"
        );
    }
    s.a.call(
        "stream",
        json!({"run": alias, "path": "log://turn_1/env/uname%20-a", "channel": 1, "chunk": "Linux"}),
    )
    .await
    .expect("env streams");
}

#[actix_web::test]
async fn tool_fallbacks_propose_commands_and_questions() {
    let mut s = start("act", &[r#"<update status="200">idle</update>"#]).await;
    s.end().await;
    let d = s.a.call("discover", json!({})).await.expect("discover");
    for m in [
        "sh",
        "env",
        "ask_user",
        "stream",
        "stream/completed",
        "stream/aborted",
        "stream/cancel",
    ] {
        assert!(d["methods"].get(m).is_some(), "{m} is discovered");
    }
    assert!(d["notifications"].get("stream/cancelled").is_some());
    let alias = s.alias.clone();
    for tool in ["sh", "env"] {
        let r =
            s.a.call(tool, json!({"run": alias, "path": "git status"}))
                .await
                .expect("fallback");
        assert_eq!(r, json!({"status": "ok"}));
    }
    s.a.call(
        "ask_user",
        json!({"run": alias, "path": "Which one?", "body": "red; blue"}),
    )
    .await
    .expect("ask_user");
    let rows = s.entries().await;
    let sh = rows
        .iter()
        .find(|r| r["path"] == "log://turn_2/sh/git%20status")
        .expect("sh proposal");
    assert_eq!(sh["state"], "proposed");
    assert_eq!(sh["attributes"]["command"], "git status");
    assert_eq!(sh["attributes"]["action"], "sh");
    assert!(rows
        .iter()
        .any(|r| r["path"] == "log://turn_2/env/git%20status" && r["state"] == "proposed"));
    let q = rows
        .iter()
        .find(|r| r["path"] == "log://turn_2/ask_user/Which%20one%3F")
        .expect("question");
    assert_eq!(q["attributes"]["options"], json!(["red", "blue"]));
    let e =
        s.a.call_unchecked("sh", json!({"run": alias}))
            .await
            .expect_err("no path");
    assert_eq!(e["message"], "path is required");
}
