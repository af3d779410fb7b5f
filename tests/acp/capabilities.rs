//! The client's capabilities: file reads through `fs/read_text_file`,
//! accepted `cp`/`mv` destinations through `fs/write_text_file`,
//! diffs in the edit's `tool_call_update`, and accepted commands in a
//! client terminal (allowed once, and in a yolo loop after allow always).

use super::*;

/// The diffs (path, old, new) of the `tool_call_update`s the client saw.
fn update_diffs(s: &Shared) -> Vec<(std::path::PathBuf, Option<String>, String)> {
    seen(s)
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCallUpdate(u) => u.fields.content.clone(),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            ToolCallContent::Diff(d) => Some((d.path, d.old_text, d.new_text)),
            _ => None,
        })
        .collect()
}

/// The text contents of the `tool_call_update`s the client saw.
fn update_texts(s: &Shared) -> String {
    seen(s)
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ToolCallUpdate(u) => u.fields.content.clone(),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            ToolCallContent::Content(c) => match c.content {
                ContentBlock::Text(t) => Some(t.text),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("|")
}

#[actix_web::test]
async fn with_fs_read_offered_a_get_sees_the_unsaved_buffer() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<get path="a.txt"/><update status="102">reading</update>"#.into()),
        Reply::Content(r#"<update status="200">read it</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "saved on disk");
    let cwd = place.cwd();
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.offer_fs = true;
        s.buffers
            .insert(cwd.join("a.txt"), "unsaved in the editor".into());
    }
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "read a.txt").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(seen(&shared).reads, vec![cwd.join("a.txt")]);
    let second = provider.requests()[1].to_string();
    assert!(
        second.contains("unsaved in the editor"),
        "the model read the buffer: {second}"
    );
    assert!(!second.contains("saved on disk"), "not the disk: {second}");
    assert_eq!(place.file("a.txt").as_deref(), Some("saved on disk"));
}

#[actix_web::test]
async fn without_fs_read_a_get_reads_the_disk() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<get path="a.txt"/><update status="102">reading</update>"#.into()),
        Reply::Content(r#"<update status="200">read it</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "saved on disk");
    let cwd = place.cwd();
    let shared = Shared::default();
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "read a.txt").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert!(seen(&shared).reads.is_empty(), "not offered, not asked");
    assert!(provider.requests()[1].to_string().contains("saved on disk"));
}

#[actix_web::test]
async fn an_accepted_edit_updates_its_call_with_a_diff() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<set path="a.txt">new text</set><update status="102">e</update>"#.into()),
        Reply::Content(r#"<update status="200">edited</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "old text");
    let cwd = place.cwd();
    let shared = Shared::default();
    seen(&shared).answers.push_back("allow_once".into());
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "edit a.txt").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let diffs = update_diffs(&shared);
    assert!(
        diffs.contains(&(
            cwd.join("a.txt"),
            Some("old text".to_string()),
            "new text".to_string()
        )),
        "{diffs:?}"
    );
}

#[actix_web::test]
async fn a_command_allowed_once_runs_in_the_client_terminal() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<sh>echo from-the-terminal</sh><update status="102">r</update>"#.into()),
        Reply::Content(r#"<update status="200">started</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.offer_terminal = true;
        s.answers.push_back("allow_once".into());
    }
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let stop = prompt(&cx, &session, "run it").await;
            // The command runs beside the turn: wait for the terminal.
            let deadline = tokio::time::Instant::now() + LONG;
            while seen(&shared).terminals.is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(stop)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(seen(&shared).terminals, ["echo from-the-terminal"]);
}

#[actix_web::test]
async fn after_allow_always_a_yolo_command_runs_in_the_terminal_before_the_next_turn() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<set path="b.txt">B</set><update status="102">b</update>"#.into()),
        Reply::Content(r#"<update status="200">wrote b</update>"#.into()),
        Reply::Content(r#"<sh>echo out$((40+2))</sh><update status="102">r</update>"#.into()),
        Reply::Content(r#"<update status="200">ran it</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.offer_terminal = true;
        s.offer_fs = true;
        s.answers.push_back("allow_always".into());
    }
    let (first, second) = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let first = prompt(&cx, &session, "write b").await;
            let second = prompt(&cx, &session, "now run it").await;
            Ok((first, second))
        },
    )
    .await;
    assert_eq!((first, second), (StopReason::EndTurn, StopReason::EndTurn));
    assert_eq!(
        seen(&shared).permissions.len(),
        1,
        "allow always asked once"
    );
    assert_eq!(seen(&shared).terminals, ["echo out$((40+2))"]);
    let last = provider.requests()[3].to_string();
    // The turn waited for the terminal: the model's next turn sees the
    // exit (the output is in the command's summarized `sh://` entries).
    assert!(last.contains("exit=0"), "{last}");
    assert!(
        update_texts(&shared).contains("out42"),
        "the call's update carries the output: {}",
        update_texts(&shared)
    );
}

