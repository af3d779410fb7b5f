//! Opening the SQLite database: file creation, per-connection pragmas, embedded migrations.
//!
//! Pragmas live here rather than in a migration because SQLite forgets most of them when a
//! connection closes (`foreign_keys`, `synchronous`, `busy_timeout`, `mmap_size`), and
//! because a migration runs once while every new connection needs them.

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::{Connection, ConnectionError, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The schema migrations, compiled into the binary so a fresh machine needs no SQL files.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a connection waits on another writer's lock before failing with SQLITE_BUSY.
const BUSY_TIMEOUT_MS: u32 = 5000;

/// Failures while opening the database; each names the stage so start-up errors are actionable.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The file (or its parent directory) could not be created or opened.
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: ConnectionError,
    },
    /// A per-connection pragma was rejected.
    #[error("cannot configure database connection: {0}")]
    Pragma(#[source] diesel::result::Error),
    /// A pending migration failed; the message names the database and the failing step.
    #[error("database migration failed: {0}")]
    Migrate(String),
}

/// Opens (creating if needed, including parent directories) the SQLite file, applies per-connection pragmas
/// (journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON, busy_timeout=5000, mmap_size = mmap_mb*1024*1024)
/// and runs all pending embedded migrations.
///
/// Foreign keys must be on for the schema's ON DELETE cascades to work; WAL lets readers
/// proceed while the store writes. `mmap_mb = 0` disables memory-mapped I/O (SQLite's default).
pub fn open(path: &Path, mmap_mb: u64) -> Result<SqliteConnection, DbError> {
    let shown = path.display().to_string();
    let open_err = |source: ConnectionError| DbError::Open {
        path: shown.clone(),
        source,
    };

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            open_err(ConnectionError::BadConnection(format!(
                "cannot create directory {}: {e}",
                parent.display()
            )))
        })?;
    }

    let url = connection_url(path).ok_or_else(|| {
        open_err(ConnectionError::BadConnection(
            "path is not valid UTF-8".to_owned(),
        ))
    })?;
    let mut conn = SqliteConnection::establish(&url).map_err(open_err)?;
    // hedmatch/hedsearch first, so every statement after this one (migrations included) can use them.
    super::patterns::register(&mut conn).map_err(DbError::Pragma)?;

    let mmap_bytes = mmap_mb.saturating_mul(1024 * 1024);
    // busy_timeout first, so switching to WAL waits on a concurrent opener instead of failing.
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = {mmap_bytes};"
    ))
    .map_err(DbError::Pragma)?;

    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|e| DbError::Migrate(format!("{shown}: {e}")))?;
    for version in &applied {
        tracing::info!(database = %shown, %version, "applied migration");
    }
    // Loads the planner statistics a migration may just have written.
    conn.batch_execute("ANALYZE sqlite_schema")
        .map_err(DbError::Pragma)?;
    Ok(conn)
}

/// An exclusive lock on `<db>.lock`, held for as long as this value lives.
/// Only its holder may run boot recovery, which marks every run left
/// running as interrupted: a second process must never do that to a live
/// one. The lock is per open file (flock), so two servers inside one
/// process exclude each other too.
#[derive(Debug)]
pub struct DbLock {
    file: std::fs::File,
    path: PathBuf,
    /// What the lock file says now (`key=value` lines).
    record: String,
}

impl DbLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds where this process listens to the lock file, so `rummy run`
    /// can reach the server that holds the database instead of failing on
    /// the lock. Only whether a token is required is written, never the token.
    pub fn note_listener(&mut self, url: &str, token_required: bool) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        self.record.push_str(&format!(
            "listen={url}\ntoken={}\n",
            if token_required { "required" } else { "none" }
        ));
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(self.record.as_bytes())?;
        self.file.flush()
    }
}

