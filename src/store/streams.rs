//! The store side of streaming commands (`sh`, `env`): opening a command's
//! output channels, appending batches to them, closing them with the log
//! entry's final line, and the boot sweep of streams a crash left open
//! (spec 01 §2 data channels, spec 03 §2 stream methods).
//!
//! A channel is `{base}_{n}` where `base` comes from the command's log
//! path (`log://turn_N/sh/ls` -> `sh://turn_N/ls`); its state is
//! `streaming` until the command ends. Appends rewrite the body once per
//! *batch* the `StreamProducer` flushes, never once per chunk.

use super::entries::{check_writer, find_view, own_entry, write_entry, EntryWrite};
use super::paths::{data_base, normalize_path};
use super::schema::{entries, run_views};
use super::FirstRow;
use super::{store_ops, EntryState, StoreError, StoreOp, StoreResult, Writer};
use crate::tokens::count_tokens;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;
use serde_json::{json, Map, Value};

/// The output channels every command has: 1 stdout, 2 stderr.
pub const CHANNELS: [u8; 2] = [1, 2];

/// Outcome written at boot on streams a crash or restart left open.
pub const RESTART_OUTCOME: &str = "server restart";

/// The channel paths of a command's log path, or None for a path that is
/// not `log://turn_N/{action}/{rest}`.
pub fn channel_paths(log_path: &str) -> Option<Vec<String>> {
    let base = data_base(log_path)?;
    Some(CHANNELS.iter().map(|c| format!("{base}_{c}")).collect())
}

/// The command a log entry ran: attribute `command`, else `summary`, else "".
pub fn command_of(attributes: &Map<String, Value>) -> String {
    ["command", "summary"]
        .iter()
        .filter_map(|k| attributes.get(*k).and_then(Value::as_str))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// The log entry's body while the command runs (upstream's wording).
pub fn running_body(command: &str, log_path: &str) -> String {
    let base = data_base(log_path).unwrap_or_default();
    format!("ran '{command}' (in progress). Output: {base}_1, {base}_2")
}

/// How a stream ended, with what the log entry reports about it.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnding {
    /// `stream/completed`: exit 0 resolves the channels, anything else fails them.
    Completed {
        exit_code: i64,
        duration: Option<String>,
    },
    /// `stream/aborted`: the producer killed the command.
    Aborted {
        reason: Option<String>,
        duration: Option<String>,
    },
    /// `stream/cancel` (and the boot sweep): someone asked it to stop.
    Cancelled { reason: Option<String> },
    /// A server-run command the server had to end (beyond 2.0.0: e.g.
    /// `timeout` after RUMMY_SH_TIMEOUT): the channels fail with `outcome`.
    Failed {
        outcome: String,
        duration: Option<String>,
    },
}

/// Upstream tests these strings for truthiness: empty counts as absent.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

impl StreamEnding {
    /// The channels' terminal state and outcome.
    pub fn channel_state(&self) -> (EntryState, Option<String>) {
        match self {
            StreamEnding::Completed { exit_code: 0, .. } => (EntryState::Resolved, None),
            StreamEnding::Completed { exit_code, .. } => {
                (EntryState::Failed, Some(format!("exit:{exit_code}")))
            }
            StreamEnding::Aborted { reason, .. } => (
                EntryState::Cancelled,
                Some(given(reason).unwrap_or("aborted").to_string()),
            ),
            StreamEnding::Cancelled { reason } => (
                EntryState::Cancelled,
                Some(given(reason).unwrap_or("cancelled").to_string()),
            ),
            StreamEnding::Failed { outcome, .. } => (EntryState::Failed, Some(outcome.clone())),
        }
    }

    /// The log entry's final line, given the channel summary
    /// (`path (N tokens)` / `path (empty)`, comma-joined).
    pub fn log_body(&self, command: &str, output: &str) -> String {
        match self {
            StreamEnding::Completed {
                exit_code,
                duration,
            } => {
                let dur = given(duration)
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                format!("ran '{command}', exit={exit_code}{dur}. Output: {output}")
            }
            StreamEnding::Aborted { reason, duration } => {
                let parts: Vec<&str> = [given(reason), given(duration)]
                    .into_iter()
                    .flatten()
                    .collect();
                let q = if parts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", parts.join(", "))
                };
                format!("aborted '{command}'{q}. Output: {output}")
            }
            StreamEnding::Cancelled { reason } => {
                let q = given(reason).map(|r| format!(" ({r})")).unwrap_or_default();
                format!("cancelled '{command}'{q}. Output: {output}")
            }
            StreamEnding::Failed { outcome, duration } => {
                let dur = given(duration)
                    .map(|d| format!(", {d}"))
                    .unwrap_or_default();
                format!("failed '{command}' ({outcome}{dur}). Output: {output}")
            }
        }
    }
}

