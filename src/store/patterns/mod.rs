//! The pattern engine of the entry store: `hedmatch` (does the pattern match the whole subject,
//! used on paths) and `hedsearch` (is the pattern found inside the subject, used on bodies).
//!
//! One pattern string is read as exactly one of six kinds, detected in a fixed order (spec 01
//! §4): sed `s/a/b/flags`, regex `/body/flags`, JSONPath `$.…`, XPath `//…`, glob, literal. The
//! same code serves Rust callers and SQLite: [`register`] installs `hedmatch(pattern, subject)`
//! and `hedsearch(pattern, subject)` as deterministic SQL functions, so pattern filters run
//! inside the query instead of loading every row.
//!
//! Nothing here panics or fails on input: a pattern that does not compile (a bad regex, a
//! JSONPath or XPath syntax error, an invalid glob range) is kept as a pattern that matches
//! nothing, which is what a filter over rows needs.
//!
//! Globs follow upstream's picomatch settings (dotfiles on, no braces, no extglob, parentheses
//! literal) on top of `globset`; the places where globset and picomatch still differ are listed
//! on [`CompiledGlob`].

mod detection;
mod glob;
mod js_regex;
mod jsonpath;
#[cfg(test)]
mod tests;
mod xpath;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use diesel::{QueryResult, SqliteConnection};

pub use glob::CompiledGlob;
pub use js_regex::JsRegex;
pub use jsonpath::JsonQuery;

use detection::{is_glob, is_plausible_json_path, is_xpath, parse_sed, split_regex};
use glob::compile_glob;
use jsonpath::compile_json_path;
use xpath::{xpath_is_usable, xpath_matches};

/// How many compiled patterns one thread keeps. Patterns come from model output and client
/// requests, so the cache must not grow without bound; when full it is simply emptied (a
/// pattern is cheap to compile again, and queries reuse a handful of patterns at a time).
const CACHE_LIMIT: usize = 512;

/// Deepest bracket/parenthesis nesting accepted in a JSONPath or XPath pattern. Their parsers
/// recurse per nesting level, and a stack overflow aborts the process instead of unwinding, so
/// absurdly nested patterns are refused up front (real queries nest a few levels at most).
const MAX_NESTING: usize = 32;

/// Longest JSONPath or XPath pattern accepted, for the same reason as [`MAX_NESTING`]: long
/// operator chains also recurse in those parsers. Paths are capped at 2048 characters anyway.
const MAX_QUERY_LEN: usize = 2048;

/// A compiled pattern. Compile once with [`Pattern::compile`] (or let [`hedmatch`] /
/// [`hedsearch`] use their per-thread cache); a pattern that failed to compile matches nothing.
#[derive(Debug)]
pub enum Pattern {
    /// `s/search/replace/flags`. With flags, `search` is a regex compiled with them (`regex` is
    /// `None` when it does not compile); without flags, `search` is a plain substring.
    Sed {
        search: String,
        replace: String,
        flags: String,
        regex: Option<JsRegex>,
    },
    /// `/body/flags` with flags from `gimsuy`; `regex` is `None` when the body or the flags are
    /// invalid.
    Regex {
        body: String,
        flags: String,
        regex: Option<JsRegex>,
    },
    /// `$.…`, `$[…` or `$..`: the subject is parsed as JSON and matches when the query selects
    /// at least one node.
    JsonPath { query: Option<JsonQuery> },
    /// `//…`, or `/…` with an axis or a predicate: the subject is parsed as XML and matches when
    /// the expression selects at least one node. `valid` is false when the expression does not
    /// parse or cannot be evaluated safely (see [`Pattern::compile`]).
    XPath { expr: String, valid: bool },
    /// A picomatch-style glob; `None` when globset rejects it.
    Glob { glob: Option<CompiledGlob> },
    /// Anything else: equality for [`hedmatch`], substring for [`hedsearch`].
    Literal(String),
}

impl Pattern {
    /// Detects the kind of `pattern` (spec 01 §4, first rule that applies) and compiles it.
    /// Never fails: an invalid pattern compiles to one that matches nothing.
    pub fn compile(pattern: &str) -> Pattern {
        if let Some((search, replace, flags)) = parse_sed(pattern) {
            let regex = if flags.is_empty() {
                None
            } else {
                JsRegex::compile(&search, &flags)
            };
            return Pattern::Sed {
                search,
                replace,
                flags,
                regex,
            };
        }
        if let Some((body, flags)) = split_regex(pattern) {
            return Pattern::Regex {
                body: body.to_owned(),
                flags: flags.to_owned(),
                regex: JsRegex::compile(body, flags),
            };
        }
        if is_plausible_json_path(pattern) {
            return Pattern::JsonPath {
                query: compile_json_path(pattern),
            };
        }
        if is_xpath(pattern) {
            return Pattern::XPath {
                expr: pattern.to_owned(),
                valid: xpath_is_usable(pattern),
            };
        }
        if is_glob(pattern) {
            return Pattern::Glob {
                glob: compile_glob(pattern),
            };
        }
        Pattern::Literal(pattern.to_owned())
    }