#[actix_web::test]
async fn embedded_resources_are_visible_entries_of_the_run() {
    use agent_client_protocol::v1::schema::{
        EmbeddedResource, EmbeddedResourceResource, TextResourceContents,
    };
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<update status="200">seen</update>"#.into()),
        Reply::Content(r#"<update status="200">seen again</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "saved on disk");
    let cwd = place.cwd();
    let resource = |uri: String, text: &str| {
        ContentBlock::Resource(EmbeddedResource::new(
            EmbeddedResourceResource::TextResourceContents(TextResourceContents::new(text, uri)),
        ))
    };
    let file_uri = format!("file://{}", cwd.join("a.txt").display());
    let blocks = vec![
        ContentBlock::Text(TextContent::new("look at these")),
        resource(file_uri, "the editor's a.txt"),
        resource("https://example.com/spec".into(), "the spec says so"),
    ];
    let stops = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        Shared::default(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            let req = PromptRequest::new(session.clone(), blocks);
            let first = cx.send_request(req).block_task().await?.stop_reason;
            // Attachments are taken once: the next loop has them as entries
            // of the run, not as new attachments.
            let second = prompt(&cx, &session, "and now?").await;
            Ok((first, second))
        },
    )
    .await;
    assert_eq!(stops, (StopReason::EndTurn, StopReason::EndTurn));
    let first = provider.requests()[0].to_string();
    assert!(first.contains("the editor's a.txt"), "{first}");
    assert!(
        !first.contains("saved on disk"),
        "the editor's text wins: {first}"
    );
    assert!(first.contains("the spec says so"), "{first}");
    assert!(
        first.contains(r#"path=\"https://example.com/spec\""#),
        "an entry at its URI: {first}"
    );
    assert!(
        first.contains("(attached: a.txt)"),
        "the prompt names the entry: {first}"
    );
    assert_eq!(place.file("a.txt").as_deref(), Some("saved on disk"));
}

#[actix_web::test]
async fn a_cancel_kills_the_commands_terminal() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<set path="b.txt">B</set><update status="102">b</update>"#.into()),
        Reply::Content(r#"<update status="200">wrote b</update>"#.into()),
        Reply::Content(r#"<sh>hang until killed</sh><update status="102">r</update>"#.into()),
        Reply::Content(r#"<update status="200">too late</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.offer_terminal = true;
        s.answers.push_back("allow_always".into());
    }
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            assert_eq!(prompt(&cx, &session, "write b").await, StopReason::EndTurn);
            // The yolo loop's command waits on its terminal; cancel then.
            let req = PromptRequest::new(
                session.clone(),
                vec![ContentBlock::Text(TextContent::new("run it"))],
            );
            let pending = cx.send_request(req).block_task();
            let deadline = tokio::time::Instant::now() + LONG;
            while seen(&shared).terminals.is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            cx.send_notification(CancelNotification::new(session))?;
            let r = tokio::time::timeout(LONG, pending)
                .await
                .expect("the turn ends")?;
            // The kill follows the cancel; wait for it before closing.
            while seen(&shared).kills.is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(r.stop_reason)
        },
    )
    .await;
    assert_eq!(stop, StopReason::Cancelled);
    assert_eq!(seen(&shared).terminals, ["hang until killed"]);
    assert_eq!(seen(&shared).kills, ["term-0"], "the terminal was killed");
}

#[actix_web::test]
async fn with_fs_write_offered_cp_and_mv_destinations_arrive_as_fs_write_text_file() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<cp path="a.txt">b.txt</cp><mv path="c.txt">d.txt</mv><set path="known://plan">the plan</set><cp path="known://plan">plan.md</cp><update status="102">copying</update>"#
                .into(),
        ),
        Reply::Content(r#"<update status="200">copied</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "alpha");
    place.write("c.txt", "gamma");
    let cwd = place.cwd();
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.offer_fs = true;
        for _ in 0..3 {
            s.answers.push_back("allow_once".into());
        }
    }
    let stop = with_agent(
        &test_vars(place.home.path(), &provider.base_url()),
        &cwd,
        shared.clone(),
        async |cx| {
            let session = new_session(&cx, &cwd).await;
            Ok(prompt(&cx, &session, "copy and move").await)
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let mut writes = seen(&shared).writes.clone();
    writes.sort();
    assert_eq!(
        writes,
        vec![
            (cwd.join("b.txt"), "alpha".to_string()),
            (cwd.join("d.txt"), "gamma".to_string()),
            (cwd.join("plan.md"), "the plan".to_string()),
        ],
        "each accepted destination went to the client"
    );
    assert_eq!(place.file("a.txt").as_deref(), Some("alpha"), "cp keeps it");
    assert_eq!(place.file("b.txt").as_deref(), Some("alpha"));
    assert_eq!(place.file("c.txt"), None, "mv removes the source");
    assert_eq!(place.file("d.txt").as_deref(), Some("gamma"));
    assert_eq!(place.file("plan.md").as_deref(), Some("the plan"));
}