/// What a lock file says about the process holding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderRecord {
    pub pid: Option<String>,
    pub started: Option<String>,
    /// `ws://ADDR:PORT` when the holder serves a WebSocket listener.
    pub listen: Option<String>,
    /// The listener wants `RUMMY_AUTH_TOKEN`.
    pub token_required: bool,
}

impl HolderRecord {
    pub fn parse(record: &str) -> HolderRecord {
        let field = |key: &str| {
            record.lines().find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.strip_prefix('='))
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            })
        };
        HolderRecord {
            pid: field("pid"),
            started: field("started"),
            listen: field("listen"),
            token_required: field("token").as_deref() == Some("required"),
        }
    }
}

/// The record in a database's lock file, whoever holds it (read only; a
/// missing file reads as `None`).
pub fn read_holder(db: &Path) -> Option<HolderRecord> {
    std::fs::read_to_string(lock_path(db))
        .ok()
        .map(|t| HolderRecord::parse(&t))
}

/// Why the database lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("database {db} is in use by another rummy process ({holder}); stop it or set RUMMY_DB_PATH to another file (lock file {lock})")]
    Held {
        db: String,
        lock: String,
        holder: String,
    },
    #[error("cannot lock database {db} through {lock}: {source}")]
    Io {
        db: String,
        lock: String,
        #[source]
        source: std::io::Error,
    },
}

