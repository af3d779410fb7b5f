//! Case tables per edit format: detection from a `<set>` body, then
//! application to a body.

use super::*;
use proptest::prelude::*;

const FILE: &str = "fn main() {\n    let port = 3000;\n    let host = \"localhost\";\n    println!(\"{host}:{port}\");\n}\n";

fn attrs() -> EditAttrs<'static> {
    EditAttrs::default()
}

/// Detects the edit in `edit_text` and applies it to `body`.
fn edit(body: &str, edit_text: &str, attrs: EditAttrs<'_>) -> Result<Applied, EditError> {
    apply(body, &detect(edit_text, attrs).into_edit(edit_text))
}

#[test]
fn each_format_applies() {
    let new_port = FILE.replace("3000", "8080");
    let table: &[(&str, &str, EditAttrs<'_>, &str)] = &[
        (
            "merge",
            "<<<<<<< SEARCH\n    let port = 3000;\n=======\n    let port = 8080;\n>>>>>>> REPLACE",
            attrs(),
            &new_port,
        ),
        (
            "merge, short markers",
            "<<<< SEARCH\n    let port = 3000;\n====\n    let port = 8080;\n>>>> REPLACE",
            attrs(),
            &new_port,
        ),
        (
            "replace-only",
            "=======\nfn main() {}\n>>>>>>> REPLACE",
            attrs(),
            "fn main() {}",
        ),
        (
            "unified diff",
            "@@ -1,3 +1,3 @@\n fn main() {\n-    let port = 3000;\n+    let port = 8080;\n     let host = \"localhost\";",
            attrs(),
            &new_port,
        ),
        (
            "unified diff, wrong line numbers and counts",
            "--- a/main.rs\n+++ b/main.rs\n@@ -40,9 +40,9 @@\n-    let port = 3000;\n+    let port = 8080;",
            attrs(),
            &new_port,
        ),
        (
            "old/new text",
            "<old_text>let port = 3000;</old_text>\n<new_text>let port = 8080;</new_text>",
            attrs(),
            &new_port,
        ),
        (
            "JSON",
            r#"{"search": "3000", "replace": "8080"}"#,
            attrs(),
            &new_port,
        ),
        (
            "JSON-ish",
            r#"{search="3000", replace="8080"}"#,
            attrs(),
            &new_port,
        ),
        ("sed", "s/30+/8080/", attrs(), &new_port),
        ("sed, pipe delimiter", "s|= 3000|= 8080|g", attrs(), &new_port),
        (
            "sed chain",
            "s/3000/8080/; s/localhost/0.0.0.0/",
            attrs(),
            &new_port.replace("localhost", "0.0.0.0"),
        ),
        (
            "search/replace attributes",
            "",
            EditAttrs {
                search: Some("3000"),
                replace: Some("8080"),
                body: None,
            },
            &new_port,
        ),
        (
            "search attribute, text as replacement",
            "8080",
            EditAttrs {
                search: Some("3000"),
                replace: None,
                body: None,
            },
            &new_port,
        ),
        (
            "body attribute",
            "8080",
            EditAttrs {
                search: None,
                replace: None,
                body: Some("3000"),
            },
            &new_port,
        ),
        ("full replacement", "\nnew text\n", attrs(), "new text"),
    ];
    for (name, text, attrs, want) in table {
        let got = edit(FILE, text, *attrs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.body, *want, "{name}");
    }
}

#[test]
fn detection_order_and_shapes() {
    let d = |t: &str| detect(t, attrs());
    assert!(matches!(
        d("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE"),
        Detected::Blocks {
            format: Format::Merge,
            ..
        }
    ));
    assert!(matches!(
        d("@@ -1 +1 @@\n-a\n+b"),
        Detected::Blocks {
            format: Format::UnifiedDiff,
            ..
        }
    ));
    assert!(matches!(d(r#"{"search":"a"}"#), Detected::Json(_)));
    // JSON without a search key is plain text.
    assert_eq!(
        d(r#"{"replace":"a","note":"search"}"#),
        Detected::Full(r#"{"replace":"a","note":"search"}"#.into())
    );
    // Prose starting with s and punctuation stays a write.
    assert_eq!(d("s.t. it holds."), Detected::Full("s.t. it holds.".into()));
    assert_eq!(d("s: the letter"), Detected::Full("s: the letter".into()));
    // A SEARCH marker that never closes falls through to a write.
    assert!(matches!(d("<<<<<<< SEARCH\nonly"), Detected::Full(_)));
    let sed = parse_sed(r"s/a\/b/c/gi s/d/e/").unwrap();
    assert_eq!(sed.len(), 2);
    assert_eq!(
        (
            sed[0].search.as_str(),
            sed[0].replace.as_str(),
            sed[0].flags.as_str()
        ),
        ("a/b", "c", "gi")
    );
    assert_eq!(parse_sed("s/only-one"), None);
}

#[test]
fn distinct_errors() {
    let no_match = edit(
        FILE,
        "<<<<<<< SEARCH\nlet port = 9999;\n=======\nx\n>>>>>>> REPLACE",
        attrs(),
    );
    assert!(
        matches!(no_match, Err(EditError::NoMatch { .. })),
        "{no_match:?}"
    );

    // Whitespace-tolerant matching that finds two places refuses to guess.
    let body = "a\n  x = 1\nb\n    x = 1\n";
    let ambiguous = replace(body, "x = 1 \n", "x = 2");
    assert!(
        matches!(ambiguous, Err(EditError::Ambiguous { count: 2, .. })),
        "{ambiguous:?}"
    );

    let diff = apply(
        FILE,
        &Edit::Diff {
            patch: "@@ nothing @@\nprose".into(),
            blocks: vec![],
        },
    );
    assert!(
        matches!(
            diff,
            Err(EditError::Malformed {
                format: Format::UnifiedDiff,
                ..
            })
        ),
        "{diff:?}"
    );

    let empty = apply(
        FILE,
        &Edit::Blocks {
            format: Format::Merge,
            blocks: vec![],
        },
    );
    assert!(matches!(empty, Err(EditError::Malformed { .. })));

    // Messages say what went wrong and what to do.
    let msg = EditError::Ambiguous {
        search: "x".into(),
        count: 3,
    }
    .to_string();
    assert!(msg.contains("3 places"), "{msg}");
}

#[test]
fn literal_insertion_and_all_occurrences() {
    // `$&` and friends are not expanded.
    let got = replace("a-b-a", "a", "$&$$").unwrap();
    assert_eq!(got.body, "$&$$-b-$&$$");
    let sed = apply("x1 x2", &Edit::Sed(parse_sed("s/x(\\d)/[$1]/").unwrap())).unwrap();
    assert_eq!(sed.body, "[$1] [$1]");
    // Escaped punctuation in a sed replacement is unescaped.
    let sed = apply("a", &Edit::Sed(parse_sed(r"s/a/\[b\]/").unwrap())).unwrap();
    assert_eq!(sed.body, "[b]");
}

#[test]
fn empty_search_appends() {
    assert_eq!(replace("a\n", "", "b").unwrap().body, "a\nb\n");
    assert_eq!(replace("a", "  \n", "b").unwrap().body, "a\nb\n");
    assert_eq!(replace("", "", "b").unwrap().body, "b\n");
    // A diff hunk of only additions inserts at its line.
    let d = edit("one\ntwo\n", "@@ -1,0 +2,1 @@\n+inserted", attrs()).unwrap();
    assert_eq!(d.body, "one\ninserted\ntwo\n");
}

#[test]
fn whitespace_tolerance_and_indent_healing() {
    let body = "def f():\n    if x:\n        return 1\n    return 2\n";
    // Search written without indentation and with a blank line the body lacks.
    let got = replace(body, "if x:\n\n    return 1", "if x:\n    return 10").unwrap();
    assert_eq!(
        got.body,
        "def f():\n    if x:\n        return 10\n    return 2\n"
    );
    assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
    // Regex-escaped punctuation in a literal search is forgiven.
    let got = replace("call(a[0])\n", r"call\(a\[0\]\)", "call(b)").unwrap();
    assert_eq!(got.body, "call(b)\n");
    // CRLF bodies still match line-wise.
    let got = replace("a\r\n  b\r\nc", "b\nc", "B\nC").unwrap();
    // Lines are re-joined with `\n` and re-indented, as upstream does.
    assert_eq!(got.body, "a\n  B\n  C");
}

#[test]
fn sed_flags_and_fallbacks() {
    let got = apply("Foo foo", &Edit::Sed(parse_sed("s/foo/bar/i").unwrap())).unwrap();
    assert_eq!(got.body, "bar bar");
    // An anchor that does not match as a regex falls back to the literal text.
    let got = apply(
        "7 - a =$ here",
        &Edit::Sed(parse_sed("s/7 - a =$/7 - a = 5/").unwrap()),
    )
    .unwrap();
    assert_eq!(got.body, "7 - a = 5 here");
    // A pattern Rust's regex rejects (look-behind) is matched literally.
    let got = apply("x(?<=y)", &Edit::Sed(parse_sed("s/(?<=y)/z/").unwrap())).unwrap();
    assert_eq!(got.body, "xz");
}

#[test]
fn blocks_stop_at_first_error() {
    let e = Edit::Blocks {
        format: Format::Merge,
        blocks: vec![
            Block::new("3000", "8080"),
            Block::new("nowhere", "x"),
            Block::new("localhost", "h"),
        ],
    };
    assert!(matches!(apply(FILE, &e), Err(EditError::NoMatch { .. })));
}

#[test]
fn growth_is_bounded() {
    // Each command doubles the text: 40 of them would need a terabyte.
    let chain = "s/a/aa/g ".repeat(40);
    let got = apply("a", &Edit::Sed(parse_sed(&chain).unwrap()));
    assert!(matches!(got, Err(EditError::TooLarge { .. })), "{got:?}");
    // An empty match everywhere with a long replacement.
    let body = "x".repeat(100_000);
    let long = "y".repeat(100);
    let got = apply(
        &body,
        &Edit::Sed(vec![SedCommand {
            search: "".into(),
            replace: long,
            flags: String::new(),
        }]),
    );
    assert!(matches!(got, Err(EditError::TooLarge { .. })), "{got:?}");
}

#[test]
fn patch_attribute_diff() {
    let d = unified_diff("src/a.txt", "one\ntwo\n", "one\nTWO\n");
    assert!(
        d.starts_with("--- src/a.txt\told\n+++ src/a.txt\tnew\n"),
        "{d}"
    );
    assert!(d.contains("-two\n+TWO\n"), "{d}");
}

#[test]
fn the_text_before_an_edit_comes_back_from_its_patch() {
    let old = "fn a() {}\nfn b() {}\nfn c() {}\n";
    let new = "fn a() {}\nfn b() { todo!() }\nfn c() {}\nfn d() {}\n";
    let patch = unified_diff("src/lib.rs", old, new);
    assert_eq!(text_before_patch(new, &patch).as_deref(), Some(old));
    // A new file: nothing before it.
    let created = unified_diff("src/new.rs", "", "x\n");
    assert_eq!(text_before_patch("x\n", &created).as_deref(), Some(""));
    // Text the patch did not produce, or no patch at all: unknown.
    assert_eq!(text_before_patch("something else\n", &patch), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn edits_never_panic(body in any::<String>(), text in any::<String>(), search in proptest::option::of(any::<String>())) {
        let attrs = EditAttrs { search: search.as_deref(), replace: None, body: None };
        let _ = edit(&body, &text, attrs);
    }

    /// A SEARCH block copied from the body applies and yields the body with
    /// that part swapped.
    #[test]
    fn exact_block_round_trips(lines in prop::collection::vec("[a-z ]{1,12}", 1..8), pick in any::<prop::sample::Index>(), new in "[A-Z]{1,8}") {
        let body = lines.join("\n");
        let i = pick.index(lines.len());
        let search = lines[i].clone();
        let got = replace(&body, &search, &new);
        prop_assert!(got.is_ok());
        prop_assert_eq!(got.unwrap().body, body.replace(&search, &new));
    }
}

/// Which attributes an edit form in [`every_form`] carries.
#[derive(Clone, Copy)]
enum Carry {
    Nothing,
    /// `search=` and `replace=` (form 7).
    SearchReplace,
    /// `body=` holding the old text, the tag text the new (form 8).
    OldInBody,
}

/// A `<set>` text in each edit form, built from `search` and `replace`.
fn every_form(search: &str, replace: &str) -> Vec<(String, Carry)> {
    // Enough to pass the growth limit at once on any body the test builds.
    let huge = format!("{replace}Z").repeat(5000 / (replace.len() + 1) + 1);
    vec![
        (
            format!("<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE"),
            Carry::Nothing,
        ),
        (
            format!("=======\n{replace}\n>>>>>>> REPLACE"),
            Carry::Nothing,
        ),
        (
            format!("@@ -1,2 +1,2 @@\n-{search}\n+{replace}\n ctx"),
            Carry::Nothing,
        ),
        (
            format!("<old_text>{search}</old_text>\n<new_text>{replace}</new_text>"),
            Carry::Nothing,
        ),
        (
            serde_json::json!({"search": search, "replace": replace}).to_string(),
            Carry::Nothing,
        ),
        (format!("s/{search}/{replace}/g"), Carry::Nothing),
        (
            format!("s|{search}|{replace}|g s|{replace}|{search}{search}|"),
            Carry::Nothing,
        ),
        // An amplifier: an empty-matching regex puts the replacement at
        // every position, chained.
        (format!("s/a*/{huge}/g ").repeat(3), Carry::Nothing),
        (String::new(), Carry::SearchReplace),
        (replace.to_string(), Carry::OldInBody),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Whatever the form and content, applying an edit never panics, and
    /// what it yields is bounded by the sizes of the body and the edit.
    #[test]
    fn no_edit_form_panics_or_grows_without_bound(
        head in "[a-z \n]{0,40}",
        search in prop_oneof!["[a-z]{1,6}", "[a-z \n]{0,12}", any::<String>()],
        replace in prop_oneof!["[a-z]{0,6}", "[A-Z\n]{0,200}", any::<String>()],
        tail in any::<String>(),
        rounds in 1usize..4,
    ) {
        let body = format!("{head}{search}{tail}{search}");
        for (text, carry) in every_form(&search, &replace) {
            let attrs = match carry {
                Carry::Nothing => EditAttrs::default(),
                Carry::SearchReplace => EditAttrs { search: Some(&search), replace: Some(&replace), body: None },
                Carry::OldInBody => EditAttrs { search: None, replace: None, body: Some(&search) },
            };
            let mut current = body.clone();
            // The same edit again and again, as a model repeating itself would.
            for _ in 0..rounds {
                let bound = size_limit(current.len() + text.len());
                match edit(&current, &text, attrs) {
                    Ok(applied) => {
                        prop_assert!(applied.body.len() <= bound, "{text:?} grew {} → {}", current.len(), applied.body.len());
                        current = applied.body;
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