/// Where a command's stream stands, read from its entries.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamStatus {
    /// No log entry at that path, or it has no output channels.
    NotAStream,
    /// The channels are still `streaming`.
    Open { command: String },
    /// The channels ended in this state.
    Finished { state: EntryState },
}

fn view_state(
    conn: &mut SqliteConnection,
    run_id: i64,
    path: &str,
) -> StoreResult<Option<EntryState>> {
    Ok(run_views::table
        .inner_join(entries::table)
        .filter(run_views::run_id.eq(run_id))
        .filter(entries::path.eq(path))
        .select(run_views::state)
        .first_row(conn)
        .optional()?)
}

fn log_attributes(
    conn: &mut SqliteConnection,
    run_id: i64,
    log_path: &str,
) -> StoreResult<Option<Map<String, Value>>> {
    let raw: Option<String> = run_views::table
        .inner_join(entries::table)
        .filter(run_views::run_id.eq(run_id))
        .filter(entries::path.eq(log_path))
        .select(entries::attributes)
        .first_row(conn)
        .optional()?;
    Ok(raw.map(|r| match serde_json::from_str(&r) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }))
}

/// Reads where the stream of `log_path` stands.
pub struct GetStreamStatus {
    pub run_id: i64,
    pub log_path: String,
}

impl StoreOp for GetStreamStatus {
    type Output = StreamStatus;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<StreamStatus> {
        let log_path = normalize_path(&self.log_path);
        let Some(channels) = channel_paths(&log_path) else {
            return Ok(StreamStatus::NotAStream);
        };
        let Some(attributes) = log_attributes(conn, self.run_id, &log_path)? else {
            return Ok(StreamStatus::NotAStream);
        };
        let mut states = Vec::new();
        for ch in &channels {
            if let Some(s) = view_state(conn, self.run_id, ch)? {
                states.push(s);
            }
        }
        Ok(match states.first() {
            None => StreamStatus::NotAStream,
            Some(_) if states.contains(&EntryState::Streaming) => StreamStatus::Open {
                command: command_of(&attributes),
            },
            Some(s) => StreamStatus::Finished { state: *s },
        })
    }
}

/// Creates a command's output channels when its proposal is accepted:
/// empty, `streaming`, summarized, at the run's next turn, attributes
/// `{command, summary, channel}`. Returns the channel paths.
pub struct OpenChannels {
    pub run_id: i64,
    pub log_path: String,
    pub command: String,
    pub turn: i64,
}

impl StoreOp for OpenChannels {
    type Output = Vec<String>;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<Vec<String>> {
        let log_path = normalize_path(&self.log_path);
        let channels = channel_paths(&log_path).ok_or_else(|| {
            StoreError::Invalid(format!("{log_path} is not a command's log entry"))
        })?;
        for (path, channel) in channels.iter().zip(CHANNELS) {
            write_entry(
                conn,
                &EntryWrite {
                    body: Some(String::new()),
                    state: Some(EntryState::Streaming),
                    visibility: Some("summarized".into()),
                    attributes: Some(json!({
                        "command": self.command,
                        "summary": self.command,
                        "channel": channel,
                    })),
                    turn: self.turn,
                    ..EntryWrite::new(self.run_id, path.clone(), Writer::Plugin)
                },
            )?;
        }
        Ok(channels)
    }
}

/// Appends one flushed batch per channel, in one transaction. Each body is
/// rewritten once per batch; the producer sizes batches so the total cost
/// stays linear in the bytes streamed. A channel the run no longer sees
/// (removed meanwhile) is skipped.
pub struct AppendChannels {
    pub run_id: i64,
    /// (channel path, text) in the order to apply.
    pub batches: Vec<(String, String)>,
}

impl StoreOp for AppendChannels {
    type Output = ();
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<()> {
        for (path, text) in &self.batches {
            if text.is_empty() {
                continue;
            }
            let Some((view_id, entry_id)) = find_view(conn, self.run_id, path)? else {
                continue;
            };
            check_writer(conn, path, Writer::Plugin)?;
            let entry_id = own_entry(conn, self.run_id, view_id, entry_id)?;
            append_body(conn, entry_id, text)?;
        }
        Ok(())
    }
}

