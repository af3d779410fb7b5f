//! Entry states and run (and loop) statuses as types (spec 01 §2 and §6).
//!
//! Everything inside the server passes these enums around; their text and integer spellings
//! appear only where they meet SQL (the diesel `ToSql`/`FromSql` impls here, so columns and
//! `QueryableByName` rows read and bind them directly) and the wire (serde: a state is its
//! lower-case name, a status its integer).

use std::fmt;
use std::str::FromStr;

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The state of an entry's view in a run (`run_views.state`, `CHECK`ed by the schema).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    AsExpression,
    FromSqlRow,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = Text)]
pub enum EntryState {
    /// Waiting for a client's decision (a proposal).
    Proposed,
    /// Still being written (streamed output, a running run).
    Streaming,
    Resolved,
    Failed,
    Cancelled,
}

/// A state name that is none of [`EntryState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state must be one of proposed, streaming, resolved, failed, cancelled (got {0:?})")]
pub struct UnknownState(pub String);

impl EntryState {
    pub const ALL: [EntryState; 5] = [
        EntryState::Proposed,
        EntryState::Streaming,
        EntryState::Resolved,
        EntryState::Failed,
        EntryState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Proposed => "proposed",
            EntryState::Streaming => "streaming",
            EntryState::Resolved => "resolved",
            EntryState::Failed => "failed",
            EntryState::Cancelled => "cancelled",
        }
    }

    /// Proposed or streaming: the entry's outcome is not known yet.
    pub fn is_unresolved(self) -> bool {
        matches!(self, EntryState::Proposed | EntryState::Streaming)
    }

    /// The status an entry of this state reports when its outcome names none (spec 01 §8.9).
    pub fn default_status(self) -> i64 {
        match self {
            EntryState::Resolved => 200,
            EntryState::Proposed => 202,
            EntryState::Streaming => 102,
            EntryState::Cancelled => 499,
            EntryState::Failed => 500,
        }
    }

    /// The status a failed (or otherwise finished) entry's error reports,
    /// read from the outcome's kind: `status:N` is N, the named kinds map to
    /// their codes, anything else takes [`EntryState::default_status`].
    ///
    /// Unlike §8.9's first-three-digits rule (spec 01), the digits of an
    /// outcome such as `overflow:1234` (a token count) are never taken for
    /// a status.
    pub fn outcome_status(self, outcome: Option<&str>) -> i64 {
        let Some(outcome) = outcome.map(str::trim).filter(|o| !o.is_empty()) else {
            return self.default_status();
        };
        let (kind, detail) = outcome.split_once(':').unwrap_or((outcome, ""));
        let named = match kind {
            "status" => detail.trim().parse::<i64>().ok(),
            "validation" | "unavailable" | "unsupported" => Some(400),
            "permission" | "readonly" => Some(403),
            "not_found" => Some(404),
            "conflict" => Some(409),
            "overflow" => Some(413),
            "aborted" => Some(499),
            _ => kind.parse::<i64>().ok(),
        };
        named
            .filter(|n| (100..=599).contains(n))
            .unwrap_or_else(|| self.default_status())
    }
}

impl FromStr for EntryState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, UnknownState> {
        EntryState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

impl fmt::Display for EntryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql<Text, Sqlite> for EntryState {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.as_str());
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Sqlite> for EntryState {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Sqlite>>::from_sql(value)?;
        Ok(text.parse()?)
    }
}

/// A run's status (`runs.status`, moved only along the edges the `trg_run_state_transition`
/// trigger allows); loops reuse the same codes (`loops.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
#[diesel(sql_type = BigInt)]
pub enum RunStatus {
    /// 100: created, or a loop waiting in the queue.
    Queued,
    /// 102: a loop is being driven.
    Running,
    /// 200: the model's terminal update concluded it.
    Completed,
    /// 202: waiting on a proposal.
    Proposed,
    /// 204: concluded with nothing to report.
    NoContent,
    /// 422: the model said it could not do the task.
    Unprocessable,
    /// 499: cancelled, abandoned, or interrupted by a restart.
    Aborted,
    /// 500: ended by an error.
    Failed,
}

/// A status code that is none of [`RunStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run status must be one of 100, 102, 200, 202, 204, 422, 499, 500 (got {0})")]
pub struct UnknownStatus(pub i64);

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Proposed,
        RunStatus::NoContent,
        RunStatus::Unprocessable,
        RunStatus::Aborted,
        RunStatus::Failed,
    ];

    pub fn code(self) -> i64 {
        match self {
            RunStatus::Queued => 100,
            RunStatus::Running => 102,
            RunStatus::Completed => 200,
            RunStatus::Proposed => 202,
            RunStatus::NoContent => 204,
            RunStatus::Unprocessable => 422,
            RunStatus::Aborted => 499,
            RunStatus::Failed => 500,
        }
    }

    /// The statuses an `<update>` (or a client's `update`) ends a loop with; 1xx continues.
    pub const TERMINAL: [RunStatus; 4] = [
        RunStatus::Completed,
        RunStatus::NoContent,
        RunStatus::Unprocessable,
        RunStatus::Failed,
    ];

    /// The status an update's code ends the loop with, when it is terminal.
    pub fn terminal(code: i64) -> Option<RunStatus> {
        RunStatus::TERMINAL
            .into_iter()
            .find(|status| *status == code)
    }

    /// Queued or running: a loop is still to come or under way.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// The state of the `run://` entry that mirrors this status.
    pub fn mirrored_state(self) -> EntryState {
        match self {
            RunStatus::Queued => EntryState::Proposed,
            RunStatus::Running | RunStatus::Proposed => EntryState::Streaming,
            RunStatus::Completed | RunStatus::NoContent => EntryState::Resolved,
            RunStatus::Aborted => EntryState::Cancelled,
            RunStatus::Unprocessable | RunStatus::Failed => EntryState::Failed,
        }
    }
}

