//! The report's pass over a run's views (`run/state` and `getRun`):
//! history, unknowns, reasoning and content, the newest summary, prompt
//! and update. A run's turn loop keeps the scanned rows between turns in
//! a [`ScanCache`], refreshed from the view log, so a turn's report reads
//! what the turn changed instead of the whole run.

use super::reads::{HistoryRow, PathBody};
use super::view_log::{self, Since, ViewCursor};
use super::{prepared, EntryState, StoreResult};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One view of a run, as the report reads it: bodies and attributes only
/// where the report uses them, so audit bodies (each turn's whole packet)
/// are never read. Data and audit rows other than reasoning and content
/// feed none of the report's parts, so the scan leaves them in SQLite:
/// a run gains five audit rows a turn, and building them was most of the
/// scan's work.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
struct ScanRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    path: String,
    #[diesel(sql_type = Nullable<Text>)]
    scheme: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    category: Option<String>,
    #[diesel(sql_type = Text)]
    state: EntryState,
    #[diesel(sql_type = Nullable<Text>)]
    outcome: Option<String>,
    #[diesel(sql_type = BigInt)]
    turn: i64,
    #[diesel(sql_type = Nullable<Text>)]
    attributes: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    body: Option<String>,
}

/// The parts of a report read from the run's views, in one pass in view
/// order (what `v_run_log`, `known_entries` by scheme and three "newest
/// path like" queries used to read in six).
#[derive(Default)]
pub(crate) struct RunScan {
    pub(crate) history: Vec<HistoryRow>,
    pub(crate) unknowns: Vec<PathBody>,
    pub(crate) reasoning: Vec<PathBody>,
    pub(crate) content: Vec<PathBody>,
    pub(crate) summary: Option<String>,
    pub(crate) last_prompt: Option<String>,
    pub(crate) last_update: Option<String>,
}

macro_rules! run_scan_sql {
    () => {
        "\
SELECT v.id AS id, e.path AS path, e.scheme AS scheme, s.category AS category, \
  v.state AS state, v.outcome AS outcome, v.turn AS turn, \
  CASE WHEN s.category IN ('logging', 'prompt', 'unknown') OR e.path LIKE 'log://turn_%/update/%' \
    THEN e.attributes END AS attributes, \
  CASE WHEN s.category IN ('logging', 'prompt', 'unknown') \
      OR e.scheme IN ('unknown', 'reasoning', 'content') \
      OR e.path LIKE 'prompt://%' OR e.path LIKE 'log://turn_%/update/%' \
    THEN e.body END AS body \
FROM run_views AS v \
INNER JOIN entries AS e ON e.id = v.entry_id \
LEFT JOIN schemes AS s ON s.name = e.scheme \
WHERE v.run_id = ? \
  AND NOT (coalesce(s.category, '') IN ('audit', 'data') \
    AND coalesce(e.scheme, '') NOT IN ('reasoning', 'content', 'unknown'))"
    };
}

const RUN_SCAN: &str = run_scan_sql!();

/// The scan of the views the log lists for (run, after seq, up to seq).
const RUN_SCAN_OF_LOGGED: &str = concat!(
    run_scan_sql!(),
    " AND v.id IN (SELECT view_id FROM temp.rummy_view_log \
       WHERE run_id = ? AND seq > ? AND seq <= ?)"
);

/// A scanned row with what the scan derives from it alone.
#[derive(Debug, Clone)]
struct Scanned {
    row: ScanRow,
    /// `path LIKE 'log://turn_%/update/%'`.
    update: bool,
    /// An update whose attributes say status 200.
    status_200: bool,
    /// `path LIKE 'prompt://%'`.
    prompt: bool,
}

impl Scanned {
    fn new(row: ScanRow) -> Scanned {
        // SQLite's LIKE: ASCII case-insensitive, `_` one character.
        let update = is_update_log(&row.path);
        let status_200 = update
            && row
                .attributes
                .as_deref()
                .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                .and_then(|a| a.get("status").and_then(serde_json::Value::as_f64))
                == Some(200.0);
        let prompt = has_prefix_ci(&row.path, "prompt://");
        Scanned {
            row,
            update,
            status_200,
            prompt,
        }
    }
}

/// A reader's copy of one run's scanned rows, by view id (view order).
#[derive(Debug, Default)]
pub struct ScanCache {
    run_id: Option<i64>,
    cursor: Option<ViewCursor>,
    rows: BTreeMap<i64, Scanned>,
}

/// Shared between the turn loop and the store thread that refreshes it.
pub type SharedScanRows = Arc<Mutex<ScanCache>>;

impl ScanCache {
    fn clear(&mut self) {
        self.cursor = None;
        self.rows.clear();
    }

