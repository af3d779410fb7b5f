//! Waiting for a proposed or streaming entry to resolve. The store owns
//! every write, so after each operation it checks its waiters; a waiter is
//! a oneshot channel, so the waiting side parks without polling and a
//! dropped waiter (an aborted run) simply disappears.

use super::{EntryRow, EntryStore, GetEntry, Store, StoreError, StoreOp, StoreResult};
use actix::prelude::*;
use diesel::SqliteConnection;
use tokio::sync::oneshot;

fn settled(row: &EntryRow) -> bool {
    row.state != "proposed" && row.state != "streaming"
}

struct Waiter {
    run_id: i64,
    path: String,
    reply: oneshot::Sender<EntryRow>,
}

#[derive(Default)]
pub struct Watchers {
    waiting: Vec<Waiter>,
}

impl Watchers {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Releases every waiter whose entry has left proposed/streaming.
    pub fn notify(&mut self, conn: &mut SqliteConnection) {
        let waiting = std::mem::take(&mut self.waiting);
        for w in waiting {
            if w.reply.is_closed() {
                continue;
            }
            let row = GetEntry {
                run_id: w.run_id,
                path: w.path.clone(),
            }
            .run(conn);
            match row {
                Ok(Some(row)) if settled(&row) => {
                    let _ = w.reply.send(row);
                }
                // A removed entry will never resolve: dropping the sender
                // tells the waiter so.
                Ok(None) => {}
                _ => self.waiting.push(w),
            }
        }
    }
}

/// Registers a waiter for an entry of a run; answers at once when the
/// entry is already settled.
#[derive(Message)]
#[rtype(result = "StoreResult<oneshot::Receiver<EntryRow>>")]
pub struct WatchEntry {
    pub run_id: i64,
    pub path: String,
}

impl Handler<WatchEntry> for EntryStore {
    type Result = StoreResult<oneshot::Receiver<EntryRow>>;
    fn handle(&mut self, msg: WatchEntry, _: &mut Self::Context) -> Self::Result {
        let path = super::paths::normalize_path(&msg.path);
        let row = self.execute(GetEntry {
            run_id: msg.run_id,
            path: path.clone(),
        })?;
        let row = row.ok_or_else(|| StoreError::NotFound(format!("{path} not found")))?;
        let (tx, rx) = oneshot::channel();
        if settled(&row) {
            let _ = tx.send(row);
        } else {
            self.watchers.waiting.push(Waiter {
                run_id: msg.run_id,
                path,
                reply: tx,
            });
        }
        Ok(rx)
    }
}

impl Store {
    /// Waits until an entry leaves `proposed`/`streaming`; returns it then.
    pub async fn wait_resolved(&self, run_id: i64, path: &str) -> StoreResult<EntryRow> {
        let rx = self
            .addr()
            .send(WatchEntry {
                run_id,
                path: path.to_string(),
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        rx.await
            .map_err(|_| StoreError::NotFound(format!("{path} was removed before it resolved")))
    }
}
