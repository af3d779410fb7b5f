//! The entry store: the one owner of the database.
//!
//! `EntryStore` runs on a dedicated `SyncArbiter` thread so diesel never
//! blocks an actix worker. Every operation is a typed message (a struct
//! implementing [`StoreOp`]) executed inside one immediate transaction, so a
//! message is all-or-nothing and writes are serialized. [`Store`] is the thin
//! async client the rest of the code (and embedding programs) uses.

pub mod changes;
pub mod db;
pub mod entries;
pub mod files;
mod first_row;
pub mod incremental;
pub(crate) use first_row::FirstRow;
mod prepared;
pub(crate) use prepared::prepared;
pub mod paths;
pub mod patterns;
pub mod projects;
pub mod proposals;
pub mod reads;
pub mod report_scan;
pub mod resume;
pub mod retention;
pub mod run_settings;
pub mod runs;
pub mod schema;
pub mod schemes;
pub mod status;
pub mod streams;
pub mod turn_context;
pub mod verbs;
pub mod view_log;
pub mod watch;

use actix::prelude::*;

use diesel::SqliteConnection;
use std::path::PathBuf;

pub use entries::*;
pub use files::*;
pub use incremental::{CachedModelContext, ContextRowCache, SharedContextRows};
pub use projects::*;
pub use proposals::*;
pub use reads::*;
pub use report_scan::{ScanCache, SharedScanRows};
pub use resume::*;
pub use retention::*;
pub use run_settings::*;
pub use runs::*;
pub use schemes::{SchemeDef, Writer};
pub use status::{EntryState, RunStatus, UnknownState, UnknownStatus};
pub use turn_context::{SavedContext, SharedSavedContext};
pub use verbs::*;

