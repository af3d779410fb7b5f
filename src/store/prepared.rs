//! Constant SQL that diesel keeps prepared.
//!
//! diesel compiles a statement afresh on every use when it cannot prove
//! the SQL text is the same each time: every `sql_query`, every `UPDATE`
//! and every upsert's `DO UPDATE` (they call `unsafe_to_cache_prepared`).
//! Those are exactly the statements a turn runs most: the entry upserts
//! and the large model-context and report reads, each costing SQLite a
//! parse and plan (tens of microseconds) before it reads a row. A
//! [`Prepared`] statement is a `&'static str` with typed parameters,
//! cached under its text like any DSL query. The text must hold one `?`
//! per bound parameter and no `?` anywhere else (string literals
//! included).

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl, SqliteConnection};
use std::marker::PhantomData;

#[derive(Debug, Clone, Copy)]
enum Param<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Float(f64),
    Text(&'a str),
    OptText(Option<&'a str>),
}

/// A constant statement and its parameters, in order. `ST` is the SQL
/// type of its rows: `Untyped` for `QueryableByName` rows, or a column
/// type for `get_result`.
#[derive(Debug, Clone)]
#[must_use = "a statement does nothing until it is executed or loaded"]
pub(crate) struct Prepared<'a, ST = Untyped> {
    sql: &'static str,
    params: Vec<Param<'a>>,
    rows: PhantomData<ST>,
}

/// Starts a statement; bind its parameters in the order of their `?`.
pub(crate) fn prepared<'a>(sql: &'static str) -> Prepared<'a, Untyped> {
    Prepared {
        sql,
        params: Vec::new(),
        rows: PhantomData,
    }
}

impl<'a, ST> Prepared<'a, ST> {
    fn with(mut self, p: Param<'a>) -> Self {
        self.params.push(p);
        self
    }
    pub(crate) fn int(self, v: i64) -> Self {
        self.with(Param::Int(v))
    }
    pub(crate) fn opt_int(self, v: Option<i64>) -> Self {
        self.with(Param::OptInt(v))
    }
    pub(crate) fn float(self, v: f64) -> Self {
        self.with(Param::Float(v))
    }
    pub(crate) fn text(self, v: &'a str) -> Self {
        self.with(Param::Text(v))
    }
    pub(crate) fn opt_text(self, v: Option<&'a str>) -> Self {
        self.with(Param::OptText(v))
    }
    /// The same statement read as rows of one typed column.
    pub(crate) fn returning<T>(self) -> Prepared<'a, T> {
        Prepared {
            sql: self.sql,
            params: self.params,
            rows: PhantomData,
        }
    }
}

impl<ST> QueryFragment<Sqlite> for Prepared<'_, ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // Each `?` is written by binding its parameter, so the text goes
        // in between them.
        let mut pieces = self.sql.split('?');
        if let Some(head) = pieces.next() {
            out.push_sql(head);
        }
        let mut params = self.params.iter();
        for piece in pieces {
            let Some(p) = params.next() else {
                return Err(mismatch(self.sql));
            };
            match p {
                Param::Int(v) => out.push_bind_param::<BigInt, i64>(v)?,
                Param::OptInt(v) => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(v)?,
                Param::Float(v) => out.push_bind_param::<Double, f64>(v)?,
                Param::Text(v) => out.push_bind_param::<Text, str>(v)?,
                Param::OptText(v) => out.push_bind_param::<Nullable<Text>, Option<&str>>(v)?,
            }
            out.push_sql(piece);
        }
        if params.next().is_some() {
            return Err(mismatch(self.sql));
        }
        Ok(())
    }
}

fn mismatch(sql: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        format!("parameter count does not match the placeholders of: {sql}").into(),
    )
}

impl<ST> QueryId for Prepared<'_, ST> {
    type QueryId = ();
    // Cached under the SQL text (and parameter types), not a type id:
    // every statement shares this one type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> Query for Prepared<'_, ST> {
    type SqlType = ST;
}

impl<ST> RunQueryDsl<SqliteConnection> for Prepared<'_, ST> {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName, Debug, PartialEq)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
        #[diesel(sql_type = Nullable<Text>)]
        s: Option<String>,
    }

    fn conn() -> SqliteConnection {
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE t (n INTEGER NOT NULL, s TEXT)")
            .execute(&mut c)
            .unwrap();
        c
    }

    #[test]
    fn binds_in_order_and_reads_rows() {
        let mut c = conn();
        for (n, s) in [(1, Some("a")), (2, None), (3, Some("c"))] {
            prepared("INSERT INTO t (n, s) VALUES (?, ?)")
                .int(n)
                .opt_text(s)
                .execute(&mut c)
                .unwrap();
        }
        let rows: Vec<Row> = prepared("SELECT n, s FROM t WHERE n >= ? AND n <= ? ORDER BY n")
            .int(2)
            .int(3)
            .load(&mut c)
            .unwrap();
        assert_eq!(
            rows,
            vec![
                Row { n: 2, s: None },
                Row {
                    n: 3,
                    s: Some("c".into())
                }
            ]
        );
        let total: i64 = prepared("SELECT sum(n) FROM t WHERE s IS NOT ?")
            .opt_text(None)
            .returning::<BigInt>()
            .get_result(&mut c)
            .unwrap();
        assert_eq!(total, 4);
    }

    #[test]
    fn a_parameter_count_that_does_not_match_is_an_error() {
        let mut c = conn();
        let short = prepared("INSERT INTO t (n, s) VALUES (?, ?)")
            .int(1)
            .execute(&mut c);
        assert!(short.is_err());
        let long = prepared("INSERT INTO t (n) VALUES (?)")
            .int(1)
            .int(2)
            .execute(&mut c);
        assert!(long.is_err());
        let count: i64 = prepared("SELECT count(*) FROM t")
            .returning::<BigInt>()
            .get_result(&mut c)
            .unwrap();
        assert_eq!(count, 0, "a refused statement wrote nothing");
    }
}
