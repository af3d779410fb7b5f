//! getEntries for clients (ids, bodies, limit, since) and the run/changed
//! pulse, over a real WebSocket.

mod common;

use common::{start_server, TestServer, WsClient};
use serde_json::{json, Value};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);
const SETTLE: Duration = Duration::from_millis(400);

async fn connect(f: &TestServer, project: &str, subscribe: Option<Value>) -> WsClient {
    let root = f.home.path().join(project);
    std::fs::create_dir_all(&root).expect("root");
    let mut c = WsClient::connect(f.server.local_addr.expect("listening")).await;
    let mut params = json!({"name": project, "projectRoot": root.to_string_lossy()});
    if let Some(s) = subscribe {
        params["subscribe"] = s;
    }
    c.call("rummy/hello", params).await.expect("hello");
    c
}

async fn run_to_end(c: &mut WsClient) -> String {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "Go",
                   "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    let alias = r["alias"].as_str().expect("alias").to_string();
    let done = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(done["params"]["status"], 200, "{done}");
    alias
}

fn ids(rows: &Value) -> Vec<i64> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

fn paths(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| r["path"].as_str().expect("path"))
        .collect()
}

#[actix_web::test]
async fn get_entries_pages_by_id_and_returns_bodies_on_request() {
    let f = start_server(vec![]).await;
    let mut c = connect(&f, "paging", None).await;
    let run = run_to_end(&mut c).await;
    for (name, body) in [("c", "third"), ("a", "first"), ("b", "second")] {
        c.call(
            "set",
            json!({"run": run, "path": format!("known://{name}"), "body": body}),
        )
        .await
        .expect("write");
    }

    // Default: by path, with ids, without bodies.
    let all = c
        .call("getEntries", json!({"run": run, "pattern": "known://*"}))
        .await
        .unwrap();
    assert_eq!(paths(&all), ["known://a", "known://b", "known://c"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("body").is_none()));
    let by_path = ids(&all);
    // Written c, a, b: ids follow insertion.
    assert!(
        by_path[2] < by_path[0] && by_path[0] < by_path[1],
        "{by_path:?}"
    );

    let with_body = c
        .call(
            "getEntries",
            json!({"run": run, "pattern": "known://*", "withBody": true}),
        )
        .await
        .unwrap();
    assert_eq!(with_body[0]["body"], "first");
    assert_eq!(with_body[2]["body"], "third");

    // since: rows with a greater id, ordered by id; limit chunks the catch-up.
    let everything = c
        .call(
            "getEntries",
            json!({"run": run, "pattern": "**", "since": 0}),
        )
        .await
        .unwrap();
    let every_id = ids(&everything);
    let mut sorted = every_id.clone();
    sorted.sort_unstable();
    assert_eq!(every_id, sorted, "ordered by id");
    let mut seen = Vec::new();
    let mut since = 0;
    loop {
        let page = c
            .call(
                "getEntries",
                json!({"run": run, "pattern": "**", "since": since, "limit": 2}),
            )
            .await
            .unwrap();
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 2);
        let Some(last) = page_ids.last() else { break };
        since = *last;
        seen.extend(page_ids);
    }
    assert_eq!(seen, every_id, "paging visits every row once, in order");

    let newest = c
        .call(
            "getEntries",
            json!({"run": run, "pattern": "known://*", "since": by_path[2]}),
        )
        .await
        .unwrap();
    assert_eq!(paths(&newest), ["known://a", "known://b"]);
    let limited = c
        .call(
            "getEntries",
            json!({"run": run, "pattern": "known://*", "limit": 1}),
        )
        .await
        .unwrap();
    assert_eq!(paths(&limited), ["known://a"]);

    for (params, needle) in [
        (
            json!({"run": run, "limit": 0}),
            "limit must be a positive integer",
        ),
        (json!({"run": run, "since": -1}), "since must be"),
    ] {
        let e = c.call_unchecked("getEntries", params).await.unwrap_err();
        assert_eq!(e["code"], -32602, "{e}");
        assert!(e["message"].as_str().unwrap().contains(needle), "{e}");
    }
    f.server.stop().await;
}

