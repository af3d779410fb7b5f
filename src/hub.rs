//! `Hub`: which clients belong to which project; notifications fan out
//! from here. It knows nothing of runs (the run registry owns those), so
//! runs publish through it without a module cycle.
//!
//! Clients may also subscribe to the `run/changed` pulse. The hub asks the
//! store for entry changes only while at least one bound client wants
//! them, so writes cost nothing extra otherwise.

use crate::protocol::jsonrpc::notification_frame;
use crate::protocol::notifications::{Notification, RunChangedNotification};
use crate::store::changes::{EntriesChanged, WatchChanges};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// A serialized frame pushed to one client.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Push(pub Arc<str>);

/// An in-process subscriber (the local CLI driver, `rummy acp`'s prompt
/// turns): forwards each pushed frame, parsed, to a channel.
pub struct FrameCollector(pub tokio::sync::mpsc::UnboundedSender<serde_json::Value>);

impl Actor for FrameCollector {
    type Context = Context<Self>;
}

impl Handler<Push> for FrameCollector {
    type Result = ();
    fn handle(&mut self, msg: Push, _: &mut Context<Self>) {
        if let Ok(frame) = serde_json::from_str(&msg.0) {
            let _ = self.0.send(frame);
        }
    }
}

#[derive(Default)]
pub struct Hub {
    projects: HashMap<i64, HashMap<u64, Recipient<Push>>>,
    client_project: HashMap<u64, i64>,
    /// Clients that asked for `run/changed`.
    pulse_clients: std::collections::HashSet<u64>,
    /// Where to ask for entry changes (the store); without it no pulse is sent.
    change_feed: Option<Recipient<WatchChanges>>,
    /// Whether the store is sending changes now.
    feeding: bool,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Hub {
    /// A hub that can send `run/changed`, asking `feed` for changes while
    /// someone wants them.
    pub fn with_change_feed(feed: Recipient<WatchChanges>) -> Hub {
        Hub {
            change_feed: Some(feed),
            ..Hub::default()
        }
    }

    /// Turns the store's change feed on or off to match the subscribers.
    fn sync_feed(&mut self, ctx: &mut Context<Self>) {
        let want = !self.pulse_clients.is_empty();
        if want == self.feeding {
            return;
        }
        let Some(feed) = &self.change_feed else {
            return;
        };
        let sink = want.then(|| ctx.address().recipient());
        feed.do_send(WatchChanges { sink });
        self.feeding = want;
    }
}

/// Bind a client to a project (replacing an earlier binding).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub client_id: u64,
    pub project_id: i64,
    pub recipient: Recipient<Push>,
    /// Also send this client `run/changed` pulses.
    pub run_changed: bool,
}

impl Handler<Subscribe> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        self.remove_client(msg.client_id);
        self.client_project.insert(msg.client_id, msg.project_id);
        self.projects
            .entry(msg.project_id)
            .or_default()
            .insert(msg.client_id, msg.recipient);
        if msg.run_changed {
            self.pulse_clients.insert(msg.client_id);
        }
        self.sync_feed(ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub client_id: u64,
}

impl Handler<Unsubscribe> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        self.remove_client(msg.client_id);
        self.sync_feed(ctx);
    }
}

impl Hub {
    fn remove_client(&mut self, client_id: u64) {
        self.pulse_clients.remove(&client_id);
        if let Some(project) = self.client_project.remove(&client_id) {
            if let Some(clients) = self.projects.get_mut(&project) {
                clients.remove(&client_id);
                if clients.is_empty() {
                    self.projects.remove(&project);
                }
            }
        }
    }
}

/// Send a notification to every client of a project.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    pub project_id: i64,
    pub notification: Notification,
}

/// Send an already encoded notification frame to every client of a
/// project (large payloads, encoded once without a `Value` in between).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishFrame {
    pub project_id: i64,
    pub frame: Arc<str>,
}

impl Handler<PublishFrame> for Hub {
    type Result = ();
    fn handle(&mut self, msg: PublishFrame, _: &mut Context<Self>) {
        let Some(clients) = self.projects.get(&msg.project_id) else {
            return;
        };
        for recipient in clients.values() {
            recipient.do_send(Push(msg.frame.clone()));
        }
    }
}

impl Handler<Publish> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        let Some(clients) = self.projects.get(&msg.project_id) else {
            return;
        };
        let frame: Arc<str> =
            notification_frame(msg.notification.method, &msg.notification.params).into();
        for recipient in clients.values() {
            recipient.do_send(Push(frame.clone()));
        }
    }
}

/// Entry changes from the store become `run/changed` for the subscribed
/// clients of each run's project.
impl Handler<EntriesChanged> for Hub {
    type Result = ();
    fn handle(&mut self, msg: EntriesChanged, _: &mut Context<Self>) {
        for change in msg.0 {
            let Some(clients) = self.projects.get(&change.project_id) else {
                continue;
            };
            let mut listeners = clients
                .iter()
                .filter(|(id, _)| self.pulse_clients.contains(id))
                .peekable();
            if listeners.peek().is_none() {
                continue;
            }
            let payload = RunChangedNotification {
                run: change.run,
                run_id: change.run_id,
                path: change.path,
                change_type: change.change,
            };
            let Ok(notification) = Notification::of(&payload) else {
                continue;
            };
            let frame: Arc<str> =
                notification_frame(notification.method, &notification.params).into();
            for (_, recipient) in listeners {
                recipient.do_send(Push(frame.clone()));
            }
        }
    }
}

/// Number of clients bound to a project (diagnostics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ClientCount {
    pub project_id: i64,
}

impl Handler<ClientCount> for Hub {
    type Result = usize;
    fn handle(&mut self, msg: ClientCount, _: &mut Context<Self>) -> usize {
        self.projects.get(&msg.project_id).map_or(0, HashMap::len)
    }
}