    fn refresh(&mut self, conn: &mut SqliteConnection, run: i64) -> StoreResult<()> {
        if self.run_id != Some(run) {
            self.clear();
            self.run_id = Some(run);
        }
        let (since, cursor) = view_log::since(conn, run, self.cursor)?;
        match since {
            Since::All => {
                let rows: Vec<ScanRow> = prepared(RUN_SCAN).int(run).load(conn)?;
                self.rows = rows.into_iter().map(|r| (r.id, Scanned::new(r))).collect();
            }
            Since::Views { views, from, to } => {
                if !views.is_empty() {
                    let rows: Vec<ScanRow> = prepared(RUN_SCAN_OF_LOGGED)
                        .int(run)
                        .int(run)
                        .int(from)
                        .int(to)
                        .load(conn)?;
                    for v in &views {
                        self.rows.remove(v);
                    }
                    for r in rows {
                        self.rows.insert(r.id, Scanned::new(r));
                    }
                }
            }
        }
        self.cursor = Some(cursor);
        Ok(())
    }
}

impl RunScan {
    /// Reads the whole run.
    pub(crate) fn read(conn: &mut SqliteConnection, run: i64) -> StoreResult<RunScan> {
        let rows: Vec<ScanRow> = prepared(RUN_SCAN).int(run).load(conn)?;
        // View order, sorted here: an `ORDER BY` has SQLite copy every
        // row, bodies included, through its sorter.
        let rows: BTreeMap<i64, Scanned> =
            rows.into_iter().map(|r| (r.id, Scanned::new(r))).collect();
        Ok(RunScan::of(rows.values()))
    }

    /// Reads what changed since the cache's last read, then scans the cache.
    pub(crate) fn read_cached(
        conn: &mut SqliteConnection,
        run: i64,
        cache: &Mutex<ScanCache>,
    ) -> StoreResult<RunScan> {
        let mut cache = cache.lock().unwrap_or_else(|poisoned| {
            let mut c = poisoned.into_inner();
            c.clear();
            c
        });
        if let Err(e) = cache.refresh(conn, run) {
            // The transaction rolls back; start over next time.
            cache.clear();
            return Err(e);
        }
        Ok(RunScan::of(cache.rows.values()))
    }

    /// One pass over rows in view order.
    fn of<'a>(rows: impl Iterator<Item = &'a Scanned>) -> RunScan {
        let mut scan = RunScan::default();
        // The newest of each, copied once at the end.
        let (mut summary, mut last_update, mut last_prompt) = (None, None, None);
        for s in rows {
            let r = &s.row;
            let body = r.body.as_deref().unwrap_or_default();
            if s.update {
                if s.status_200 {
                    summary = Some(body);
                }
                last_update = Some(body);
            }
            if s.prompt {
                last_prompt = Some(body);
            }
            let listed = match r.scheme.as_deref() {
                Some("unknown") => Some((&mut scan.unknowns, -1)),
                Some("reasoning") => Some((&mut scan.reasoning, r.turn)),
                Some("content") => Some((&mut scan.content, r.turn)),
                _ => None,
            };
            if let Some((list, turn)) = listed {
                list.push(PathBody {
                    path: r.path.clone(),
                    body: body.to_string(),
                    turn,
                });
            }
            let logged = matches!(
                r.category.as_deref(),
                Some("logging" | "prompt" | "unknown")
            ) && r.state != EntryState::Proposed
                && r.scheme.as_deref() != Some("run");
            if logged {
                scan.history.push(HistoryRow {
                    tool: r.scheme.clone(),
                    state: r.state,
                    outcome: r.outcome.clone(),
                    path: r.path.clone(),
                    body: body.to_string(),
                    turn: r.turn,
                    attributes: r.attributes.clone().unwrap_or_else(|| "{}".into()),
                });
            }
        }
        scan.summary = summary.map(str::to_string);
        scan.last_update = last_update.map(str::to_string);
        scan.last_prompt = last_prompt.map(str::to_string);
        scan
    }
}

fn has_prefix_ci(path: &str, prefix: &str) -> bool {
    path.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `path LIKE 'log://turn_%/update/%'`.
fn is_update_log(path: &str) -> bool {
    const HEAD: &str = "log://turn";
    if !has_prefix_ci(path, HEAD) {
        return false;
    }
    // `_` takes one character, then `%` anything before "/update/".
    let mut rest = path[HEAD.len()..].chars();
    if rest.next().is_none() {
        return false;
    }
    rest.as_str().to_ascii_lowercase().contains("/update/")
}

#[cfg(test)]
mod like_tests {
    use super::{has_prefix_ci, is_update_log};

    #[test]
    fn matches_like_update_paths_as_sqlite_does() {
        assert!(is_update_log("log://turn_3/update/done"));
        assert!(is_update_log("LOG://TURN_12/UPDATE/x"));
        assert!(is_update_log("log://turnX/update/"));
        assert!(!is_update_log("log://turn/update/x"));
        assert!(!is_update_log("log://turn_3/set/update"));
        assert!(!is_update_log("known://turn_3/update/x"));
        assert!(has_prefix_ci("Prompt://1", "prompt://"));
        assert!(!has_prefix_ci("prompt:/", "prompt://"));
    }
}
