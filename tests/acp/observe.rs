//! What a client watches: reasoning as thought chunks, unknowns as a plan,
//! usage updates, and (with `--listen`) the same run seen by a WebSocket
//! client of the project.

use super::*;

#[actix_web::test]
async fn thoughts_plan_and_usage_arrive() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<think>pondering deeply</think><set path="unknown://main/where">Where is main?</set><update status="102">asking</update>"#
                .into(),
        ),
        Reply::Content(r#"<update status="200">done</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let shared = Shared::default();
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "think first").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let updates = seen(&shared).updates.clone();
    let thought = updates.iter().any(|u| {
        matches!(u, SessionUpdate::AgentThoughtChunk(c)
            if matches!(&c.content, ContentBlock::Text(t) if t.text.contains("pondering deeply")))
    });
    assert!(thought, "reasoning is a thought chunk: {updates:?}");
    let plan = updates.iter().any(|u| {
        matches!(u, SessionUpdate::Plan(p)
            if p.entries.iter().any(|e| e.content.contains("Where is main?")))
    });
    assert!(plan, "the unknown is a plan entry: {updates:?}");
    let usage = updates.iter().find_map(|u| match u {
        SessionUpdate::UsageUpdate(u) => Some((u.used, u.size)),
        _ => None,
    });
    let (used, size) = usage.expect("a usage update");
    assert!(size > 0 && used > 0 && used <= size, "{used}/{size}");
}

#[actix_web::test]
async fn with_listen_a_websocket_client_sees_the_sessions_run() {
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<update status="200">answered for everyone</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let db = place.home.path().join("rummy.db");
    let shared = Shared::default();
    seen(&shared).args.push("--listen".into());
    let root = cwd.to_string_lossy().into_owned();
    let state = with_agent(&vars, &cwd, shared.clone(), async |cx| {
        let session = new_session(&cx, &cwd).await;
        // The listener's address is in the lock file, as `rummy run` reads it.
        let listen = rummy::store::db::read_holder(&db)
            .and_then(|h| h.listen)
            .expect("the lock file names the listener");
        let addr: std::net::SocketAddr = listen
            .trim_start_matches("ws://")
            .parse()
            .expect("an address");
        let mut ws = common::hello_client(addr, &root, &root).await;
        assert_eq!(
            prompt(&cx, &session, "tell everyone").await,
            StopReason::EndTurn
        );
        let state = ws
            .wait_notification("run/state", LONG, |n| {
                n["params"]["run"] == session.as_str() && n["params"]["status"] == 200
            })
            .await;
        ws.close().await;
        Ok(state)
    })
    .await;
    assert!(
        state.to_string().contains("answered for everyone"),
        "{state}"
    );
}