impl TryFrom<i64> for RunStatus {
    type Error = UnknownStatus;
    fn try_from(code: i64) -> Result<Self, UnknownStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.code() == code)
            .ok_or(UnknownStatus(code))
    }
}

impl From<RunStatus> for i64 {
    fn from(status: RunStatus) -> i64 {
        status.code()
    }
}

impl PartialEq<i64> for RunStatus {
    fn eq(&self, code: &i64) -> bool {
        self.code() == *code
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

impl Serialize for RunStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for RunStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = i64::deserialize(deserializer)?;
        RunStatus::try_from(code).map_err(serde::de::Error::custom)
    }
}

impl ToSql<BigInt, Sqlite> for RunStatus {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.code());
        Ok(IsNull::No)
    }
}

impl FromSql<BigInt, Sqlite> for RunStatus {
    fn from_sql(value: <Sqlite as Backend>::RawValue<'_>) -> deserialize::Result<Self> {
        let code = <i64 as FromSql<BigInt, Sqlite>>::from_sql(value)?;
        Ok(RunStatus::try_from(code)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;

    #[test]
    fn outcome_status_reads_the_kind_not_stray_digits() {
        let failed = |o: &str| EntryState::Failed.outcome_status(Some(o));
        assert_eq!(failed("status:413"), 413);
        assert_eq!(failed("status:429"), 429);
        assert_eq!(failed("overflow:1234"), 413);
        assert_eq!(failed("overflow:99"), 413);
        assert_eq!(failed("permission"), 403);
        assert_eq!(failed("not_found"), 404);
        assert_eq!(failed("validation"), 400);
        assert_eq!(failed("conflict"), 409);
        assert_eq!(failed("aborted"), 499);
        assert_eq!(failed("404"), 404);
        // Unknown kinds and out-of-range numbers fall back to the state.
        assert_eq!(failed("exit:1"), 500);
        assert_eq!(failed("error"), 500);
        assert_eq!(failed("status:9999"), 500);
        assert_eq!(failed("status:abc"), 500);
        assert_eq!(failed(""), 500);
        assert_eq!(EntryState::Failed.outcome_status(None), 500);
        assert_eq!(EntryState::Cancelled.outcome_status(Some("user")), 499);
        assert_eq!(EntryState::Resolved.outcome_status(None), 200);
    }

    #[test]
    fn states_round_trip_through_text_and_serde() {
        for state in EntryState::ALL {
            assert_eq!(state.as_str().parse::<EntryState>(), Ok(state));
            let wire = serde_json::to_value(state).unwrap();
            assert_eq!(wire, serde_json::json!(state.as_str()));
            assert_eq!(serde_json::from_value::<EntryState>(wire).unwrap(), state);
        }
        assert_eq!(
            "done".parse::<EntryState>(),
            Err(UnknownState("done".into()))
        );
        assert!(serde_json::from_str::<EntryState>("\"Resolved\"").is_err());
    }

    #[test]
    fn statuses_round_trip_through_integers_and_serde() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::try_from(status.code()), Ok(status));
            assert_eq!(serde_json::to_string(&status).unwrap(), status.to_string());
            let back: RunStatus = serde_json::from_str(&status.to_string()).unwrap();
            assert_eq!(back, status);
        }
        assert_eq!(RunStatus::try_from(201), Err(UnknownStatus(201)));
        let terminal: Vec<i64> = (100..600)
            .filter_map(RunStatus::terminal)
            .map(RunStatus::code)
            .collect();
        assert_eq!(terminal, [200, 204, 422, 500]);
        assert!(serde_json::from_str::<RunStatus>("413").is_err());
    }

    #[test]
    fn the_run_entry_mirrors_the_status() {
        use EntryState as S;
        use RunStatus as R;
        let mirrored: Vec<_> = R::ALL
            .iter()
            .map(|s| (s.code(), s.mirrored_state()))
            .collect();
        assert_eq!(
            mirrored,
            [
                (100, S::Proposed),
                (102, S::Streaming),
                (200, S::Resolved),
                (202, S::Streaming),
                (204, S::Resolved),
                (422, S::Failed),
                (499, S::Cancelled),
                (500, S::Failed),
            ]
        );
    }

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        state: EntryState,
        #[diesel(sql_type = BigInt)]
        status: RunStatus,
    }

    #[test]
    fn sql_reads_and_binds_them_and_refuses_unknown_values() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let row: Row = diesel::sql_query("SELECT ? AS state, ? AS status")
            .bind::<Text, _>(EntryState::Cancelled)
            .bind::<BigInt, _>(RunStatus::Aborted)
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(
            (row.state, row.status),
            (EntryState::Cancelled, RunStatus::Aborted)
        );
        let err = diesel::sql_query("SELECT 'done' AS state, 102 AS status")
            .get_result::<Row>(&mut conn)
            .err()
            .unwrap();
        assert!(err.to_string().contains("state must be one of"), "{err}");
        let err = diesel::sql_query("SELECT 'resolved' AS state, 413 AS status")
            .get_result::<Row>(&mut conn)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("run status must be one of"),
            "{err}"
        );
    }
}
