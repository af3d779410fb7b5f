//! Tests of the pattern engine as a whole: the public API, the SQL functions, the cache, and
//! properties over arbitrary input. Each kind's own cases sit with its module.

use super::*;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use proptest::prelude::*;

pub(super) fn kind(pattern: &str) -> &'static str {
    Pattern::compile(pattern).kind()
}

/// (pattern, subject, hedmatch, hedsearch)
pub(super) fn check(cases: &[(&str, &str, bool, bool)]) {
    for &(pattern, subject, whole, within) in cases {
        assert_eq!(
            hedmatch(pattern, subject),
            whole,
            "hedmatch({pattern:?}, {subject:?}) [{}]",
            kind(pattern)
        );
        assert_eq!(
            hedsearch(pattern, subject),
            within,
            "hedsearch({pattern:?}, {subject:?}) [{}]",
            kind(pattern)
        );
    }
}

#[test]
fn spec_verified_examples() {
    assert!(hedmatch("known://*", "known://a/b"));
    assert!(!hedmatch("known://plan_*", "known://plan_a/b"));
    assert!(!hedmatch("log://turn_1/*", "log://turn_1/set/x"));
    assert!(!hedmatch("*", "src/app.js"));
    assert!(hedmatch("src/**", "src/a/b.js"));
    assert!(hedmatch("src/*.js", "src/.hidden.js"));
    assert_eq!(kind("file[12].js"), "literal");
    assert_eq!(kind("file.*"), "literal");
    assert!(hedmatch("file[12].js", "file[12].js"));
    assert!(!hedmatch("file[12].js", "file1.js"));
    assert!(hedmatch("file.*", "file.*"));
    assert!(!hedmatch("file.*", "file.js"));
    assert_eq!(kind("file[12]*.js"), "glob");
    assert!(hedmatch("file[12]*.js", "file1.js"));
    assert!(hedsearch("*auth*", "the auth flow"));
    assert!(!hedsearch("*auth*", "a/b auth"));
    assert_eq!(kind("s/a/b.js"), "sed");
    assert!(hedmatch("s/a/b.js", "xa"));
    assert!(hedmatch("s/a/b.js", "s/a/b.js"));
    assert!(!hedmatch("s/a/b.js", "src/b.js"));
}

#[test]
fn literal_cases() {
    check(&[
        ("readme.md", "readme.md", true, true),
        ("readme.md", "docs/readme.md", false, true),
        ("port = 3000", "const port = 3000;\n", false, true),
        (":AI[]", ":AI[]", true, true),
        (":AI[]", ":AI[x]", false, false),
        (r"\d+", r"\d+", true, true),
        (r"\d+", "123", false, false),
        ("Known", "known", false, false),
        ("missing", "nothing here", false, false),
        ("", "", true, true),
        ("", "anything", false, true),
        (
            "/path/to/std::vector.html",
            "/path/to/std::vector.html",
            true,
            true,
        ),
    ]);
}

#[test]
fn sed_cases() {
    check(&[
        ("s/3000/8080/", "3000", true, true),
        ("s/3000/8080/", "port = 3000", true, true),
        ("s/3000/8080/", "no match", false, false),
        // Without flags the search is a substring, even with regex metacharacters.
        ("s/a.c/x/", "abc", false, false),
        ("s/a.c/x/", "a.c", true, true),
        // With flags it is a regex.
        (r"s/\d+/NUM/g", "port = 3000", true, true),
        (r"s/\d+/NUM/g", "port", false, false),
        ("s/hello/world/gi", "HELLO", true, true),
        ("s/hello/world/g", "HELLO", false, false),
        ("s/^b/x/y", "bc", true, true),
        ("s/b/x/y", "abc", false, false),
        (r"s/a\/b/x/g", "a/b", true, true),
        (r"s/a\/b/x/", r"a\/b", true, true),
        // Bad flags or a bad regex: nothing.
        ("s/a/b/q", "a", false, false),
        ("s/(/b/g", "(", false, false),
        ("s/a/b/c/d", "a", false, false),
    ]);
    match Pattern::compile(r"s/\d+/NUM/gi") {
        Pattern::Sed {
            search,
            replace,
            flags,
            regex,
        } => {
            assert_eq!(
                (search.as_str(), replace.as_str(), flags.as_str()),
                (r"\d+", "NUM", "gi")
            );
            assert!(regex.is_some());
        }
        other => panic!("not sed: {other:?}"),
    }
}