#[actix_web::test]
async fn only_subscribed_clients_get_the_run_changed_pulse() {
    let f = start_server(vec![]).await;
    let mut plain = connect(&f, "pulse", None).await;
    let mut subscribed = connect(&f, "pulse", Some(json!(["run/changed"]))).await;
    let mut elsewhere = connect(&f, "other", Some(json!(["run/changed"]))).await;
    let run = run_to_end(&mut plain).await;

    // The run's own writes pulse, beside run/state (which everyone gets).
    subscribed
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == run && n["params"]["status"] == 200
        })
        .await;
    let pulses: Vec<Value> = subscribed
        .buffered_notifications()
        .into_iter()
        .filter(|n| n["method"] == "run/changed")
        .collect();
    assert!(
        pulses.iter().any(|p| p["params"]["path"]
            .as_str()
            .unwrap_or("")
            .starts_with("prompt://")),
        "{pulses:?}"
    );
    let run_id = pulses[0]["params"]["runId"].as_i64().expect("runId");
    assert!(pulses.iter().all(|p| p["params"]["run"] == run.as_str()));

    plain
        .call(
            "set",
            json!({"run": run, "path": "known://fact", "body": "water is wet"}),
        )
        .await
        .unwrap();
    let upsert = subscribed
        .wait_notification("run/changed", LONG, |n| {
            n["params"]["path"] == "known://fact"
        })
        .await;
    assert_eq!(
        upsert["params"],
        json!({"run": run, "runId": run_id, "path": "known://fact", "changeType": "upsert"})
    );

    plain
        .call(
            "set",
            json!({"run": run, "path": "known://fact", "visibility": "visible"}),
        )
        .await
        .unwrap();
    let promoted = subscribed
        .wait_notification("run/changed", LONG, |n| {
            n["params"]["path"] == "known://fact"
        })
        .await;
    assert_eq!(promoted["params"]["changeType"], "promote");

    plain
        .call(
            "set",
            json!({"run": run, "path": "known://fact", "attributes": {"source": "me"}}),
        )
        .await
        .unwrap();
    let attrs = subscribed
        .wait_notification("run/changed", LONG, |n| {
            n["params"]["path"] == "known://fact"
        })
        .await;
    assert_eq!(attrs["params"]["changeType"], "attributes");

    plain
        .call("rm", json!({"run": run, "path": "known://fact"}))
        .await
        .unwrap();
    let removed = subscribed
        .wait_notification("run/changed", LONG, |n| {
            n["params"]["path"] == "known://fact"
        })
        .await;
    assert_eq!(removed["params"]["changeType"], "remove");

    // A refused write changes nothing, so nothing pulses.
    let refused = plain
        .call_unchecked(
            "set",
            json!({"run": run, "path": "known://x", "body": "y", "visibility": "bogus"}),
        )
        .await;
    assert!(refused.is_err());
    let late = subscribed.drain_notifications(SETTLE).await;
    assert!(
        late.iter().all(|n| n["params"]["path"] != "known://x"),
        "{late:?}"
    );

    let plain_seen = plain.drain_notifications(SETTLE).await;
    assert!(
        plain_seen.iter().all(|n| n["method"] != "run/changed"),
        "an unsubscribed client gets no pulse"
    );
    let other_seen = elsewhere.drain_notifications(SETTLE).await;
    assert!(
        other_seen.iter().all(|n| n["method"] != "run/changed"),
        "another project's client gets no pulse: {other_seen:?}"
    );

    let e = subscribed
        .call_unchecked(
            "rummy/hello",
            json!({"name": "pulse", "projectRoot": f.home.path().join("pulse").to_string_lossy(),
                   "subscribe": ["run/everything"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(e["code"], -32602, "{e}");
    f.server.stop().await;
}

/// An embedder's sink: every pushed frame, parsed.
struct Collector(tokio::sync::mpsc::UnboundedSender<Value>);

impl actix::Actor for Collector {
    type Context = actix::Context<Self>;
}

impl actix::Handler<rummy::hub::Push> for Collector {
    type Result = ();
    fn handle(&mut self, msg: rummy::hub::Push, _: &mut actix::Context<Self>) {
        if let Ok(frame) = serde_json::from_str(&msg.0) {
            let _ = self.0.send(frame);
        }
    }
}

#[actix_web::test]
async fn embedders_and_discover_know_the_pulse() {
    use actix::Actor;
    let f = start_server(vec![]).await;
    let mut c = connect(&f, "embedded", None).await;
    let discovered = c.call("discover", json!({})).await.unwrap();
    assert!(discovered["notifications"]["run/changed"].is_object());
    let subscribe = discovered["methods"]["rummy/hello"]["params"]["subscribe"]
        .as_str()
        .expect("hello lists subscribe");
    assert!(subscribe.starts_with("array? — "), "{subscribe}");
    let run = run_to_end(&mut c).await;
    let detail = c.call("getRun", json!({"run": run})).await.unwrap();
    let project_id = f
        .server
        .store
        .run(rummy::store::GetRun {
            alias: run.clone(),
            project_id: None,
        })
        .await
        .unwrap()
        .expect("run")
        .project_id;
    assert_eq!(detail["run"], run.as_str());

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let id = f
        .server
        .subscribe_with_changes(project_id, Collector(tx).start().recipient());
    // The hub turns the store's feed on asynchronously; a write after a
    // round trip through the hub is seen.
    f.server
        .hub
        .send(rummy::hub::ClientCount { project_id })
        .await
        .unwrap();
    c.call(
        "set",
        json!({"run": run, "path": "known://embedded", "body": "seen"}),
    )
    .await
    .unwrap();
    let pulse = loop {
        let frame = tokio::time::timeout(LONG, rx.recv())
            .await
            .expect("a pulse in time")
            .expect("hub still sending");
        if frame["method"] == "run/changed" {
            break frame;
        }
    };
    assert_eq!(pulse["params"]["path"], "known://embedded");
    assert_eq!(pulse["params"]["changeType"], "upsert");
    f.server
        .hub
        .do_send(rummy::hub::Unsubscribe { client_id: id });
    f.server.stop().await;
}