/// `body = body || text` for one entry. A marker row in `entry_chunks`
/// exists only inside this statement group: it makes `run/changed` report
/// the write as an `append` (not a whole-body change).
pub(crate) fn append_body(
    conn: &mut SqliteConnection,
    entry_id: i64,
    text: &str,
) -> StoreResult<()> {
    diesel::sql_query("INSERT INTO entry_chunks (entry_id, chunk) VALUES (?, '')")
        .bind::<BigInt, _>(entry_id)
        .execute(conn)?;
    diesel::sql_query(
        "UPDATE entries SET body = body || ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
    )
    .bind::<Text, _>(text)
    .bind::<BigInt, _>(entry_id)
    .execute(conn)?;
    diesel::sql_query("DELETE FROM entry_chunks WHERE entry_id = ?")
        .bind::<BigInt, _>(entry_id)
        .execute(conn)?;
    Ok(())
}

/// Closes a stream: every channel the run has takes the ending's state and
/// outcome (body, visibility and turn kept), and the log entry resolves
/// with the final line. Returns how many channels were closed.
pub struct FinishStream {
    pub run_id: i64,
    pub log_path: String,
    pub ending: StreamEnding,
    pub token_divisor: f64,
}

#[derive(QueryableByName)]
struct ChannelBody {
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = BigInt)]
    view_id: i64,
}

impl StoreOp for FinishStream {
    type Output = usize;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        finish(
            conn,
            self.run_id,
            &normalize_path(&self.log_path),
            &self.ending,
            self.token_divisor,
        )
    }
}

fn finish(
    conn: &mut SqliteConnection,
    run_id: i64,
    log_path: &str,
    ending: &StreamEnding,
    divisor: f64,
) -> StoreResult<usize> {
    let channels = channel_paths(log_path)
        .ok_or_else(|| StoreError::Invalid(format!("{log_path} is not a command's log entry")))?;
    let (state, outcome) = ending.channel_state();
    let mut summary = Vec::new();
    for path in &channels {
        let found: Option<ChannelBody> = diesel::sql_query(
            "SELECT e.body AS body, rv.id AS view_id FROM run_views rv \
             JOIN entries e ON e.id = rv.entry_id WHERE rv.run_id = ? AND e.path = ?",
        )
        .bind::<BigInt, _>(run_id)
        .bind::<Text, _>(path)
        .get_result(conn)
        .optional()?;
        let Some(ch) = found else { continue };
        diesel::update(run_views::table.find(ch.view_id))
            .set((
                run_views::state.eq(state),
                run_views::outcome.eq(&outcome),
                run_views::updated_at.eq(diesel::dsl::sql::<Nullable<Text>>("CURRENT_TIMESTAMP")),
            ))
            .execute(conn)?;
        summary.push(if ch.body.is_empty() {
            format!("{path} (empty)")
        } else {
            format!("{path} ({} tokens)", count_tokens(&ch.body, divisor))
        });
    }
    let Some((view_id, entry_id)) = find_view(conn, run_id, log_path)? else {
        return Ok(summary.len());
    };
    let attributes = log_attributes(conn, run_id, log_path)?.unwrap_or_default();
    let body = ending.log_body(&command_of(&attributes), &summary.join(", "));
    let entry_id = own_entry(conn, run_id, view_id, entry_id)?;
    diesel::update(entries::table.find(entry_id))
        .set((
            entries::body.eq(&body),
            entries::updated_at.eq(diesel::dsl::sql::<Nullable<Text>>("CURRENT_TIMESTAMP")),
        ))
        .execute(conn)?;
    diesel::update(run_views::table.find(view_id))
        .set((
            run_views::state.eq(EntryState::Resolved),
            run_views::outcome.eq(None::<String>),
            run_views::write_count.eq(run_views::write_count + 1),
            run_views::updated_at.eq(diesel::dsl::sql::<Nullable<Text>>("CURRENT_TIMESTAMP")),
        ))
        .execute(conn)?;
    Ok(summary.len())
}

#[derive(QueryableByName)]
struct OpenChannel {
    #[diesel(sql_type = BigInt)]
    run_id: i64,
    #[diesel(sql_type = Text)]
    path: String,
}

/// The log path a channel belongs to: `{action}://turn_N/{rest}_{c}` ->
/// `log://turn_N/{action}/{rest}`.
fn log_path_of_channel(channel: &str) -> Option<String> {
    let (base, n) = channel.rsplit_once('_')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (action, rest) = base.split_once("://")?;
    let rest = rest.strip_prefix("turn_")?;
    let (turn, rest) = rest.split_once('/')?;
    Some(format!("log://turn_{turn}/{action}/{rest}"))
}