    /// The detected kind: `"sed"`, `"regex"`, `"jsonpath"`, `"xpath"`, `"glob"` or `"literal"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Pattern::Sed { .. } => "sed",
            Pattern::Regex { .. } => "regex",
            Pattern::JsonPath { .. } => "jsonpath",
            Pattern::XPath { .. } => "xpath",
            Pattern::Glob { .. } => "glob",
            Pattern::Literal(_) => "literal",
        }
    }

    /// `hedmatch` semantics (paths): literal is equality, glob a full match, regex an
    /// unanchored test, sed a regex test with flags or a substring test without.
    pub fn matches_whole(&self, subject: &str) -> bool {
        match self {
            Pattern::Literal(text) => subject == text,
            // picomatch's `isMatch` refuses an empty subject outright, then accepts the subject
            // equal to the pattern text, then runs its regex.
            Pattern::Glob { glob } => glob.as_ref().is_some_and(|g| {
                !subject.is_empty() && (subject == g.prepared || g.is_match(subject))
            }),
            _ => self.matches_within(subject),
        }
    }

    /// `hedsearch` semantics (bodies): literal is a substring test, glob is still an anchored
    /// full match (picomatch's regex), the other kinds test the same way as [`matches_whole`].
    ///
    /// Every test is stateless: a `g` or `y` flag never makes repeated tests on different rows
    /// alternate, as upstream's shared `RegExp.lastIndex` did (the spec's "Defect in 2.0.0").
    ///
    /// [`matches_whole`]: Pattern::matches_whole
    pub fn matches_within(&self, subject: &str) -> bool {
        match self {
            Pattern::Literal(text) => subject.contains(text.as_str()),
            Pattern::Glob { glob } => glob.as_ref().is_some_and(|g| g.is_match(subject)),
            Pattern::Regex { regex, .. } => regex.as_ref().is_some_and(|re| re.test(subject)),
            Pattern::Sed {
                search,
                flags,
                regex,
                ..
            } => {
                if flags.is_empty() {
                    subject.contains(search.as_str())
                } else {
                    regex.as_ref().is_some_and(|re| re.test(subject))
                }
            }
            Pattern::JsonPath { query } => query.as_ref().is_some_and(|q| q.matches(subject)),
            Pattern::XPath { expr, valid } => *valid && xpath_matches(expr, subject),
        }
    }
}

/// Does `pattern` match the whole of `subject`? (SQL `hedmatch`; compiled patterns are cached.)
pub fn hedmatch(pattern: &str, subject: &str) -> bool {
    with_compiled(pattern, |p| p.matches_whole(subject))
}

/// Is `pattern` found inside `subject`? (SQL `hedsearch`; compiled patterns are cached.)
pub fn hedsearch(pattern: &str, subject: &str) -> bool {
    with_compiled(pattern, |p| p.matches_within(subject))
}

/// Whether a path argument names a set of entries rather than one literal path: it contains a
/// glob character `*`, `?`, `[` or `]` (upstream's test for pattern deletes).
///
/// Deliberately not "the detector says anything but literal": the bare path `s/a/b.js` detects
/// as a sed pattern, yet as a path argument it names one file. Routing a literal-looking
/// pattern such as `file[12].js` to a pattern operation is harmless, because [`hedmatch`] then
/// tests equality.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', ']'])
}

/// The SQL functions as typed diesel expressions, e.g.
/// `.filter(patterns::sql::hedmatch(pattern, entries::path.nullable()))`.
pub mod sql {
    use diesel::sql_types::{Nullable, Text};

    diesel::define_sql_function! {
        /// `hedmatch(pattern, subject)`: 1 when the pattern matches the whole subject, 0 otherwise
        /// (also when either argument is NULL).
        fn hedmatch(pattern: Nullable<Text>, subject: Nullable<Text>) -> Bool;
    }

    diesel::define_sql_function! {
        /// `hedsearch(pattern, subject)`: 1 when the pattern is found in the subject, 0 otherwise
        /// (also when either argument is NULL).
        fn hedsearch(pattern: Nullable<Text>, subject: Nullable<Text>) -> Bool;
    }
}

/// Registers `hedmatch(pattern, subject)` and `hedsearch(pattern, subject)` on `conn` as
/// deterministic SQL functions. A NULL subject (or pattern) gives 0 rather than an error, so
/// nullable columns can be filtered directly.
pub fn register(conn: &mut SqliteConnection) -> QueryResult<()> {
    sql::hedmatch_utils::register_impl(
        conn,
        |pattern: Option<String>, subject: Option<String>| match (pattern, subject) {
            (Some(pattern), Some(subject)) => hedmatch(&pattern, &subject),
            _ => false,
        },
    )?;
    sql::hedsearch_utils::register_impl(conn, |pattern: Option<String>, subject: Option<String>| {
        match (pattern, subject) {
            (Some(pattern), Some(subject)) => hedsearch(&pattern, &subject),
            _ => false,
        }
    })
}

thread_local! {
    // Per thread rather than global: the SQL functions run on the store's own thread, so no
    // lock is needed, and compiled patterns never have to cross threads.
    static CACHE: RefCell<HashMap<String, Rc<Pattern>>> = RefCell::new(HashMap::new());
}

fn with_compiled<T>(pattern: &str, use_it: impl FnOnce(&Pattern) -> T) -> T {
    let cached = CACHE.try_with(|cache| {
        if let Some(found) = cache.borrow().get(pattern) {
            return Rc::clone(found);
        }
        let compiled = Rc::new(Pattern::compile(pattern));
        let mut cache = cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), Rc::clone(&compiled));
        compiled
    });
    match cached {
        Ok(compiled) => use_it(&compiled),
        // Only while the thread is being torn down: compile without caching.
        Err(_) => use_it(&Pattern::compile(pattern)),
    }
}

/// Deepest nesting of `(` and `[` outside quoted string literals.
fn nesting_depth(text: &str) -> usize {
    let mut quote: Option<char> = None;
    let (mut depth, mut deepest) = (0_usize, 0_usize);
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    deepest
}