/// Errors of store operations. Messages are meant for clients as they are.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    /// A writer tier tried to write a scheme it may not write.
    #[error("403: writer \"{writer}\" not permitted for scheme \"{scheme}\" (allowed: {allowed})")]
    Permission {
        writer: String,
        scheme: String,
        allowed: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// True when a CHECK or trigger refused the write (bad input, not a bug).
    pub fn is_constraint(&self) -> bool {
        matches!(
            self,
            StoreError::Db(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::CheckViolation
                    | diesel::result::DatabaseErrorKind::UniqueViolation
                    | diesel::result::DatabaseErrorKind::ForeignKeyViolation
                    | diesel::result::DatabaseErrorKind::NotNullViolation,
                _
            ))
        ) || matches!(
            self,
            // Trigger refusals (RAISE) arrive without a specific kind.
            StoreError::Db(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("invalid run state transition")
        )
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One typed store operation, run in a transaction on the store thread.
pub trait StoreOp: Send + 'static {
    type Output: Send + 'static;
    /// Appends leave chunks to fold before the next non-append operation.
    fn appends(&self) -> bool {
        false
    }
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Self::Output>;
}

/// Declares store operations as actix messages handled by `EntryStore`.
macro_rules! store_ops {
    ($($op:ty => $out:ty),* $(,)?) => {
        $(
            impl actix::Message for $op {
                type Result = $crate::store::StoreResult<$out>;
            }
            impl actix::Handler<$op> for $crate::store::EntryStore {
                type Result = $crate::store::StoreResult<$out>;
                fn handle(&mut self, op: $op, _: &mut Self::Context) -> Self::Result {
                    self.execute(op)
                }
            }
        )*
    };
}
pub(crate) use store_ops;

/// The database-owning actor.
pub struct EntryStore {
    conn: Option<SqliteConnection>,
    path: PathBuf,
    mmap_mb: u64,
    /// Appended chunks not yet folded into bodies.
    pending_chunks: bool,
    watchers: watch::Watchers,
    /// Where changed entries go (the hub, while a client wants `run/changed`).
    change_sink: Option<Recipient<changes::EntriesChanged>>,
    /// Whether this connection has the recording triggers.
    change_triggers: bool,
}

impl EntryStore {
    pub fn new(conn: Option<SqliteConnection>, path: PathBuf, mmap_mb: u64) -> Self {
        EntryStore {
            conn,
            path,
            mmap_mb,
            pending_chunks: true,
            watchers: watch::Watchers::default(),
            change_sink: None,
            change_triggers: false,
        }
    }

    /// Gives the connection the recording triggers exactly while a sink is set.
    fn sync_change_triggers(&mut self) -> StoreResult<()> {
        let want = self.change_sink.is_some();
        let Some(conn) = self.conn.as_mut() else {
            // Reopened on next use, without triggers; `execute` adds them.
            self.change_triggers = false;
            return Ok(());
        };
        if want != self.change_triggers {
            if want {
                changes::install(conn)?;
            } else {
                changes::uninstall(conn)?;
            }
            self.change_triggers = want;
        }
        Ok(())
    }

    fn execute<O: StoreOp>(&mut self, op: O) -> StoreResult<O::Output> {
        if self.conn.is_none() {
            // After a caught panic the connection was dropped; reopen it.
            let conn = db::open(&self.path, self.mmap_mb)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            self.conn = Some(conn);
            self.change_triggers = false;
        }
        if self.change_sink.is_some() && !self.change_triggers {
            if let Err(e) = self.sync_change_triggers() {
                tracing::warn!("could not record entry changes: {e}");
            }
        }
        let recording = self.change_triggers;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no connection".into()))?;
        let appends = op.appends();
        let fold = self.pending_chunks && !appends;
        // A panic must not kill the only store thread (actix does not
        // restart sync actors): it fails this operation, and the connection
        // is reopened for the next one.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            conn.immediate_transaction(|c| {
                if fold {
                    verbs::fold_chunks(c)?;
                }
                let out = op.run(c)?;
                // Drained inside the transaction: a rolled-back operation
                // recorded nothing.
                let changed = if recording {
                    changes::drain(c)?
                } else {
                    Vec::new()
                };
                Ok((out, changed))
            })
        }));
        let result = match outcome {
            Ok(Ok((out, changed))) => {
                if let (Some(sink), false) = (&self.change_sink, changed.is_empty()) {
                    sink.do_send(changes::EntriesChanged(changed));
                }
                Ok(out)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::error!("a store operation panicked; reopening the database");
                self.conn = None;
                return Err(StoreError::Unavailable(
                    "a store operation failed unexpectedly".into(),
                ));
            }
        };
        if result.is_ok() {
            if fold {
                self.pending_chunks = false;
            }
            if appends {
                self.pending_chunks = true;
            }
        }
        if !self.watchers.is_empty() && !appends {
            self.watchers.notify(conn);
        }
        result
    }
}

impl Actor for EntryStore {
    type Context = SyncContext<Self>;
}

/// Async, typed access to the `EntryStore` actor.
#[derive(Clone)]
pub struct Store {
    addr: Addr<EntryStore>,
}

impl Store {
    /// Starts the store thread on an opened (migrated) connection; must be
    /// called inside an actix system.
    pub fn start(conn: SqliteConnection, path: PathBuf, mmap_mb: u64) -> Store {
        let slot = std::sync::Mutex::new(Some(conn));
        let addr = SyncArbiter::start(1, move || {
            let conn = slot.lock().ok().and_then(|mut c| c.take());
            EntryStore::new(conn, path.clone(), mmap_mb)
        });
        Store { addr }
    }

    pub fn addr(&self) -> &Addr<EntryStore> {
        &self.addr
    }

    /// Sends one operation and waits for its result.
    pub async fn run<O>(&self, op: O) -> StoreResult<O::Output>
    where
        O: StoreOp + Message<Result = StoreResult<<O as StoreOp>::Output>>,
        EntryStore: Handler<O>,
    {
        self.addr
            .send(op)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

#[cfg(test)]
mod tests;
