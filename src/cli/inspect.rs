//! `rummy inspect`: the read-only database inspector (upstream's
//! `bin/demo.js`, spec 03 §7.1, renamed so it does not clash with
//! `rummy demo`). It opens SQLite read-only, never migrates and never
//! writes, so it is safe beside a running server.

use super::CliError;
use crate::store::schema::{known_entries, loops, projects, runs, turns};
use crate::Config;
use diesel::prelude::*;
use diesel::SqliteConnection;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The database (default: RUMMY_DB_PATH from the settings).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub what: InspectWhat,
}

#[derive(Debug, clap::Subcommand)]
pub enum InspectWhat {
    /// Every run, newest first.
    Runs,
    /// One run: its loops, per-turn tokens, open proposals and last update.
    Run { alias: String },
    /// One turn: usage, the packet's rows by scheme and the entries it wrote.
    Turn {
        alias: String,
        n: i64,
        /// Print the packet sent to the model (system and user messages) and its reply.
        #[arg(long)]
        packet: bool,
    },
    /// A run's entries.
    Entries {
        alias: String,
        /// Only paths matching this glob (`**` for all).
        #[arg(long)]
        pattern: Option<String>,
    },
}

/// Characters SQLite URI filenames need escaped.
const URI: &AsciiSet = &CONTROLS.add(b'?').add(b'#').add(b'%').add(b' ');

fn db_error(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("database: {e}"))
}

/// Opens the database read-only; a missing file is an error, never created.
pub fn open_read_only(path: &Path) -> Result<SqliteConnection, CliError> {
    if !path.is_file() {
        return Err(CliError::Usage(format!(
            "no database at {}",
            path.display()
        )));
    }
    let absolute = path
        .canonicalize()
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    let text = absolute.to_string_lossy();
    let url = format!("file:{}?mode=ro", utf8_percent_encode(&text, URI));
    let mut conn = SqliteConnection::establish(&url).map_err(db_error)?;
    // Belt and braces: refuse writes even through a statement that would try.
    diesel::sql_query("PRAGMA query_only = 1")
        .execute(&mut conn)
        .map_err(db_error)?;
    Ok(conn)
}

/// Left-aligned plain text columns.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<pad$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// First line, at most `max` characters.
fn short(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or_default();
    if first.chars().count() > max || text.lines().nth(1).is_some() {
        let cut: String = first.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        first.to_string()
    }
}