#[test]
fn hostile_inputs_do_not_overflow_or_panic() {
    let deep_brackets = format!("$.a{}", "[".repeat(10_000));
    assert!(!hedmatch(&deep_brackets, "{}"));
    let deep_xpath = format!("//a[{}1{}]", "(".repeat(10_000), ")".repeat(10_000));
    assert!(!hedmatch(&deep_xpath, "<a/>"));
    // Just under the length cap: sxd-xpath must handle the longest chain we let through.
    let long_xpath = format!("//a[{}]", vec!["1"; 500].join(" + "));
    assert_eq!(kind(&long_xpath), "xpath");
    assert!(!hedmatch(&long_xpath, "<a/>"));
    let steps = format!("/{}", vec!["a"; 200].join("/"));
    let steps = format!("{steps}[1]");
    assert_eq!(kind(&steps), "xpath");
    let nested_doc = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    assert!(hedmatch(&steps, &nested_doc));
    // Deeper than MAX_XML_DEPTH: refused at once instead of parsed in quadratic time.
    let deep_doc = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    assert!(!hedmatch("//a", &deep_doc));
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(!hedmatch("$..a", &deep_json));
    let deep_regex = format!("/{}a{}/", "(".repeat(10_000), ")".repeat(10_000));
    assert!(!hedmatch(&deep_regex, "a"));
    let huge_glob = "*a".repeat(5_000);
    assert!(!hedmatch(&huge_glob, &"b".repeat(10_000)));
}

#[test]
fn is_pattern_tells_sets_from_single_paths() {
    for p in ["src/*.js", "known://*", "file?.js", "file[12].js", "a]"] {
        assert!(is_pattern(p), "{p}");
    }
    for p in [
        "src/app.js",
        "known://auth_flow",
        "s/a/b.js",
        "/a/",
        "$.a",
        "//x",
        "",
    ] {
        assert!(!is_pattern(p), "{p}");
    }
}

#[test]
fn compiled_patterns_are_shareable_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pattern>();
}

#[test]
fn cache_stays_bounded_and_correct() {
    for i in 0..(CACHE_LIMIT * 2 + 7) {
        let pattern = format!("known://k{i}_*");
        assert!(hedmatch(&pattern, &format!("known://k{i}_x")));
    }
    assert!(CACHE.with(|c| c.borrow().len()) <= CACHE_LIMIT);
    assert!(hedmatch("known://k3_*", "known://k3_y"));
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    path: String,
}

#[derive(QueryableByName)]
struct Flags {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    a: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    b: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    c: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    d: i32,
}

