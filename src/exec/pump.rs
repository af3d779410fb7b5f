//! One output channel of a command: reads its pipe, batches what arrives,
//! applies the per-channel cap and hands batches to the event channel.

use super::{ExecEvent, ExecLimits};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

/// Size of one read from the pipe.
const READ_SIZE: usize = 64 * 1024;

/// The marker a capped channel ends with, as the model will read it.
pub fn truncation_marker(limit: u64) -> Vec<u8> {
    format!("\n[output truncated after {limit} bytes (RUMMY_STREAM_MAX_BYTES)]\n").into_bytes()
}

/// What a channel saw, for the supervisor's log line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ChannelStats {
    /// Bytes read from the pipe.
    pub read: u64,
    /// Bytes delivered (the marker not counted).
    pub kept: u64,
}

pub(crate) struct Pump<'a> {
    channel: u8,
    limits: &'a ExecLimits,
    events: &'a mpsc::Sender<ExecEvent>,
    batch: Vec<u8>,
    /// When the oldest unflushed byte must go out.
    flush_at: Option<Instant>,
    stats: ChannelStats,
    truncated: bool,
    /// False once the receiver is gone; reading goes on regardless so the
    /// command never blocks on a full pipe.
    sink_open: bool,
}

impl<'a> Pump<'a> {
    pub(crate) fn new(
        channel: u8,
        limits: &'a ExecLimits,
        events: &'a mpsc::Sender<ExecEvent>,
    ) -> Self {
        Pump {
            channel,
            limits,
            events,
            batch: Vec::new(),
            flush_at: None,
            stats: ChannelStats::default(),
            truncated: false,
            sink_open: true,
        }
    }

    /// Reads until end of file, a read error, or `drain` has announced a
    /// deadline (the process group is gone) and it has passed: a pipe held
    /// open by a process outside the group must not keep the command
    /// "running" forever. Everything kept is flushed before returning.
    pub(crate) async fn run<R: AsyncRead + Unpin>(
        mut self,
        reader: Option<R>,
        mut drain: watch::Receiver<Option<Instant>>,
    ) -> ChannelStats {
        let Some(mut reader) = reader else {
            return self.stats;
        };
        let mut buf = vec![0u8; READ_SIZE];
        let mut drain_deadline: Option<Instant> = None;
        let mut drain_open = true;
        loop {
            // Checked here as well as in the select below: a writer outside
            // the group that never pauses would otherwise keep the (biased)
            // read branch ready forever.
            if drain_deadline.is_some_and(|d| Instant::now() >= d) {
                tracing::debug!(
                    channel = self.channel,
                    "pipe still open after the command ended; stop reading"
                );
                break;
            }
            tokio::select! {
                // Reads first, so data already in the pipe is taken before
                // a timer branch can end the loop.
                biased;
                read = reader.read(&mut buf) => match read {
                    Ok(0) => break,
                    Ok(n) => self.accept(buf.get(..n).unwrap_or_default()).await,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!(channel = self.channel, error = %e, "reading command output failed");
                        break;
                    }
                },
                () = sleep_until(far(self.flush_at)), if self.flush_at.is_some() => self.flush().await,
                () = sleep_until(far(drain_deadline)), if drain_deadline.is_some() => {
                    tracing::debug!(channel = self.channel, "pipe still open after the command ended; stop reading");
                    break;
                }
                changed = drain.changed(), if drain_open && drain_deadline.is_none() => match changed {
                    Ok(()) => drain_deadline = *drain.borrow_and_update(),
                    // The supervisor is gone: keep reading to end of file.
                    Err(_) => drain_open = false,
                },
            }
        }
        self.flush().await;
        self.stats
    }

    async fn accept(&mut self, data: &[u8]) {
        let n = data.len() as u64;
        self.stats.read = self.stats.read.saturating_add(n);
        if self.truncated {
            return;
        }
        let room = match self.limits.max_bytes {
            Some(limit) => limit.saturating_sub(self.stats.kept),
            None => u64::MAX,
        };
        if n <= room {
            self.batch.extend_from_slice(data);
            self.stats.kept += n;
            if self.batch.len() >= self.limits.flush_bytes {
                self.flush().await;
            } else if self.flush_at.is_none() && !self.batch.is_empty() {
                self.flush_at = Some(Instant::now() + self.limits.flush_interval);
            }
            return;
        }
        // Over the cap: keep what fits, then the marker, once.
        let fits = usize::try_from(room).unwrap_or(data.len()).min(data.len());
        self.batch
            .extend_from_slice(data.get(..fits).unwrap_or_default());
        self.stats.kept += fits as u64;
        self.truncated = true;
        let limit = self.limits.max_bytes.unwrap_or(self.stats.kept);
        self.batch.extend_from_slice(&truncation_marker(limit));
        self.flush().await;
        self.send(ExecEvent::Truncated {
            channel: self.channel,
            limit,
        })
        .await;
    }

    async fn flush(&mut self) {
        self.flush_at = None;
        if self.batch.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.batch);
        self.send(ExecEvent::Chunk {
            channel: self.channel,
            bytes,
        })
        .await;
    }

    async fn send(&mut self, event: ExecEvent) {
        if self.sink_open && self.events.send(event).await.is_err() {
            tracing::debug!(
                channel = self.channel,
                "output receiver gone; discarding the rest"
            );
            self.sink_open = false;
        }
    }
}

/// The instant itself, or one far enough away never to fire (select!
/// evaluates a disabled branch's future expression too).
fn far(at: Option<Instant>) -> Instant {
    at.unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600))
}
