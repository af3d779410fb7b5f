//! The editor seam: a front end whose client is an editor (`rummy acp`)
//! may serve a run's file reads, accepted file writes and accepted
//! commands itself, so unsaved buffers are seen, edits land in open
//! buffers and commands run in the editor's terminal. The engine asks the
//! [`Editor`] installed on it, per run; every method answers `None` when
//! that run's client does not offer the capability, and the engine then
//! does what it always does (disk, `run_on_server`).

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
