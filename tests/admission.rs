//! Who may connect and what hello may name, over a real WebSocket; and one
//! process per database.

mod common;

use common::{project_dir, test_vars, FakeProvider, Reply, WsClient};
use futures_util::{SinkExt, StreamExt};
use rummy::store::ProjectRoot;
use rummy::{Config, Server, ServerHandle, StartError, StartOptions};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const LONG: Duration = Duration::from_secs(20);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Fixture {
    home: tempfile::TempDir,
    _provider: FakeProvider,
    server: ServerHandle,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr.expect("listening")
    }
}

/// A server whose settings are the test defaults plus `extra`.
async fn start_with(replies: Vec<Reply>, extra: &[(&str, String)]) -> Fixture {
    let home = tempfile::tempdir().expect("temp dir");
    let provider = FakeProvider::start(replies).await;
    let mut vars = test_vars(home.path(), &provider.base_url());
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let config = Config::from_vars(vars).expect("config");
    let server = Server::start(config, StartOptions::default())
        .await
        .expect("server starts");
    Fixture {
        home,
        _provider: provider,
        server,
    }
}

/// Opens `ws://{addr}{target}` with these headers set (replacing any the
/// client would send). Err is the refused upgrade's status and body.
async fn upgrade(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, String)],
) -> Result<Socket, (u16, String)> {
    let mut request = format!("ws://{addr}{target}")
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    match tokio::time::timeout(LONG, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(WsError::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((response.status().as_u16(), body))
        }
        Ok(Err(e)) => panic!("upgrade failed without an HTTP answer: {e}"),
        Err(_) => panic!("upgrade timed out"),
    }
}

/// One request on a raw socket; the server answers ping with `{}`.
async fn ping(ws: &mut Socket) -> Value {
    ws.send(Message::Text(
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string(),
    ))
    .await
    .expect("send");
    loop {
        let frame = tokio::time::timeout(LONG, ws.next())
            .await
            .expect("reply in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = frame {
            let v: Value = serde_json::from_str(&text).expect("json");
            if v["id"] == 1 {
                return v["result"].clone();
            }
        }
    }
}

async fn assert_accepted(addr: SocketAddr, target: &str, headers: &[(&str, String)]) {
    let mut ws = upgrade(addr, target, headers)
        .await
        .unwrap_or_else(|(status, body)| panic!("{headers:?} refused: {status} {body}"));
    assert_eq!(ping(&mut ws).await, json!({}));
}

async fn assert_refused(
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, String)],
    status: u16,
    says: &str,
) {
    match upgrade(addr, target, headers).await {
        Ok(_) => panic!("{target} {headers:?} was accepted"),
        Err((got, body)) => {
            assert_eq!(got, status, "{headers:?}: {body}");
            assert!(body.contains(says), "{headers:?}: {body}");
        }
    }
}

fn origin(value: &str) -> Vec<(&'static str, String)> {
    vec![("Origin", value.to_string())]
}

#[actix_web::test]
async fn cross_origin_and_null_origin_upgrades_are_refused() {
    let f = start_with(vec![], &[]).await;
    let addr = f.addr();
    for bad in [
        "http://evil.example",
        "null",
        &format!("http://evil.example:{}", addr.port()),
        &format!("https://localhost:{}", addr.port()),
        "http://localhost:1",
    ] {
        assert_refused(addr, "/", &origin(bad), 403, "Origin").await;
    }
    f.server.stop().await;
}

#[actix_web::test]
async fn no_origin_own_origins_and_configured_origins_are_accepted() {
    let f = start_with(
        vec![],
        &[(
            "RUMMY_ALLOWED_ORIGINS",
            "http://localhost:5173, https://editor.example".into(),
        )],
    )
    .await;
    let addr = f.addr();
    let port = addr.port();
    assert_accepted(addr, "/", &[]).await;
    for good in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
        "http://localhost:5173".to_string(),
        "https://editor.example".to_string(),
    ] {
        assert_accepted(addr, "/", &origin(&good)).await;
    }
    f.server.stop().await;
}

#[actix_web::test]
async fn a_rebinding_host_is_refused() {
    let f = start_with(vec![], &[("RUMMY_ALLOWED_HOSTS", "rummy.internal".into())]).await;
    let addr = f.addr();
    let port = addr.port();
    let host = |h: String| vec![("Host", h)];
    assert_refused(
        addr,
        "/",
        &host(format!("evil.example:{port}")),
        403,
        "Host",
    )
    .await;
    // Even with an allowed origin, the rebinding name gives it away.
    let mut both = host(format!("evil.example:{port}"));
    both.push(("Origin", format!("http://localhost:{port}")));
    assert_refused(addr, "/", &both, 403, "Host").await;
    assert_accepted(addr, "/", &host(format!("localhost:{port}"))).await;
    assert_accepted(addr, "/", &host(format!("rummy.internal:{port}"))).await;
    f.server.stop().await;
}