/// Boot: every stream still open (no producer survives a restart) is
/// closed as cancelled with outcome `server restart`, its log entry saying
/// so. Returns how many streams were closed.
pub struct SweepOpenStreams {
    pub token_divisor: f64,
}

impl StoreOp for SweepOpenStreams {
    type Output = usize;
    fn run(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        let open: Vec<OpenChannel> = diesel::sql_query(
            "SELECT rv.run_id AS run_id, e.path AS path FROM run_views rv \
             JOIN entries e ON e.id = rv.entry_id WHERE rv.state = 'streaming' \
             ORDER BY rv.run_id, e.path",
        )
        .load(conn)?;
        let mut streams: Vec<(i64, String)> = Vec::new();
        for ch in open {
            let Some(log) = log_path_of_channel(&ch.path) else {
                // Not a channel path: end it alone so it cannot stay open forever.
                diesel::sql_query(
                    "UPDATE run_views SET state = 'cancelled', outcome = ? \
                     WHERE run_id = ? AND state = 'streaming' \
                       AND entry_id IN (SELECT id FROM entries WHERE path = ?)",
                )
                .bind::<Text, _>(RESTART_OUTCOME)
                .bind::<BigInt, _>(ch.run_id)
                .bind::<Text, _>(&ch.path)
                .execute(conn)?;
                continue;
            };
            if !streams.contains(&(ch.run_id, log.clone())) {
                streams.push((ch.run_id, log));
            }
        }
        let ending = StreamEnding::Cancelled {
            reason: Some(RESTART_OUTCOME.into()),
        };
        for (run_id, log) in &streams {
            finish(conn, *run_id, log, &ending, self.token_divisor)?;
        }
        Ok(streams.len())
    }
}

store_ops!(
    GetStreamStatus => StreamStatus,
    OpenChannels => Vec<String>,
    AppendChannels => (),
    FinishStream => usize,
    SweepOpenStreams => usize,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_log_paths_round_trip() {
        assert_eq!(
            log_path_of_channel("sh://turn_3/ls%20-la_2").as_deref(),
            Some("log://turn_3/sh/ls%20-la")
        );
        assert_eq!(
            log_path_of_channel("env://turn_1/git/log_1_1").as_deref(),
            Some("log://turn_1/env/git/log_1")
        );
        assert_eq!(log_path_of_channel("known://a_b"), None);
    }

    #[test]
    fn endings_word_the_log_like_upstream() {
        let out = "sh://turn_1/ls_1 (6 tokens), sh://turn_1/ls_2 (empty)";
        let done = StreamEnding::Completed {
            exit_code: 0,
            duration: Some("0.1s".into()),
        };
        assert_eq!(
            done.log_body("ls", out),
            format!("ran 'ls', exit=0 (0.1s). Output: {out}")
        );
        assert_eq!(done.channel_state(), (EntryState::Resolved, None));
        let failed = StreamEnding::Completed {
            exit_code: 2,
            duration: None,
        };
        assert_eq!(failed.log_body("ls", "x"), "ran 'ls', exit=2. Output: x");
        assert_eq!(
            failed.channel_state(),
            (EntryState::Failed, Some("exit:2".into()))
        );
        let aborted = StreamEnding::Aborted {
            reason: Some("timeout".into()),
            duration: Some("3s".into()),
        };
        assert_eq!(
            aborted.log_body("ls", "x"),
            "aborted 'ls' (timeout, 3s). Output: x"
        );
        let bare = StreamEnding::Aborted {
            reason: None,
            duration: Some(String::new()),
        };
        assert_eq!(bare.log_body("ls", "x"), "aborted 'ls'. Output: x");
        assert_eq!(
            bare.channel_state(),
            (EntryState::Cancelled, Some("aborted".into()))
        );
        let cancelled = StreamEnding::Cancelled { reason: None };
        assert_eq!(cancelled.log_body("ls", "x"), "cancelled 'ls'. Output: x");
        assert_eq!(
            cancelled.channel_state(),
            (EntryState::Cancelled, Some("cancelled".into()))
        );
    }

    #[test]
    fn the_running_body_names_both_channels() {
        assert_eq!(
            running_body("ls -la", "log://turn_1/sh/ls%20-la"),
            "ran 'ls -la' (in progress). Output: sh://turn_1/ls%20-la_1, sh://turn_1/ls%20-la_2"
        );
    }
}
