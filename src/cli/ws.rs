//! The client side of a running server's WebSocket, shared by the front
//! ends that defer to the process holding the database (`rummy run`'s
//! `RemoteBackend`, `rummy acp`'s client mode): finding the holder's
//! listener, connecting with the bearer token, the hello and how a reply's
//! error reads.

use super::CliError;
use crate::protocol::PROTOCOL_VERSION;
use crate::store::db::{read_holder, LockError};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::path::Path;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// JSON-RPC "invalid params": the server refused what we asked for.
const INVALID_PARAMS: i64 = -32602;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Where to reach the process that holds the database `db` (refused with
/// `held`): its listener and the token to send, from RUMMY_AUTH_TOKEN
/// (`token`) when the holder wants one.
pub fn holder_target(
    db: &Path,
    held: &LockError,
    token: Option<String>,
) -> Result<(String, Option<String>), CliError> {
    let holder = read_holder(db).unwrap_or_default();
    let Some(url) = holder.listen else {
        return Err(CliError::Failed(format!(
            "{held}; it has no WebSocket listener to connect to: restart it with one \
             (`rummy serve`, or `rummy acp --listen`), or give this process its own RUMMY_DB_PATH"
        )));
    };
    match (holder.token_required, token) {
        (false, _) => Ok((url, None)),
        (true, Some(t)) => Ok((url, Some(t))),
        (true, None) => Err(CliError::Usage(format!(
            "the server at {url} holds the database and requires RUMMY_AUTH_TOKEN; set it"
        ))),
    }
}

/// Opens the WebSocket, with `Authorization: Bearer` when a token is given.
pub async fn connect(url: &str, token: Option<&str>) -> Result<Ws, CliError> {
    let failed = |e: &dyn std::fmt::Display| {
        CliError::Failed(format!("cannot connect to the server at {url}: {e}"))
    };
    let mut request = url.into_client_request().map_err(|e| failed(&e))?;
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::Usage("RUMMY_AUTH_TOKEN is not a valid header".into()))?;
        request.headers_mut().insert("Authorization", value);
    }
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| failed(&e))?;
    Ok(ws)
}

/// `rummy/hello` params for the project at `root` (named by its path, as
/// the in-process front ends name it).
pub fn hello_params(root: &Path) -> Value {
    let root = root.to_string_lossy().into_owned();
    json!({"name": root, "projectRoot": root, "clientVersion": PROTOCOL_VERSION})
}

/// A JSON-RPC request frame.
pub fn request(id: u64, method: &str, params: Value) -> Message {
    let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    Message::Text(frame.to_string())
}

/// The next JSON frame; `None` once the connection is closed.
pub async fn read_frame<S>(ws: &mut S) -> Option<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => match serde_json::from_str(&text) {
                Ok(v) => return Some(v),
                Err(e) => tracing::warn!("the server sent a frame that is not JSON: {e}"),
            },
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// A reply frame as the result or the error of `method`: invalid params
/// are the caller's mistake (a usage error), the rest failures.
pub fn reply_result(method: &str, frame: &Value) -> Result<Value, CliError> {
    if let Some(error) = frame.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error")
            .to_string();
        return Err(
            if error.get("code").and_then(Value::as_i64) == Some(INVALID_PARAMS) {
                CliError::Usage(message)
            } else {
                CliError::Failed(format!("{method}: {message}"))
            },
        );
    }
    Ok(frame.get("result").cloned().unwrap_or(Value::Null))
}