#[actix_web::test]
async fn a_set_token_is_required_by_header_or_query() {
    let f = start_with(vec![], &[("RUMMY_AUTH_TOKEN", "tok-3f9a".into())]).await;
    let addr = f.addr();
    let bearer = |t: &str| vec![("Authorization", format!("Bearer {t}"))];
    assert_refused(addr, "/", &[], 401, "no token").await;
    assert_refused(addr, "/", &bearer("tok-3f9b"), 401, "does not match").await;
    assert_refused(addr, "/?token=nope", &[], 401, "does not match").await;
    // A refused origin is refused before the token is looked at.
    assert_refused(addr, "/?token=tok-3f9a", &origin("null"), 403, "Origin").await;
    assert_accepted(addr, "/", &bearer("tok-3f9a")).await;
    assert_accepted(addr, "/?token=tok-3f9a", &[]).await;
    // The plain client (no token) cannot connect at all.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await;
    match refused {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
        }
        other => panic!("expected 401, got {other:?}"),
    }
    f.server.stop().await;
}

async fn hello(c: &mut WsClient, name: &str, root: &str) -> Result<Value, Value> {
    c.call("rummy/hello", json!({"name": name, "projectRoot": root}))
        .await
}

#[actix_web::test]
async fn bad_project_roots_are_refused_and_create_nothing() {
    let f = start_with(vec![], &[]).await;
    let file = f.home.path().join("a-file.txt");
    std::fs::write(&file, "x").expect("file");
    let missing = f.home.path().join("missing");
    let mut c = WsClient::connect(f.addr()).await;
    let cases = [
        ("relative/proj", "must be an absolute path"),
        ("~/proj", "must be an absolute path"),
        (missing.to_str().expect("utf8"), "does not exist"),
        (file.to_str().expect("utf8"), "is not a directory"),
    ];
    for (root, says) in cases {
        let err = hello(&mut c, "bad", root).await.expect_err(root);
        assert_eq!(err["code"], -32602, "{root}: {err}");
        let message = err["message"].as_str().expect("message");
        assert!(
            message.starts_with("rummy/hello: projectRoot") && message.contains(says),
            "{root}: {message}"
        );
    }
    assert!(!missing.exists(), "the missing root was not created");
    // Nothing was bound and no project row was written.
    let gated = c.call("getRuns", json!({})).await.expect_err("unbound");
    assert_eq!(gated["code"], -32002);
    assert_eq!(
        f.server.store.run(ProjectRoot(1)).await.expect("store"),
        None
    );
    let ok = hello(&mut c, "bad", &project_dir("admission-bad-roots"))
        .await
        .expect("a real root binds");
    assert_eq!(ok["projectId"], 1, "the refusals used no project id");
    f.server.stop().await;
}

#[actix_web::test]
async fn roots_outside_rummy_project_roots_are_refused() {
    let allowed = tempfile::tempdir().expect("temp dir");
    let outside = tempfile::tempdir().expect("temp dir");
    let inner = allowed.path().join("proj");
    std::fs::create_dir(&inner).expect("dir");
    let f = start_with(
        vec![],
        &[(
            "RUMMY_PROJECT_ROOTS",
            allowed.path().to_string_lossy().into_owned(),
        )],
    )
    .await;
    let mut c = WsClient::connect(f.addr()).await;
    for root in [outside.path(), Path::new("/")] {
        let root = root.to_str().expect("utf8");
        let err = hello(&mut c, "out", root).await.expect_err(root);
        assert_eq!(err["code"], -32602);
        assert!(
            err["message"]
                .as_str()
                .is_some_and(|m| m.contains("is outside RUMMY_PROJECT_ROOTS")),
            "{err}"
        );
    }
    assert_eq!(
        f.server.store.run(ProjectRoot(1)).await.expect("store"),
        None
    );
    hello(&mut c, "in", inner.to_str().expect("utf8"))
        .await
        .expect("inside the allowed tree");
    hello(&mut c, "top", allowed.path().to_str().expect("utf8"))
        .await
        .expect("the allowed directory itself");
    f.server.stop().await;
}

#[actix_web::test]
async fn a_missing_rummy_project_root_stops_the_boot() {
    let home = tempfile::tempdir().expect("temp dir");
    let mut vars = test_vars(home.path(), "http://127.0.0.1:9");
    let missing = home.path().join("nope");
    vars.push((
        "RUMMY_PROJECT_ROOTS".into(),
        missing.to_string_lossy().into_owned(),
    ));
    let config = Config::from_vars(vars).expect("config");
    let err = Server::start(config, StartOptions::default())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, StartError::ProjectRoots(_)), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[cfg(unix)]