/// `rummy inspect`.
pub fn main(args: InspectArgs) -> ExitCode {
    match inspect(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rummy inspect: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn inspect(args: InspectArgs) -> Result<String, CliError> {
    let db = match args.db {
        Some(db) => db,
        None => {
            Config::load()
                .map_err(|e| CliError::Failed(format!("configuration error: {e}")))?
                .db_path
        }
    };
    let mut conn = open_read_only(&db)?;
    match args.what {
        InspectWhat::Runs => list_runs(&mut conn),
        InspectWhat::Run { alias } => show_run(&mut conn, &alias),
        InspectWhat::Turn { alias, n, packet } => show_turn(&mut conn, &alias, n, packet),
        InspectWhat::Entries { alias, pattern } => list_entries(&mut conn, &alias, pattern),
    }
}

fn run_id(conn: &mut SqliteConnection, alias: &str) -> Result<i64, CliError> {
    runs::table
        .filter(runs::alias.eq(alias))
        .select(runs::id)
        .first::<i64>(conn)
        .optional()
        .map_err(db_error)?
        .ok_or_else(|| CliError::Usage(format!("no run {alias} in this database")))
}

fn list_runs(conn: &mut SqliteConnection) -> Result<String, CliError> {
    type Row = (
        String,
        i64,
        Option<String>,
        i64,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = runs::table
        .inner_join(projects::table)
        .select((
            runs::alias,
            runs::status,
            runs::model,
            runs::next_turn,
            runs::created_at,
            projects::project_root,
        ))
        .order(runs::id.desc())
        .load(conn)
        .map_err(db_error)?;
    if rows.is_empty() {
        return Ok("no runs\n".into());
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(alias, status, model, next, created, root)| {
            vec![
                alias,
                status.to_string(),
                (next - 1).max(0).to_string(),
                model.unwrap_or_default(),
                created.unwrap_or_default(),
                root.unwrap_or_default(),
            ]
        })
        .collect();
    Ok(table(
        &["RUN", "STATUS", "TURNS", "MODEL", "CREATED", "PROJECT"],
        &rows,
    ))
}

fn show_run(conn: &mut SqliteConnection, alias: &str) -> Result<String, CliError> {
    let id = run_id(conn, alias)?;
    let (status, model, next): (i64, Option<String>, i64) = runs::table
        .find(id)
        .select((runs::status, runs::model, runs::next_turn))
        .first(conn)
        .map_err(db_error)?;
    let mut out = format!(
        "run {alias}: status {status}, model {}, {} turn(s)\n",
        model.unwrap_or_default(),
        (next - 1).max(0)
    );
    let loop_rows: Vec<(i64, String, i64, String)> = loops::table
        .filter(loops::run_id.eq(id))
        .select((loops::sequence, loops::mode, loops::status, loops::prompt))
        .order(loops::sequence)
        .load(conn)
        .map_err(db_error)?;
    out.push_str("\nloops\n");
    let rows: Vec<Vec<String>> = loop_rows
        .into_iter()
        .map(|(seq, mode, st, prompt)| {
            vec![seq.to_string(), mode, st.to_string(), short(&prompt, 60)]
        })
        .collect();
    out.push_str(&table(&["LOOP", "MODE", "STATUS", "PROMPT"], &rows));
    type Usage = (i64, i64, i64, i64, i64, f64);
    let usage: Vec<Usage> = turns::table
        .filter(turns::run_id.eq(id))
        .select((
            turns::sequence,
            turns::context_tokens,
            turns::prompt_tokens,
            turns::completion_tokens,
            turns::total_tokens,
            turns::cost,
        ))
        .order(turns::sequence)
        .load(conn)
        .map_err(db_error)?;
    out.push_str("\nturns\n");
    let rows: Vec<Vec<String>> = usage
        .into_iter()
        .map(|(seq, ctx, p, c, t, cost)| {
            vec![
                seq.to_string(),
                ctx.to_string(),
                p.to_string(),
                c.to_string(),
                t.to_string(),
                format!("{cost:.4}"),
            ]
        })
        .collect();
    out.push_str(&table(
        &["TURN", "CONTEXT", "PROMPT", "COMPLETION", "TOTAL", "COST"],
        &rows,
    ));
    let open: Vec<(String, i64)> = known_entries::table
        .filter(known_entries::run_id.eq(id))
        .filter(known_entries::state.eq_any(["proposed", "streaming"]))
        .select((known_entries::path, known_entries::turn))
        .load(conn)
        .map_err(db_error)?;
    out.push_str(&format!("\nopen proposals and streams: {}\n", open.len()));
    for (path, turn) in open {
        out.push_str(&format!("  turn {turn}: {path}\n"));
    }
    let last: Option<String> = known_entries::table
        .filter(known_entries::run_id.eq(id))
        .filter(known_entries::path.like("log://turn_%/update/%"))
        .select(known_entries::body)
        .order(known_entries::id.desc())
        .first(conn)
        .optional()
        .map_err(db_error)?;
    out.push_str(&format!(
        "\nlast update: {}\n",
        last.as_deref().unwrap_or("(none)")
    ));
    Ok(out)
}

fn show_turn(
    conn: &mut SqliteConnection,
    alias: &str,
    n: i64,
    packet: bool,
) -> Result<String, CliError> {
    let id = run_id(conn, alias)?;
    let body = |conn: &mut SqliteConnection, path: String| {
        known_entries::table
            .filter(known_entries::run_id.eq(id))
            .filter(known_entries::path.eq(path))
            .select(known_entries::body)
            .first::<String>(conn)
            .optional()
            .map_err(db_error)
    };
    if packet {
        let mut out = String::new();
        for (label, scheme) in [
            ("SYSTEM", "system"),
            ("USER", "user"),
            ("ASSISTANT", "assistant"),
        ] {
            let text = body(conn, format!("{scheme}://{n}"))?;
            out.push_str(&format!(
                "--- {label} ({scheme}://{n}) ---\n{}\n\n",
                text.as_deref().unwrap_or("(not recorded)")
            ));
        }
        return Ok(out);
    }
    let usage: Option<(i64, i64, i64)> = turns::table
        .filter(turns::run_id.eq(id))
        .filter(turns::sequence.eq(n))
        .select((
            turns::context_tokens,
            turns::prompt_tokens,
            turns::completion_tokens,
        ))
        .first(conn)
        .optional()
        .map_err(db_error)?;
    let mut out = match usage {
        Some((ctx, p, c)) => format!(
            "run {alias} turn {n}: context {ctx} tokens, provider counted {p} prompt + {c} completion\n"
        ),
        None => format!("run {alias} turn {n}: no provider call recorded\n"),
    };
    let packet_rows: Vec<Option<String>> = crate::store::StoreOp::run(
        crate::store::turn_context::TurnSnapshotSchemes {
            run_id: id,
            turn: n,
        },
        conn,
    )
    .map_err(db_error)?
    .into_iter()
    .map(|(_, scheme)| scheme)
    .collect();
    let mut by_scheme = std::collections::BTreeMap::<String, usize>::new();
    for scheme in packet_rows {
        *by_scheme
            .entry(scheme.unwrap_or_else(|| "file".into()))
            .or_default() += 1;
    }
    out.push_str("\npacket rows by scheme\n");
    let rows: Vec<Vec<String>> = by_scheme
        .into_iter()
        .map(|(s, c)| vec![s, c.to_string()])
        .collect();
    out.push_str(&table(&["SCHEME", "ROWS"], &rows));
    let written: Vec<(String, String, String, String)> = known_entries::table
        .filter(known_entries::run_id.eq(id))
        .filter(known_entries::turn.eq(n))
        .select((
            known_entries::path,
            known_entries::state,
            known_entries::visibility,
            known_entries::body,
        ))
        .order(known_entries::id)
        .load(conn)
        .map_err(db_error)?;
    out.push_str("\nentries of this turn\n");
    let rows: Vec<Vec<String>> = written
        .into_iter()
        .map(|(p, s, v, b)| vec![p, s, v, short(&b, 50)])
        .collect();
    out.push_str(&table(&["PATH", "STATE", "VISIBILITY", "BODY"], &rows));
    Ok(out)
}

fn list_entries(
    conn: &mut SqliteConnection,
    alias: &str,
    pattern: Option<String>,
) -> Result<String, CliError> {
    let id = run_id(conn, alias)?;
    let matcher = match pattern.as_deref() {
        None => None,
        Some(p) => Some(
            globset::Glob::new(p)
                .map_err(|e| CliError::Usage(format!("--pattern {p}: {e}")))?
                .compile_matcher(),
        ),
    };
    type Row = (String, Option<String>, String, String, i64, String);
    let rows: Vec<Row> = known_entries::table
        .filter(known_entries::run_id.eq(id))
        .select((
            known_entries::path,
            known_entries::scheme,
            known_entries::state,
            known_entries::visibility,
            known_entries::turn,
            known_entries::body,
        ))
        .order(known_entries::path)
        .load(conn)
        .map_err(db_error)?;
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|r| matcher.as_ref().is_none_or(|m| m.is_match(&r.0)))
        .map(|(path, scheme, state, vis, turn, body)| {
            vec![
                path,
                scheme.unwrap_or_else(|| "file".into()),
                state,
                vis,
                turn.to_string(),
                body.chars().count().to_string(),
            ]
        })
        .collect();
    Ok(table(
        &["PATH", "SCHEME", "STATE", "VISIBILITY", "TURN", "CHARS"],
        &rows,
    ))
}
