//! `ClientConnection`: one WebSocket client. Frames are parsed here and
//! each request runs concurrently; replies may come out of order.
//!
//! The one ordering rule: while a `rummy/hello` is in flight, later frames
//! wait for it, so a client may pipeline requests behind its hello and
//! have them see the binding hello makes (or fail to make).

use super::router::{dispatch, find, Binding, CallCtx};
use super::AppState;
use crate::hub::{Push, Subscribe, Unsubscribe};
use crate::protocol::jsonrpc::{
    error_frame, notification_frame, parse_frame, result_frame, Inbound,
};
use actix::prelude::*;
use actix_web_actors::ws;
use serde_json::Value;
use std::collections::VecDeque;

/// A parsed call: its id (none for a notification), method and params.
struct Call {
    id: Option<Value>,
    method: String,
    params: Value,
}

pub struct ClientConnection {
    id: u64,
    app: AppState,
    binding: Option<Binding>,
    /// A text message arriving in fragments, until its last one.
    partial: Option<Vec<u8>>,
    /// A hello is being handled; calls arriving meanwhile go to `held`.
    hello_in_flight: bool,
    /// Calls that arrived behind an unfinished hello, oldest first.
    held: VecDeque<Call>,
}

impl ClientConnection {
    pub fn new(id: u64, app: AppState) -> Self {
        ClientConnection {
            id,
            app,
            binding: None,
            partial: None,
            hello_in_flight: false,
            held: VecDeque::new(),
        }
    }

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let call = match parse_frame(text) {
            Inbound::Invalid { id, error } => {
                ctx.text(error_frame(&id, &error));
                return;
            }
            Inbound::Request { id, method, params } => Call {
                id: Some(id),
                method,
                params,
            },
            Inbound::Notification { method, params } => Call {
                id: None,
                method,
                params,
            },
        };
        if self.hello_in_flight {
            self.held.push_back(call);
        } else {
            self.start(call, ctx);
        }
    }

    /// Dispatches one call; a hello holds back what follows until it ends.
    fn start(&mut self, call: Call, ctx: &mut ws::WebsocketContext<Self>) {
        let Call { id, method, params } = call;
        let is_hello = find(&method).is_some_and(|spec| spec.name == "rummy/hello");
        self.hello_in_flight |= is_hello;
        let call = CallCtx {
            app: self.app.clone(),
            client_id: self.id,
            binding: self.binding.clone(),
        };
        let rpc_id = id.clone();
        let fut = async move { dispatch(call, &method, params, rpc_id.as_ref()).await };
        ctx.spawn(fut.into_actor(self).map(move |outcome, act, ctx| {
            if let Some(binding) = outcome.bind {
                act.bind(binding, ctx);
            }
            if let Some(id) = id {
                let frame = match &outcome.reply {
                    Ok(result) => result_frame(&id, result),
                    Err(error) => error_frame(&id, error),
                };
                ctx.text(frame);
            }
            for notice in &outcome.notices {
                ctx.text(notification_frame(notice.method, &notice.params));
            }
            if is_hello {
                act.hello_in_flight = false;
                act.release_held(ctx);
            }
        }));
    }

    /// Dispatches held calls until none are left or another hello holds
    /// the rest.
    fn release_held(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        while !self.hello_in_flight {
            let Some(call) = self.held.pop_front() else {
                return;
            };
            self.start(call, ctx);
        }
    }

    /// Reassembles a fragmented message (bounded like a single frame).
    fn continuation(&mut self, item: actix_http::ws::Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (bytes, last) = match item {
            actix_http::ws::Item::FirstText(b) | actix_http::ws::Item::FirstBinary(b) => {
                self.partial = Some(Vec::new());
                (b, false)
            }
            actix_http::ws::Item::Continue(b) => (b, false),
            actix_http::ws::Item::Last(b) => (b, true),
        };
        let Some(buffer) = self.partial.as_mut() else {
            return;
        };
        if buffer.len() + bytes.len() > super::MAX_FRAME_BYTES {
            self.partial = None;
            ctx.text(error_frame(
                &Value::Null,
                &crate::protocol::jsonrpc::RpcError::new(
                    crate::protocol::jsonrpc::INVALID_REQUEST,
                    "Invalid Request: message too large",
                ),
            ));
            return;
        }
        buffer.extend_from_slice(&bytes);
        if last {
            let message = self.partial.take().unwrap_or_default();
            match String::from_utf8(message) {
                Ok(text) => self.handle_text(&text, ctx),
                Err(_) => ctx.text(error_frame(
                    &Value::Null,
                    &crate::protocol::jsonrpc::RpcError::new(
                        crate::protocol::jsonrpc::PARSE_ERROR,
                        "Parse error: message is not UTF-8 JSON",
                    ),
                )),
            }
        }
    }

    fn bind(&mut self, binding: Binding, ctx: &mut ws::WebsocketContext<Self>) {
        self.app.hub.do_send(Subscribe {
            client_id: self.id,
            project_id: binding.project_id,
            recipient: ctx.address().recipient(),
            run_changed: binding.run_changed,
        });
        self.binding = Some(binding);
    }
}

impl Actor for ClientConnection {
    type Context = ws::WebsocketContext<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        // A run survives its clients: leaving only stops notifications.
        self.app.hub.do_send(Unsubscribe { client_id: self.id });
    }
}

impl Handler<Push> for ClientConnection {
    type Result = ();
    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) {
        ctx.text(&*msg.0);
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ClientConnection {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(text)) => self.handle_text(&text, ctx),
            Ok(ws::Message::Binary(bytes)) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.handle_text(text, ctx),
                Err(_) => ctx.text(error_frame(
                    &Value::Null,
                    &crate::protocol::jsonrpc::RpcError::new(
                        crate::protocol::jsonrpc::PARSE_ERROR,
                        "Parse error: binary frame is not UTF-8 JSON",
                    ),
                )),
            },
            Ok(ws::Message::Continuation(item)) => self.continuation(item, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(client = self.id, "websocket protocol error: {e}");
                ctx.stop();
            }
        }
    }
}