#[actix_web::test]
async fn the_canonical_root_serves_files_and_the_given_one_is_echoed() {
    let f = start_with(vec![], &[]).await;
    let real = f.home.path().join("real");
    std::fs::create_dir(&real).expect("dir");
    let link = f.home.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let canonical = std::fs::canonicalize(&real).expect("canonical");
    let mut c = WsClient::connect(f.addr()).await;
    let given = link.to_str().expect("utf8");
    let r = hello(&mut c, "linked", given).await.expect("hello");
    assert_eq!(r["projectRoot"], given, "echoed as sent");
    let id = r["projectId"].as_i64().expect("id");
    assert_eq!(
        f.server.store.run(ProjectRoot(id)).await.expect("store"),
        Some(canonical.to_string_lossy().into_owned()),
        "runs scan the canonical directory"
    );
    // Absolute patterns are confined against the canonical root.
    let pattern = format!("{}/src/*.rs", canonical.display());
    let set = c
        .call(
            "file/constraint",
            json!({"pattern": pattern, "visibility": "readonly"}),
        )
        .await
        .expect("constraint under the canonical root");
    assert_eq!(set["pattern"], "src/*.rs");
    // The same name said again with another root keeps its identity.
    let again = hello(&mut c, "linked", real.to_str().expect("utf8"))
        .await
        .expect("hello again");
    assert_eq!(again["projectId"], id);
    f.server.stop().await;
}

async fn start_run(c: &mut WsClient) -> String {
    let r = c
        .call(
            "set",
            json!({"path": "run://", "body": "Go", "attributes": {"model": "fake", "mode": "ask", "noRepo": true}}),
        )
        .await
        .expect("run starts");
    r["alias"].as_str().expect("alias").to_string()
}

#[actix_web::test]
async fn a_second_server_on_a_locked_database_is_refused_naming_the_holder() {
    let f = start_with(
        vec![Reply::Delayed(
            Duration::from_secs(1),
            r#"<update status="200">done</update>"#.into(),
        )],
        &[],
    )
    .await;
    let mut c = WsClient::connect(f.addr()).await;
    hello(&mut c, "locked", &project_dir("admission-locked"))
        .await
        .expect("hello");
    let alias = start_run(&mut c).await;
    c.wait_notification("run/progress", LONG, |n| {
        n["params"]["status"] == "thinking"
    })
    .await;

    // Same home, same database file: a second process would run recovery here.
    let second_vars = || test_vars(f.home.path(), "http://127.0.0.1:9");
    let err = Server::start(
        Config::from_vars(second_vars()).expect("config"),
        StartOptions::default(),
    )
    .await
    .err()
    .expect("the second server is refused");
    let message = err.to_string();
    assert!(matches!(err, StartError::Locked(_)), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id()))
            && message.contains("in use by another rummy process")
            && message.contains("rummy.db"),
        "{message}"
    );

    // And a real second process (`rummy serve`) exits at once with the same words.
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_rummy"));
    serve.arg("serve").env_clear();
    for (k, v) in second_vars() {
        serve.env(k, v);
    }
    let out = tokio::time::timeout(LONG, tokio::task::spawn_blocking(move || serve.output()))
        .await
        .expect("the second process exits by itself")
        .expect("joined")
        .expect("rummy runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        stderr.contains(&format!("pid {}", std::process::id()))
            && stderr.contains("in use by another rummy process"),
        "{stderr}"
    );

    let done = c
        .wait_notification("run/state", LONG, |n| {
            n["params"]["run"] == alias && n["params"]["status"] != 102
        })
        .await;
    assert_eq!(
        done["params"]["status"], 200,
        "the first run was not touched"
    );
    let runs = c.call("getRuns", json!({})).await.expect("getRuns");
    assert_eq!(runs[0]["run"], alias);
    assert_eq!(runs[0]["status"], 200);

    // Once the holder stops, the database is free again, and the new
    // holder's recovery leaves the finished run alone.
    f.server.stop().await;
    let third = Server::start(
        Config::from_vars(second_vars()).expect("config"),
        StartOptions::default(),
    )
    .await
    .expect("the lock was released on stop");
    let mut c = WsClient::connect(third.local_addr.expect("listening")).await;
    hello(&mut c, "locked", &project_dir("admission-locked"))
        .await
        .expect("hello");
    let runs = c.call("getRuns", json!({})).await.expect("getRuns");
    assert_eq!(runs[0]["run"], alias);
    assert_eq!(runs[0]["status"], 200);
    third.stop().await;
}

#[actix_web::test]
async fn the_engine_runs_without_a_listener() {
    let home = tempfile::tempdir().expect("temp dir");
    let config = Config::from_vars(test_vars(home.path(), "http://127.0.0.1:9")).expect("config");
    let server = Server::start(
        config,
        StartOptions {
            listen: false,
            tools: Some(std::sync::Arc::new(rummy::tools::ToolRegistry::builtin())),
            ..StartOptions::default()
        },
    )
    .await
    .expect("starts without a port");
    assert_eq!(server.local_addr, None);
    let models = server
        .store
        .run(rummy::store::ListModels {
            limit: None,
            offset: None,
        })
        .await
        .expect("store answers");
    assert!(models.iter().any(|m| m.alias == "fake"), "{models:?}");
    server.stop().await;
}