/// The lock file beside a database: `rummy.db` -> `rummy.db.lock`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the database's lock without waiting, and records this process
/// (pid and start time) in the lock file for whoever is refused next.
pub fn lock(db: &Path) -> Result<DbLock, LockError> {
    use std::io::{Read, Seek, Write};
    let path = lock_path(db);
    let io = |source: std::io::Error| LockError::Io {
        db: db.display().to_string(),
        lock: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // No truncate on open: the holder's record must survive until we own the lock.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            // The holder may be mid-write; an unreadable record still refuses.
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Held {
                db: db.display().to_string(),
                lock: path.display().to_string(),
                holder: describe_holder(&text),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let record = format!(
        "pid={}\nstarted={}\n",
        std::process::id(),
        utc_now_iso8601()
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(record.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(io)?;
    Ok(DbLock { file, path, record })
}

/// "pid 123, started 2026-01-01T00:00:00Z" from a lock file's record.
fn describe_holder(record: &str) -> String {
    let r = HolderRecord::parse(record);
    match (r.pid, r.started) {
        (Some(pid), Some(started)) => format!("pid {pid}, started {started}"),
        (Some(pid), None) => format!("pid {pid}"),
        _ => "a process that has not recorded itself yet".to_string(),
    }
}

fn utc_now_iso8601() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    iso8601(secs)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn iso8601(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// The string handed to SQLite. Diesel opens with URI filenames enabled, so a relative path
/// that happens to start with `file:` is prefixed with `./` to keep it a plain filename.
fn connection_url(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    if text.starts_with("file:") {
        let mut prefixed = PathBuf::from(".");
        prefixed.push(path);
        return prefixed.to_str().map(str::to_owned);
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub").join("rummy.db");
        let first = lock(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("sub").join("rummy.db.lock"));
        let err = lock(&db).unwrap_err();
        let message = err.to_string();
        let pid = format!("pid {}, started 20", std::process::id());
        assert!(
            matches!(err, LockError::Held { .. }) && message.contains(&pid),
            "{message}"
        );
        drop(first);
        let again = lock(&db).unwrap();
        let record = std::fs::read_to_string(again.path()).unwrap();
        assert!(record.starts_with(&format!("pid={}\n", std::process::id())));
    }

    #[test]
    fn holder_records_are_described() {
        assert_eq!(
            describe_holder("pid=7\nstarted=2026-01-02T03:04:05Z\n"),
            "pid 7, started 2026-01-02T03:04:05Z"
        );
        assert_eq!(describe_holder("pid=7\n"), "pid 7");
        assert!(describe_holder("").contains("not recorded"));
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        let now = utc_now_iso8601();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'), "{now}");
    }

    #[test]
    fn a_noted_listener_is_read_back_without_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("rummy.db");
        let mut held = lock(&db).unwrap();
        assert_eq!(read_holder(&db).unwrap().listen, None);
        held.note_listener("ws://127.0.0.1:4000", true).unwrap();
        let record = read_holder(&db).unwrap();
        assert_eq!(record.listen.as_deref(), Some("ws://127.0.0.1:4000"));
        assert!(record.token_required);
        assert_eq!(record.pid, Some(std::process::id().to_string()));
        // The refusal still names the holder.
        assert!(lock(&db).unwrap_err().to_string().contains("pid "));
        assert_eq!(read_holder(&dir.path().join("none.db")), None);
    }
    use diesel::prelude::*;
    use diesel::result::Error as DieselError;
    use diesel::sql_types::{BigInt, Nullable, Text};

    #[derive(QueryableByName)]
    struct JournalMode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }

    #[derive(QueryableByName)]
    struct ForeignKeys {
        #[diesel(sql_type = BigInt)]
        foreign_keys: i64,
    }

    #[derive(QueryableByName)]
    struct MmapSize {
        #[diesel(sql_type = BigInt)]
        mmap_size: i64,
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    #[derive(QueryableByName)]
    struct SchemeOf {
        #[diesel(sql_type = Nullable<Text>)]
        scheme: Option<String>,
    }

    fn fresh() -> (tempfile::TempDir, SqliteConnection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("rummy.db"), 0).unwrap();
        (dir, conn)
    }

    fn count(conn: &mut SqliteConnection, sql: &str) -> i64 {
        diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
    }

    fn make_project(conn: &mut SqliteConnection, name: &str) -> i64 {
        use super::super::schema::projects::dsl as p;
        diesel::insert_into(p::projects)
            .values(p::name.eq(name))
            .returning(p::id)
            .get_result(conn)
            .unwrap()
    }

    fn make_run(conn: &mut SqliteConnection, project: i64, alias: &str, status: i64) -> i64 {
        use super::super::schema::runs::dsl as r;
        diesel::insert_into(r::runs)
            .values((
                r::project_id.eq(project),
                r::alias.eq(alias),
                r::status.eq(status),
            ))
            .returning(r::id)
            .get_result(conn)
            .unwrap()
    }

    /// Inserts an entry in the run's scope plus its view; returns the entry id.
    fn make_entry(
        conn: &mut SqliteConnection,
        run: i64,
        path: &str,
        visibility: &str,
        turn: i64,
    ) -> i64 {
        use super::super::schema::{entries, run_views};
        let entry: i64 = diesel::insert_into(entries::table)
            .values((
                entries::scope.eq(format!("run:{run}")),
                entries::path.eq(path),
                entries::body.eq(format!("body of {path}")),
            ))
            .returning(entries::id)
            .get_result(conn)
            .unwrap();
        diesel::insert_into(run_views::table)
            .values((
                run_views::run_id.eq(run),
                run_views::entry_id.eq(entry),
                run_views::visibility.eq(visibility),
                run_views::turn.eq(turn),
            ))
            .execute(conn)
            .unwrap();
        entry
    }

    fn add_scheme(conn: &mut SqliteConnection, name: &str, category: &str, visible: bool) {
        use super::super::schema::schemes;
        diesel::insert_into(schemes::table)
            .values((
                schemes::name.eq(name),
                schemes::category.eq(category),
                schemes::model_visible.eq(visible),
            ))
            .execute(conn)
            .unwrap();
    }

    #[test]
    fn migrations_apply_once_and_reopen_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/rummy.db");
        let mut first = open(&path, 0).unwrap();
        assert!(path.exists());
        assert!(!first.has_pending_migration(MIGRATIONS).unwrap());
        drop(first);

        let mut second = open(&path, 4).unwrap();
        let shipped =
            diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&MIGRATIONS)
                .unwrap()
                .len();
        assert_eq!(second.applied_migrations().unwrap().len(), shipped);
        assert!(!second.has_pending_migration(MIGRATIONS).unwrap());
        let mmap = diesel::sql_query("PRAGMA mmap_size")
            .get_result::<MmapSize>(&mut second)
            .unwrap();
        assert_eq!(mmap.mmap_size, 4 * 1024 * 1024);
    }

    #[test]
    fn pragmas_are_set_per_connection() {
        let (_dir, mut conn) = fresh();
        let mode = diesel::sql_query("PRAGMA journal_mode")
            .get_result::<JournalMode>(&mut conn)
            .unwrap();
        assert_eq!(mode.journal_mode, "wal");
        let fk = diesel::sql_query("PRAGMA foreign_keys")
            .get_result::<ForeignKeys>(&mut conn)
            .unwrap();
        assert_eq!(fk.foreign_keys, 1);
    }

    #[test]
    fn down_migration_removes_everything() {
        let (_dir, mut conn) = fresh();
        conn.revert_all_migrations(MIGRATIONS).unwrap();
        let left = count(
            &mut conn,
            "SELECT count(*) AS n FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%'",
        );
        assert_eq!(left, 0);
        conn.run_pending_migrations(MIGRATIONS).unwrap();
    }

    #[test]
    fn scheme_is_generated_from_path() {
        let (_dir, mut conn) = fresh();
        let project = make_project(&mut conn, "p");
        let run = make_run(&mut conn, project, "r", 100);
        let cases = [
            ("known://a", Some("known")),
            ("known://", Some("known")),
            ("known://ref://nested", Some("known")),
            ("src/app.js", None),
            ("://x", None),
            ("C:\\Users\\file", None),
            ("", None),
        ];
        for (path, expected) in cases {
            use super::super::schema::entries;
            let id = make_entry(&mut conn, run, path, "visible", 0);
            let got: Option<String> = entries::table
                .find(id)
                .select(entries::scheme)
                .first(&mut conn)
                .unwrap();
            assert_eq!(got.as_deref(), expected, "path {path:?}");
        }

        use super::super::schema::turn_context as tc;
        diesel::insert_into(tc::table)
            .values((
                tc::run_id.eq(run),
                tc::turn.eq(1),
                tc::ordinal.eq(0),
                tc::path.eq("log://turn_1/set/x"),
                tc::visibility.eq("visible"),
            ))
            .execute(&mut conn)
            .unwrap();
        let got: Option<String> = tc::table.select(tc::scheme).first(&mut conn).unwrap();
        assert_eq!(got.as_deref(), Some("log"));

        // Writing the generated column is refused by SQLite itself.
        let direct = diesel::sql_query(
            "INSERT INTO entries (scope, path, scheme) VALUES ('global', 'a://b', 'zzz')",
        )
        .execute(&mut conn);
        assert!(direct.is_err());

        // A NULL path is rejected before the expression matters; the expression maps it to NULL.
        let null_scheme = diesel::sql_query(
            "SELECT CASE WHEN instr(NULL, '://') > 1
                    THEN substr(NULL, 1, instr(NULL, '://') - 1) END AS scheme",
        )
        .get_result::<SchemeOf>(&mut conn)
        .unwrap();
        assert_eq!(null_scheme.scheme, None);
    }

    /// Every status edge the trigger accepts; any other change of status must be refused.
    const LEGAL: &[(i64, &[i64])] = &[
        (100, &[102, 499, 500]),
        (102, &[200, 202, 204, 422, 500, 499]),
        (202, &[102, 200, 499]),
        (200, &[102, 499]),
        (204, &[102, 499]),
        (422, &[102, 499]),
        (500, &[102, 499]),
        (499, &[102]),
    ];

    #[test]
    fn run_status_trigger_allows_exactly_the_legal_edges() {
        use super::super::schema::runs::dsl as r;
        let (_dir, mut conn) = fresh();
        let project = make_project(&mut conn, "p");
        let statuses = [100_i64, 102, 200, 202, 204, 422, 499, 500];
        let mut checked = 0;
        for from in statuses {
            for to in statuses {
                if from == to {
                    continue;
                }
                // Inserts bypass the trigger, so each pair starts from a fresh row at `from`.
                let run = make_run(&mut conn, project, &format!("r_{from}_{to}"), from);
                let legal = LEGAL.iter().any(|(f, tos)| *f == from && tos.contains(&to));
                let result = diesel::update(r::runs.find(run))
                    .set(r::status.eq(to))
                    .execute(&mut conn);
                match (legal, result) {
                    (true, Ok(1)) => {}
                    (false, Err(DieselError::DatabaseError(_, info))) => {
                        assert_eq!(info.message(), "invalid run state transition");
                    }
                    (legal, other) => {
                        panic!("{from} -> {to}: legal={legal}, got {other:?}")
                    }
                }
                let now: i64 = r::runs
                    .find(run)
                    .select(r::status)
                    .first(&mut conn)
                    .unwrap();
                assert_eq!(now, if legal { to } else { from }, "{from} -> {to}");
                checked += 1;
            }
        }
        assert_eq!(checked, 56);

        // Updating other columns (status unchanged) is never blocked.
        let run = make_run(&mut conn, project, "same", 499);
        diesel::update(r::runs.find(run))
            .set((r::status.eq(499), r::persona.eq("x")))
            .execute(&mut conn)
            .unwrap();
    }

    #[test]
    fn model_context_orders_rows_and_drops_hidden_ones() {
        use super::super::schema::v_model_context as mc;
        let (_dir, mut conn) = fresh();
        add_scheme(&mut conn, "known", "data", true);
        add_scheme(&mut conn, "skill", "data", true);
        add_scheme(&mut conn, "log", "logging", true);
        add_scheme(&mut conn, "prompt", "prompt", true);
        add_scheme(&mut conn, "think", "logging", false);
        let project = make_project(&mut conn, "p");
        let run = make_run(&mut conn, project, "r", 100);
        // Inserted in reverse of the expected order, so ids cannot explain the result.
        make_entry(&mut conn, run, "prompt://1", "visible", 1);
        make_entry(&mut conn, run, "think://1", "visible", 1);
        make_entry(&mut conn, run, "log://turn_1/set/x", "visible", 1);
        make_entry(&mut conn, run, "known://old", "archived", 1);
        make_entry(&mut conn, run, "known://a", "visible", 1);
        make_entry(&mut conn, run, "known://s", "summarized", 2);
        make_entry(&mut conn, run, "skill://x", "visible", 3);
        // A bare path needs a `file` scheme row; without one it is dropped.
        make_entry(&mut conn, run, "src/app.js", "visible", 1);

        let rows: Vec<(String, String, i64)> = mc::table
            .filter(mc::run_id.eq(run))
            .order(mc::ordinal)
            .select((mc::path, mc::category, mc::ordinal))
            .load(&mut conn)
            .unwrap();
        let expected = vec![
            ("skill://x".to_owned(), "data".to_owned(), 1),
            ("known://s".to_owned(), "data".to_owned(), 2),
            ("known://a".to_owned(), "data".to_owned(), 3),
            ("log://turn_1/set/x".to_owned(), "logging".to_owned(), 4),
            ("prompt://1".to_owned(), "prompt".to_owned(), 5),
        ];
        assert_eq!(rows, expected);
    }

    #[test]
    fn deleting_a_run_cascades_to_its_rows() {
        use super::super::schema::{entries, loops, run_views, runs, turn_context, turns};
        let (_dir, mut conn) = fresh();
        let project = make_project(&mut conn, "p");
        let run = make_run(&mut conn, project, "r", 100);
        let other = make_run(&mut conn, project, "other", 100);
        let loop_id: i64 = diesel::insert_into(loops::table)
            .values((
                loops::run_id.eq(run),
                loops::sequence.eq(1),
                loops::mode.eq("act"),
            ))
            .returning(loops::id)
            .get_result(&mut conn)
            .unwrap();
        diesel::insert_into(turns::table)
            .values((
                turns::run_id.eq(run),
                turns::loop_id.eq(loop_id),
                turns::sequence.eq(1),
            ))
            .execute(&mut conn)
            .unwrap();
        make_entry(&mut conn, run, "known://a", "visible", 1);
        make_entry(&mut conn, other, "known://b", "visible", 1);
        diesel::insert_into(turn_context::table)
            .values((
                turn_context::run_id.eq(run),
                turn_context::loop_id.eq(loop_id),
                turn_context::turn.eq(1),
                turn_context::ordinal.eq(0),
                turn_context::path.eq("known://a"),
                turn_context::visibility.eq("visible"),
            ))
            .execute(&mut conn)
            .unwrap();

        diesel::delete(runs::table.find(run))
            .execute(&mut conn)
            .unwrap();

        let n_views: i64 = run_views::table.count().get_result(&mut conn).unwrap();
        let n_loops: i64 = loops::table.count().get_result(&mut conn).unwrap();
        let n_turns: i64 = turns::table.count().get_result(&mut conn).unwrap();
        let n_ctx: i64 = turn_context::table.count().get_result(&mut conn).unwrap();
        assert_eq!((n_views, n_loops, n_turns, n_ctx), (1, 0, 0, 0));
        // Entries are content, not run state: they survive (no garbage collection).
        let n_entries: i64 = entries::table.count().get_result(&mut conn).unwrap();
        assert_eq!(n_entries, 2);
    }

    #[test]
    fn typed_queries_and_joins_compile_and_run() {
        use super::super::schema::{entries, known_entries, projects, run_views, runs, v_run_log};
        let (_dir, mut conn) = fresh();
        add_scheme(&mut conn, "log", "logging", true);
        add_scheme(&mut conn, "run", "logging", false);
        let project = make_project(&mut conn, "p");
        let run = make_run(&mut conn, project, "r", 100);
        make_entry(&mut conn, run, "log://turn_1/set/x", "visible", 1);
        make_entry(&mut conn, run, "run://meta", "visible", 1);

        let row: (i64, String, Option<String>, i64, Option<f64>) = runs::table
            .inner_join(projects::table)
            .filter(projects::name.eq("p"))
            .select((
                runs::id,
                runs::alias,
                runs::model,
                runs::next_turn,
                runs::temperature,
            ))
            .first(&mut conn)
            .unwrap();
        assert_eq!(row, (run, "r".to_owned(), None, 1, None));

        let joined: Vec<(String, Option<String>, String)> = run_views::table
            .inner_join(entries::table)
            .filter(run_views::run_id.eq(run))
            .order(entries::id)
            .select((entries::path, entries::scheme, run_views::state))
            .load(&mut conn)
            .unwrap();
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[0].1.as_deref(), Some("log"));
        assert_eq!(joined[0].2, "resolved");

        let known: Vec<(i64, String, i64)> = known_entries::table
            .filter(known_entries::run_id.eq(run))
            .select((
                known_entries::id,
                known_entries::attributes,
                known_entries::write_count,
            ))
            .load(&mut conn)
            .unwrap();
        assert_eq!(known.len(), 2);
        assert_eq!(known[0].1, "{}");

        // run:// bookkeeping never shows in the log.
        let log: Vec<(String, String)> = v_run_log::table
            .filter(v_run_log::run_id.eq(run))
            .select((v_run_log::path, v_run_log::tool))
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            log,
            vec![("log://turn_1/set/x".to_owned(), "log".to_owned())]
        );
    }
}
