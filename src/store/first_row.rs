//! `first()` without `LIMIT ?`.
//!
//! diesel's `.first()` appends `LIMIT ?` and binds 1. SQLite reads a bound
//! LIMIT while planning and marks the statement to be re-planned whenever
//! that parameter is bound again (`sqlite3ExprIsInteger` sets the
//! variable's bit in `expmask`), so every cached `.first()` statement was
//! compiled afresh on each use: a fifth of a turn's store time went to
//! re-preparing the same few lookups. Stepping the statement once and
//! dropping it reads the same first row with no bound LIMIT, so the
//! prepared statement survives.

use diesel::query_dsl::methods::LoadQuery;
use diesel::result::Error::NotFound;
use diesel::{QueryResult, RunQueryDsl, SqliteConnection};

/// The first row a query yields, or `NotFound` (as `.first()` gives, so
/// `.optional()` reads the same).
pub(crate) trait FirstRow: RunQueryDsl<SqliteConnection> + Sized {
    fn first_row<'q, U>(self, conn: &mut SqliteConnection) -> QueryResult<U>
    where
        Self: LoadQuery<'q, SqliteConnection, U> + 'q,
        U: 'q,
    {
        self.load_iter::<U, diesel::connection::DefaultLoadingMode>(conn)?
            .next()
            .unwrap_or(Err(NotFound))
    }
}

impl<T: RunQueryDsl<SqliteConnection>> FirstRow for T {}
