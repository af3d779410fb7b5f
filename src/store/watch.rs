//! Waiting for a proposed or streaming entry to resolve. The store owns
//! every write, so after each operation it checks its waiters; a waiter is
//! a oneshot channel, so the waiting side parks without polling and a
//! dropped waiter (an aborted run) simply disappears.

use super::{EntryRow, EntryStore, GetEntry, Store, StoreError, StoreOp, StoreResult};
use actix::prelude::*;
use diesel::SqliteConnection;
use tokio::sync::oneshot;

fn settled(row: &EntryRow) -> bool {
    !row.state.is_unresolved()
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

#[cfg(test)]
mod tests {
    use crate::store::schemes::{bootstrap_schemes, RegisterSchemes};
    use crate::store::{CreateRun, EntryState, EntryWrite, SetEntry, Store, UpsertProject, Writer};
    use std::time::Duration;

    async fn store_with_run() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = crate::store::db::open(&path, 0).unwrap();
        let store = Store::start(conn, path, 0);
        store
            .run(RegisterSchemes(bootstrap_schemes()))
            .await
            .unwrap();
        let project_id = store
            .run(UpsertProject {
                name: "w".into(),
                project_root: "/tmp/w".into(),
                config_path: None,
            })
            .await
            .unwrap();
        let run = store
            .run(CreateRun {
                project_id,
                parent_run_id: None,
                alias: "w_1".into(),
                model: "m".into(),
                temperature: None,
                persona: None,
                context_limit: None,
                prompt: String::new(),
                flags: serde_json::json!({}),
            })
            .await
            .unwrap();
        (dir, store, run.id)
    }

    fn write(run_id: i64, state: EntryState) -> SetEntry {
        SetEntry(EntryWrite {
            body: Some("ls".into()),
            state: Some(state),
            ..EntryWrite::new(run_id, "log://turn_1/sh/ls", Writer::Plugin)
        })
    }

    #[actix::test]
    async fn a_waiter_parks_until_the_entry_resolves() {
        let (_dir, store, run_id) = store_with_run().await;
        store
            .run(write(run_id, EntryState::Proposed))
            .await
            .unwrap();
        let waiting = store.clone();
        let waiter =
            actix::spawn(async move { waiting.wait_resolved(run_id, "log://turn_1/sh/ls").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "still proposed: the waiter must park"
        );
        store
            .run(write(run_id, EntryState::Resolved))
            .await
            .unwrap();
        let row = waiter.await.unwrap().unwrap();
        assert_eq!(row.state, EntryState::Resolved);
    }

    #[actix::test]
    async fn settled_entries_answer_at_once_and_missing_ones_are_errors() {
        let (_dir, store, run_id) = store_with_run().await;
        store.run(write(run_id, EntryState::Failed)).await.unwrap();
        let row = store
            .wait_resolved(run_id, "log://turn_1/sh/ls")
            .await
            .unwrap();
        assert_eq!(row.state, EntryState::Failed);
        assert!(store
            .wait_resolved(run_id, "known://nothing")
            .await
            .is_err());
    }
}
