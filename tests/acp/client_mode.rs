//! When another rummy process holds the database, `rummy acp` is a client
//! of its WebSocket: the run happens in the holder, permissions still go
//! to the ACP client. Without a listener to connect to, it says how to fix
//! that and exits non-zero.

use super::*;
use common::hello_client;

/// A rummy server in this test process holding the database of `vars`.
async fn holder(vars: &[(String, String)], listen: bool) -> rummy::ServerHandle {
    let config = rummy::Config::from_vars(vars.to_vec()).expect("config");
    let options = rummy::StartOptions {
        listen,
        ..rummy::StartOptions::default()
    };
    rummy::Server::start(config, options)
        .await
        .expect("the holder starts")
}

#[actix_web::test]
async fn with_the_database_held_the_prompt_runs_on_the_holder() {
    let provider = FakeProvider::start(vec![
        Reply::Content(
            r#"<set path="a.txt">new text</set><update status="102">editing</update>"#.into(),
        ),
        Reply::Content(r#"<update status="200">edited a.txt</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    place.write("a.txt", "old text");
    let cwd = place.cwd();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let server = holder(&vars, true).await;
    let addr = server.local_addr.expect("the holder listens");
    let shared = Shared::default();
    {
        let mut s = seen(&shared);
        s.answers.push_back("allow_once".into());
        // Offered, but the holder cannot write through this client.
        s.offer_fs = true;
    }
    let (session, stop) = with_agent(&vars, &cwd, shared.clone(), async |cx| {
        let session = new_session(&cx, &cwd).await;
        let stop = prompt(&cx, &session, "change a.txt").await;
        Ok((session, stop))
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(place.file("a.txt").as_deref(), Some("new text"));
    {
        let s = seen(&shared);
        assert_eq!(s.permissions.len(), 1, "the ACP client was asked");
        assert!(s.writes.is_empty(), "the holder wrote the disk itself");
    }
    assert!(tool_kinds(&shared).contains(&ToolKind::Edit));
    assert!(
        messages(&shared).contains("edited a.txt"),
        "{}",
        messages(&shared)
    );
    // The run is the holder's: its own clients see it, ended.
    let root = cwd.to_string_lossy().into_owned();
    let mut client = hello_client(addr, &root, &root).await;
    let run = client
        .call("getRun", serde_json::json!({"run": session}))
        .await
        .expect("the holder has the run");
    assert_eq!(run["status"], 200, "{run}");
    assert_eq!(run["last_summary"], "edited a.txt", "{run}");
    client.close().await;
    server.stop().await;
}

#[actix_web::test]
async fn a_session_of_the_holder_loads_over_its_websocket() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<update status="200">first answer</update>"#.into()),
        Reply::Content(r#"<update status="200">second answer</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let server = holder(&vars, true).await;
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
        let replayed = seen(&shared).updates.clone();
        let user = replayed.iter().any(|u| {
            matches!(u, SessionUpdate::UserMessageChunk(c)
                if matches!(&c.content, ContentBlock::Text(t) if t.text.contains("remember me")))
        });
        assert!(user, "the prompt is replayed: {replayed:?}");
        Ok(prompt(&cx, &session, "and again").await)
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let told = messages(&shared);
    assert!(told.contains("first answer"), "{told}");
    assert!(told.contains("second answer"), "{told}");
    server.stop().await;
}

#[actix_web::test]
async fn a_holder_without_a_listener_is_refused_with_how_to_fix_it() {
    let provider = FakeProvider::start(vec![]).await;
    let place = Place::new();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let server = holder(&vars, false).await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rummy"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(place.project.path())
        .arg("acp")
        .stdin(Stdio::piped());
    // stdin stays open: the refusal must not wait for the client.
    let out = tokio::task::spawn_blocking(move || {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        child.wait_with_output().expect("exits")
    });
    let out = tokio::time::timeout(LONG, out)
        .await
        .expect("it exits at once")
        .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no WebSocket listener"), "{stderr}");
    assert!(stderr.contains("--listen"), "how to fix it: {stderr}");
    assert!(stderr.contains("RUMMY_DB_PATH"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing but ACP on stdout");
    server.stop().await;
}

#[actix_web::test]
async fn a_command_allowed_once_runs_here_and_streams_to_the_holder() {
    let provider = FakeProvider::start(vec![
        Reply::Content(r#"<sh>echo from-this-process</sh><update status="102">r</update>"#.into()),
        Reply::Content(r#"<update status="200">ran it</update>"#.into()),
    ])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let server = holder(&vars, true).await;
    let addr = server.local_addr.expect("the holder listens");
    let root = cwd.to_string_lossy().into_owned();
    let shared = Shared::default();
    seen(&shared).answers.push_back("allow_once".into());
    let (session, stop, output) = with_agent(&vars, &cwd, shared.clone(), async |cx| {
        let session = new_session(&cx, &cwd).await;
        let stop = prompt(&cx, &session, "run it").await;
        // The command runs beside the turn: the holder receives its output
        // as a client's `stream` calls.
        let mut client = hello_client(addr, &root, &root).await;
        let deadline = tokio::time::Instant::now() + LONG;
        let output = loop {
            let rows = client
                .call(
                    "getEntries",
                    serde_json::json!({"run": session, "pattern": "**", "withBody": true}),
                )
                .await
                .expect("getEntries");
            let out = rows
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| {
                    r["path"].as_str().is_some_and(|p| p.ends_with("_1"))
                        && r["body"].as_str().is_some_and(|b| b.contains("from-this"))
                })
                .cloned();
            match out {
                Some(row) if row["state"] != "streaming" => break Some(row),
                _ if tokio::time::Instant::now() > deadline => break None,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        client.close().await;
        Ok((session, stop, output))
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let row = output.expect("the holder has the command's stdout");
    assert_eq!(row["body"], "from-this-process\n", "{row}");
    assert_eq!(row["state"], "resolved", "completed with exit 0: {row}");
    assert!(!session.is_empty());
    server.stop().await;
}

#[actix_web::test]
async fn a_command_running_here_is_killed_when_the_holder_cancels_its_stream() {
    // `exec` makes the shell's pid the sleep's, so the pid file names the
    // process that must die.
    let provider = FakeProvider::start(vec![Reply::Content(
        r#"<sh>echo $$ > pid.txt; exec sleep 120</sh><update status="200">started</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let server = holder(&vars, true).await;
    let addr = server.local_addr.expect("the holder listens");
    let root = cwd.to_string_lossy().into_owned();
    let shared = Shared::default();
    seen(&shared).answers.push_back("allow_once".into());
    let pid_file = cwd.join("pid.txt");
    let (stop, gone) = with_agent(&vars, &cwd, shared.clone(), async |cx| {
        let session = new_session(&cx, &cwd).await;
        let stop = prompt(&cx, &session, "start it").await;
        let deadline = tokio::time::Instant::now() + LONG;
        let pid = loop {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            match pid {
                Some(pid) => break pid,
                None if tokio::time::Instant::now() > deadline => panic!("the command never ran"),
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        // A killed process not yet reaped is a zombie ("Z"): dead too.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let state = stat.rsplit_once(") ")?.1.chars().next()?;
                    Some(state != 'Z')
                })
                .unwrap_or(false)
        };
        assert!(alive(), "the command runs in this process's group");
        let mut client = hello_client(addr, &root, &root).await;
        let rows = client
            .call(
                "getEntries",
                serde_json::json!({"run": session, "pattern": "**"}),
            )
            .await
            .expect("getEntries");
        let path = rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["path"].as_str())
            .find(|p| p.starts_with("log://turn_1/sh/"))
            .map(str::to_string)
            .expect("the command's log entry is on the holder");
        client
            .call(
                "stream/cancel",
                serde_json::json!({"run": session, "path": path}),
            )
            .await
            .expect("stream/cancel");
        let deadline = tokio::time::Instant::now() + LONG;
        while alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        client.close().await;
        Ok((stop, !alive()))
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert!(
        gone,
        "the cancelled command was killed, long before its sleep ended"
    );
    server.stop().await;
}

#[actix_web::test]
async fn a_client_that_goes_away_mid_turn_cancels_its_run_on_the_holder() {
    let provider = FakeProvider::start(vec![Reply::Delayed(
        Duration::from_secs(30),
        r#"<update status="200">too late</update>"#.into(),
    )])
    .await;
    let place = Place::new();
    let cwd = place.cwd();
    let vars = test_vars(place.home.path(), &provider.base_url());
    let server = holder(&vars, true).await;
    let addr = server.local_addr.expect("the holder listens");
    let calls = {
        let p = &provider;
        move || p.calls().iter().filter(|c| c.contains("chat")).count()
    };
    let session = with_agent(&vars, &cwd, Shared::default(), async |cx| {
        let session = new_session(&cx, &cwd).await;
        let req = PromptRequest::new(
            session.clone(),
            vec![ContentBlock::Text(TextContent::new("take your time"))],
        );
        // Sent, never awaited: the client leaves while the model works.
        let _pending = cx.send_request(req);
        let deadline = tokio::time::Instant::now() + LONG;
        while calls() == 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(session)
    })
    .await;
    let root = cwd.to_string_lossy().into_owned();
    let mut client = hello_client(addr, &root, &root).await;
    let deadline = tokio::time::Instant::now() + LONG;
    let status = loop {
        let run = client
            .call("getRun", serde_json::json!({"run": session}))
            .await
            .expect("the holder has the run");
        let status = run["status"].as_i64().unwrap_or_default();
        if status != 102 || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 499, "cancelled, not left waiting");
    client.close().await;
    server.stop().await;
}
