//! Projections and the merge attribute of `<set>`.

use super::*;

fn row<'a>(path: &'a str, body: &'a str, attributes: &'a Map<String, Value>) -> ProjectionRow<'a> {
    ProjectionRow {
        path,
        body,
        attributes,
    }
}

#[test]
fn projections() {
    let attrs = json!({
        "path": "known://plan",
        "beforeTokens": 3,
        "afterTokens": 5,
        "merge": merge_block("old", "new"),
    });
    let Value::Object(attrs) = attrs else {
        unreachable!()
    };
    assert_eq!(
        Set.visible(&row("log://turn_1/set/x", "new", &attrs)),
        "# set known://plan 3→5 tokens\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE"
    );
    let failed = json!({"path": "known://plan", "error": "SEARCH text not found", "merge": "m"});
    let Value::Object(failed) = failed else {
        unreachable!()
    };
    assert_eq!(
        Set.visible(&row("log://turn_1/set/x", "body", &failed)),
        "# set known://plan\nSEARCH text not found"
    );
    let none = Map::new();
    assert_eq!(
        Set.visible(&row("log://turn_1/set/x", "b", &none)),
        "# set log://turn_1/set/x"
    );
    let block = merge_block("a", "b");
    assert_eq!(Set.summarized(&row("p", &block, &none)), block);
    let long = "word ".repeat(30);
    let cut = Set.summarized(&row("p", &long, &none));
    assert_eq!(cut.chars().count(), 80);
    assert!(cut.ends_with("..."));
    assert_eq!(Set.summarized(&row("p", "  a \n b ", &none)), "a b");
}

#[test]
fn merge_attribute_per_form() {
    assert_eq!(
        merge_block("", "x"),
        "<<<<<<< SEARCH\n=======\nx\n>>>>>>> REPLACE"
    );
    let blocks = Edit::Blocks {
        format: hedberg::Format::Merge,
        blocks: vec![Block::new("a", "b"), Block::new("c", "d")],
    };
    assert_eq!(
        edit_merge(&blocks).as_deref(),
        Some("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n<<<<<<< SEARCH\nc\n=======\nd\n>>>>>>> REPLACE")
    );
    let replace_only = Edit::Blocks {
        format: hedberg::Format::ReplaceOnly,
        blocks: vec![Block {
            search: None,
            replace: "all".into(),
        }],
    };
    assert_eq!(edit_merge(&replace_only), None);
    assert_eq!(edit_merge(&Edit::Full("x".into())), None);
}

/// What the preview must equal: the whole collapse, then the cut.
fn preview_by_collapsing_everything(body: &str) -> String {
    let collapsed = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= 80 {
        collapsed
    } else {
        format!("{}...", collapsed.chars().take(77).collect::<String>())
    }
}

#[test]
fn the_preview_matches_collapsing_the_whole_body() {
    let long_word = "x".repeat(200);
    let cases = [
        String::new(),
        "   ".to_string(),
        "short body".to_string(),
        "  leading\n\tand   trailing  ".to_string(),
        "a".repeat(80),
        "a".repeat(81),
        format!("{} b", "a".repeat(78)),
        format!("{} b", "a".repeat(79)),
        format!("{} {}", "a".repeat(76), "b".repeat(10)),
        long_word,
        "é😀日 ".repeat(40),
        "word ".repeat(100),
    ];
    for body in &cases {
        assert_eq!(
            super::collapsed_preview(body),
            preview_by_collapsing_everything(body),
            "{body:?}"
        );
    }
}
