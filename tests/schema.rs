//! The protocol schema: `rummy schema` names every method the server
//! answers and every notification, the schema compiles, and the check the
//! integration tests' WsClient makes on every frame is real (bad frames fail).

mod common;

use common::{protocol, start_server, ProtocolSchema, Reply, WsClient};
use rummy::protocol::schema::{document, NOTIFICATIONS};
use rummy::server::methods::{ALL, ENTRY_METHODS};
use serde_json::{json, Value};
use std::process::Command;

fn rummy_schema(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rummy"))
        .arg("schema")
        .args(args)
        .output()
        .expect("rummy schema runs");
    assert!(
        out.status.success(),
        "rummy schema failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("rummy schema prints one JSON document")
}

#[test]
fn rummy_schema_names_every_method_and_notification() {
    let doc = rummy_schema(&[]);
    assert_eq!(
        doc["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&doc).expect("the document is itself a valid JSON Schema");
    for m in ALL.iter().chain(ENTRY_METHODS) {
        let entry = &doc["methods"][m.name];
        assert_eq!(entry["served"], true, "{} is not listed as served", m.name);
        assert!(
            entry["params"].is_object(),
            "{} has no params schema",
            m.name
        );
        assert!(
            entry["result"].is_object(),
            "{} has no result schema",
            m.name
        );
        assert!(entry["description"].is_string(), "{}", m.name);
    }
    for n in NOTIFICATIONS {
        assert!(
            doc["notifications"][n.name]["params"].is_object(),
            "{} has no payload schema",
            n.name
        );
    }
    // Spec 03 §3: sent today, and defined ahead of the features that send them.
    for (name, sent) in [
        ("run/state", true),
        ("run/progress", true),
        ("run/proposal", true),
        ("run/resolved", true),
        ("stream/cancelled", true),
        ("ui/render", false),
        ("ui/notify", false),
    ] {
        assert_eq!(doc["notifications"][name]["sent"], sent, "{name}");
    }
    // The binary prints what the library derives; --pretty only indents.
    assert_eq!(doc, document());
    assert_eq!(rummy_schema(&["--pretty"]), doc);
    // Every subschema compiles with its references resolved.
    ProtocolSchema::compile(&doc);
}

#[test]
fn known_bad_frames_fail_validation() {
    let p = protocol();
    // Params.
    assert!(p.check_params("getModels", &json!({"limit": 5})).is_ok());
    assert!(p
        .check_params("getModels", &json!({"limit": "ten"}))
        .is_err());
    assert!(p
        .check_params("rummy/hello", &json!({"projectRoot": "/x"}))
        .is_err());
    assert!(p.check_params("no/such/method", &json!({})).is_err());
    assert!(p
        .check_params(
            "set",
            &json!({"path": "run://", "attributes": {"model": "m", "mode": "ask"}})
        )
        .is_ok());
    assert!(p
        .check_params(
            "set",
            &json!({"path": "run://", "attributes": {"model": "m", "mode": "bogus"}})
        )
        .is_err());
    assert!(p
        .check_params("set", &json!({"path": "known://x", "body": "x"}))
        .is_err());
    assert!(p
        .check_params(
            "set",
            &json!({"run": "r", "path": "known://x", "state": "done"})
        )
        .is_err());
    assert!(p
        .check_params("init", &json!({"name": "a", "projectRoot": "/x"}))
        .is_ok());
    // Results: fields are required, typed, and no others appear.
    let model = json!({"alias": "a", "actual": "openai/x", "context_length": null});
    assert!(p.check_result("getModels", &json!([model])).is_ok());
    assert!(p
        .check_result("getModels", &json!([{"alias": "a", "actual": "openai/x"}]))
        .is_err());
    let mut extra = model.clone();
    extra["surprise"] = json!(1);
    assert!(p.check_result("getModels", &json!([extra])).is_err());
    assert!(p.check_result("ping", &json!({})).is_ok());
    assert!(p.check_result("ping", &json!({"ok": true})).is_err());
    assert!(p
        .check_result("removeModel", &json!({"status": "ok"}))
        .is_ok());
    assert!(p.check_result("removeModel", &json!({"ok": true})).is_err());
    assert!(p.check_result("get", &json!({"ok": false})).is_err());
    // Notifications.
    let progress = json!({"run": "r", "turn": 1, "status": "thinking"});
    assert!(p.check_notification("run/progress", &progress).is_ok());
    assert!(p
        .check_notification(
            "run/progress",
            &json!({"run": "r", "turn": 1, "status": "sleeping"})
        )
        .is_err());
    assert!(p
        .check_notification(
            "run/state",
            &json!({"run": "r", "turn": 1, "status": 200, "history": [], "unknowns": []})
        )
        .is_err());
    assert!(p.check_notification("run/nothing", &json!({})).is_err());
    // Whole frames.
    let note = json!({"jsonrpc": "2.0", "method": "run/progress", "params": progress});
    assert!(p.check_frame(&note).is_ok());
    assert!(p
        .check_frame(&json!({"method": "run/progress", "params": progress}))
        .is_err());
    assert!(p
        .check_frame(&json!({"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}}))
        .is_err());
    assert!(p
        .check_frame(&json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "m"}}))
        .is_ok());
    assert!(p
        .check_frame(
            &json!({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}})
        )
        .is_err());
}

#[actix_web::test]
#[should_panic(expected = "breaks the protocol schema")]
async fn a_client_call_with_ill_typed_params_fails_the_test() {
    let f = start_server(vec![]).await;
    let mut c = WsClient::connect(f.server.local_addr.expect("listening")).await;
    let _ = c.call("getModels", json!({"limit": "ten"})).await;
}

#[actix_web::test]
async fn the_server_answers_what_the_schema_serves_and_discover_agrees() {
    let f = start_server(vec![Reply::Content(
        r#"<update status="200">done</update>"#.to_string(),
    )])
    .await;
    let mut c = WsClient::connect(f.server.local_addr.expect("listening")).await;
    let doc = document();
    let discovered = c.call("discover", json!({})).await.expect("discover");
    let methods = doc["methods"].as_object().expect("methods");
    for (name, m) in methods {
        let served = m["served"] == true;
        assert_eq!(
            discovered["methods"].get(name).is_some(),
            served,
            "discover and the schema disagree on {name}"
        );
        // Empty params are wrong for most methods; what matters is that
        // the server knows exactly the served ones.
        let answer = c.call_unchecked(name, json!({})).await;
        let not_found = matches!(&answer, Err(e) if e["code"] == -32601);
        assert_eq!(not_found, !served, "{name}: {answer:?}");
    }
    for name in doc["notifications"]
        .as_object()
        .expect("notifications")
        .keys()
    {
        assert!(
            discovered["notifications"].get(name).is_some(),
            "discover lacks {name}"
        );
    }
    // A real run: every frame on the way is checked by WsClient.
    let root = f.home.path().to_string_lossy().into_owned();
    c.call(
        "rummy/hello",
        json!({"name": "schema", "projectRoot": root}),
    )
    .await
    .expect("hello");
    let started = c
        .call(
            "set",
            json!({"path": "run://", "body": "Go", "attributes": {"model": "fake", "mode": "ask"}}),
        )
        .await
        .expect("run starts");
    let alias = started["alias"].as_str().expect("alias").to_string();
    c.wait_notification("run/state", std::time::Duration::from_secs(20), |n| {
        n["params"]["run"] == alias.as_str() && n["params"]["status"] != 102
    })
    .await;
    c.call("getRun", json!({"run": alias}))
        .await
        .expect("getRun");
    let runs = c.call("getRuns", json!({})).await.expect("getRuns");
    assert_eq!(runs[0]["run"], alias.as_str());
    c.call("getEntries", json!({"run": alias, "pattern": "**"}))
        .await
        .expect("getEntries");
}
