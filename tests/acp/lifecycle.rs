//! A session loaded after a restart and a failed run as an error response.

use super::*;

#[actix_web::test]
async fn a_session_loads_again_after_a_restart() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<update status="200">first answer</update>"#.into()),
        Reply::Content(r#"<update status="200">second answer</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let session = with_agent(&vars, &cwd, Shared::default(), async |cx| {
        let session = new_session(&cx, &cwd).await;
        assert_eq!(
            prompt(&cx, &session, "remember me").await,
            StopReason::EndTurn
        );
        Ok(session)
    })
    .await;
    let shared = Shared::default();
    let stop = with_agent(&vars, &cwd, shared.clone(), async |cx| {
        cx.send_request(LoadSessionRequest::new(session.clone(), cwd.clone()))
            .block_task()
            .await?;
        let replayed: Vec<SessionUpdate> = seen(&shared).updates.clone();
        let user = replayed.iter().any(|u| {
            matches!(u, SessionUpdate::UserMessageChunk(c)
                if matches!(&c.content, ContentBlock::Text(t) if t.text.contains("remember me")))
        });
        assert!(user, "the prompt is replayed: {replayed:?}");
        assert!(
            messages(&shared).contains("first answer"),
            "{}",
            messages(&shared)
        );
        Ok(prompt(&cx, &session, "and again").await)
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert!(
        messages(&shared).contains("second answer"),
        "{}",
        messages(&shared)
    );
    assert!(
        !messages(&shared)
            .replace("first answer", "")
            .contains("first answer"),
        "history is not sent twice"
    );
}

#[actix_web::test]
async fn a_failed_run_is_a_json_rpc_error_with_the_reason() {
    let provider = FakeProvider::start(vec![Reply::Error(400, "the model refuses".into())]).await;
    let place = Place::new();
    let cwd = place.cwd();
    let error = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        Shared::default(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let req =
                PromptRequest::new(session, vec![ContentBlock::Text(TextContent::new("hello"))]);
            let r = tokio::time::timeout(LONG, cx.send_request(req).block_task())
                .await
                .expect("the turn ends");
            Ok(r.expect_err("a failed run is an error response"))
        },
    )
    .await;
    let data = error
        .data
        .as_ref()
        .map(|d| d.to_string())
        .unwrap_or_default();
    assert!(
        data.contains("refuses"),
        "the reason goes with it: {error:?} {data}"
    );
}
