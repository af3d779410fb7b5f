//! `Hub`: which clients belong to which project; notifications fan out
//! from here. It knows nothing of runs (the run registry owns those), so
//! runs publish through it without a module cycle.

use crate::protocol::jsonrpc::notification_frame;
use crate::protocol::notifications::Notification;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// A serialized frame pushed to one client.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Push(pub Arc<str>);

#[derive(Default)]
pub struct Hub {
    projects: HashMap<i64, HashMap<u64, Recipient<Push>>>,
    client_project: HashMap<u64, i64>,
}

impl Actor for Hub {
    type Context = Context<Self>;
}

/// Bind a client to a project (replacing an earlier binding).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub client_id: u64,
    pub project_id: i64,
    pub recipient: Recipient<Push>,
}

impl Handler<Subscribe> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.remove_client(msg.client_id);
        self.client_project.insert(msg.client_id, msg.project_id);
        self.projects
            .entry(msg.project_id)
            .or_default()
            .insert(msg.client_id, msg.recipient);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub client_id: u64,
}

impl Handler<Unsubscribe> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        self.remove_client(msg.client_id);
    }
}

impl Hub {
    fn remove_client(&mut self, client_id: u64) {
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
