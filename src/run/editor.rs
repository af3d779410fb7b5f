//! The editor seam: a front end whose client is an editor (`rummy acp`)
//! may serve a run's file reads, accepted file writes and accepted
//! commands itself, so unsaved buffers are seen, edits land in open
//! buffers and commands run in the editor's terminal. The engine asks the
//! [`Editor`] installed on it, per run; every method answers `None` when
//! that run's client does not offer the capability, and the engine then
//! does what it always does (disk, `run_on_server`).

use super::Engine;
use crate::store::{EntryState, EntryWrite, RunRow, SetEntry, Writer};
use crate::stream::{ProducerHandle, ServerRunEnd};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

pub type SendFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

pub trait Editor: Send + Sync {
    /// The text of project file `path` (relative to the project root) as
    /// the run's editor has it, unsaved changes included. The future
    /// answers `None` when the editor could not read it (disk is used).
    fn read_text(&self, run_id: i64, path: &str) -> Option<SendFuture<Option<String>>>;

    /// Writes an accepted edit through the run's editor (before the
    /// engine's own disk write of the same text).
    fn write_text(
        &self,
        run_id: i64,
        path: &str,
        content: &str,
    ) -> Option<SendFuture<Result<(), String>>>;

    /// Runs an accepted `sh`/`env` in the editor (a terminal), feeding its
    /// output to `handle` the way `stream::run_on_server` does; `root` is
    /// the project root, the command's working directory.
    fn run_command(
        &self,
        run_id: i64,
        root: PathBuf,
        handle: ProducerHandle,
    ) -> Option<LocalFuture<ServerRunEnd>>;

    /// Entries the client attached to the prompt that starts the run's
    /// next loop (ACP resource blocks), taken once: a project file by its
    /// relative path, anything else at its URI.
    fn attachments(&self, _project_id: i64, _alias: &str) -> Vec<Attachment> {
        Vec::new()
    }
}

/// An entry a client attached to a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub path: String,
    pub body: String,
}

/// A fresh loop's start, after the project scan: the attachments of its
/// prompt become visible entries of the run (a file's overrides what the
/// scan read: it is the editor's text). One that cannot be written is
/// logged and left out; the loop goes on.
pub async fn attach(engine: &Engine, run: &RunRow) {
    let Some(editor) = engine.editor.get() else {
        return;
    };
    for a in editor.attachments(run.project_id, &run.alias) {
        if let Some(scheme) = crate::store::paths::scheme_of(&a.path) {
            // The model sees registered schemes only.
            if let Err(e) = engine
                .store
                .run(crate::store::schemes::RegisterDataScheme(
                    scheme.to_string(),
                ))
                .await
            {
                tracing::warn!(run = %run.alias, "could not attach {}: {e}", a.path);
                continue;
            }
        }
        let write = SetEntry(EntryWrite {
            body: Some(a.body),
            state: Some(EntryState::Resolved),
            visibility: Some("visible".into()),
            turn: (run.next_turn - 1).max(0),
            ..EntryWrite::new(run.id, a.path.clone(), Writer::Plugin)
        });
        if let Err(e) = engine.store.run(write).await {
            tracing::warn!(run = %run.alias, "could not attach {}: {e}", a.path);
        }
    }
}

/// Where a front end installs its editor, once (none: disk and server).
#[derive(Default)]
pub struct EditorSlot(OnceLock<Arc<dyn Editor>>);

impl EditorSlot {
    /// Installs `editor`; false when one is installed already.
    pub fn install(&self, editor: Arc<dyn Editor>) -> bool {
        self.0.set(editor).is_ok()
    }

    pub fn get(&self) -> Option<Arc<dyn Editor>> {
        self.0.get().cloned()
    }
}