#[test]
fn sql_functions_filter_rows_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = crate::store::db::open(&dir.path().join("t.db"), 0).unwrap();
    diesel::sql_query("CREATE TEMP TABLE t (path TEXT NOT NULL, body TEXT)")
        .execute(&mut conn)
        .unwrap();
    let rows = [
        ("src/app.js", Some("const app = 1;")),
        ("src/config.js", Some("const port = 3000;")),
        ("src/utils.js", Some("// TODO: refactor")),
        ("src/lib/deep.js", Some("const deep = 1;")),
        ("readme.md", Some("# Hello")),
        ("known://auth_flow", Some("OAuth2 PKCE")),
        ("known://auth_secret", Some("hunter2")),
        ("known://db/type", None),
    ];
    for (path, body) in rows {
        diesel::sql_query("INSERT INTO t (path, body) VALUES (?, ?)")
            .bind::<Text, _>(path)
            .bind::<Nullable<Text>, _>(body)
            .execute(&mut conn)
            .unwrap();
    }

    let select = |conn: &mut SqliteConnection, pattern: &str, filter: Option<&str>| {
        diesel::sql_query(
            "SELECT path FROM t WHERE hedmatch(?, path) \
             AND (? IS NULL OR hedsearch(?, body)) ORDER BY path",
        )
        .bind::<Text, _>(pattern)
        .bind::<Nullable<Text>, _>(filter)
        .bind::<Nullable<Text>, _>(filter)
        .load::<Row>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.path)
        .collect::<Vec<_>>()
    };
    assert_eq!(
        select(&mut conn, "src/*.js", None),
        ["src/app.js", "src/config.js", "src/utils.js"]
    );
    assert_eq!(
        select(&mut conn, "src/*.js", Some("TODO")),
        ["src/utils.js"]
    );
    assert_eq!(
        select(&mut conn, "src/*.js", Some("const")),
        ["src/app.js", "src/config.js"]
    );
    assert_eq!(select(&mut conn, "readme.md", None), ["readme.md"]);
    assert_eq!(
        select(&mut conn, "known://*", None),
        [
            "known://auth_flow",
            "known://auth_secret",
            "known://db/type"
        ]
    );
    // NULL bodies never pass a filter, they do not error.
    assert_eq!(
        select(&mut conn, "known://*", Some("*")),
        ["known://auth_flow", "known://auth_secret"]
    );
    assert_eq!(
        select(&mut conn, "/deep|app/", None),
        ["src/app.js", "src/lib/deep.js"]
    );
    // Repeated tests over many rows with a `g` flag stay stable.
    assert_eq!(select(&mut conn, "/s/g", None).len(), 5);

    let flags = diesel::sql_query(
        "SELECT hedmatch('*', NULL) AS a, hedsearch(NULL, 'x') AS b, \
                hedmatch('known://*', 'known://a/b') AS c, hedsearch('auth', 'the auth flow') AS d",
    )
    .get_result::<Flags>(&mut conn)
    .unwrap();
    assert_eq!((flags.a, flags.b, flags.c, flags.d), (0, 0, 1, 1));

    // The typed diesel expressions call the same functions.
    let typed: bool = diesel::select(sql::hedmatch("src/**", "src/a/b.js"))
        .get_result(&mut conn)
        .unwrap();
    assert!(typed);
    let typed: bool = diesel::select(sql::hedsearch("*auth*", None::<String>))
        .get_result(&mut conn)
        .unwrap();
    assert!(!typed);
}

/// Patterns built from the characters every detector and compiler cares about.
fn pattern_strategy() -> impl Strategy<Value = String> {
    let prefixes = prop::sample::select(vec![
        "", "s/", "/", "//", "$.", "$[", "$..", "known://", "!", "./",
    ]);
    (
        prefixes,
        r#"[a-c0-9/\\*?.\[\]{}()!@$:'"=<>|^+\- ,_é]{0,24}"#,
        "[gimsuyq]{0,3}",
    )
        .prop_map(|(prefix, body, flags)| format!("{prefix}{body}/{flags}"))
}

fn subject_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        r"[a-c/.\\*\[\]{}é\n ]{0,24}",
        r#"[{}\[\]":,a-c0-9 ]{0,24}"#,
        r#"[<>/a-c="' ]{0,32}"#,
        Just(r#"<root><a id="1"><b>x</b></a></root>"#.to_owned()),
        Just(r#"{"a":[{"b":1}],"c":null}"#.to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_patterns_and_subjects_never_panic(
        pattern in prop_oneof![pattern_strategy(), any::<String>()],
        subject in prop_oneof![subject_strategy(), any::<String>()],
    ) {
        let compiled = Pattern::compile(&pattern);
        let _ = compiled.kind();
        let whole = compiled.matches_whole(&subject);
        let within = compiled.matches_within(&subject);
        prop_assert_eq!(hedmatch(&pattern, &subject), whole);
        prop_assert_eq!(hedsearch(&pattern, &subject), within);
        let _ = is_pattern(&pattern);
        // Truncated forms exercise the detectors on every prefix.
        for (i, _) in pattern.char_indices() {
            let _ = hedmatch(&pattern[..i], &subject);
        }
    }

    #[test]
    fn literal_and_glob_patterns_match_themselves(pattern in r"[a-c/.*?\[\]]{0,16}") {
        let compiled = Pattern::compile(&pattern);
        if matches!(compiled.kind(), "literal" | "glob") {
            prop_assert!(compiled.matches_whole(&pattern));
        }
    }
}
