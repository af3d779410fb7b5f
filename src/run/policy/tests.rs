use super::*;

fn cmd(xml: &str) -> Command {
    let parsed = crate::parse::parse(xml, 99);
    assert_eq!(parsed.commands.len(), 1, "{xml}: {parsed:?}");
    parsed.commands[0].clone()
}

fn ask() -> ToolSet {
    ToolSet::new(Mode::Ask, true)
}

fn act() -> ToolSet {
    ToolSet::new(Mode::Act, true)
}

fn no_proposals(mode: Mode) -> ToolSet {
    ToolSet {
        no_proposals: true,
        ..ToolSet::new(mode, true)
    }
}

fn no_interaction(mode: Mode) -> ToolSet {
    ToolSet {
        no_interaction: true,
        ..ToolSet::new(mode, true)
    }
}

/// Each row: a command and the error ask mode answers it with (None: allowed).
#[test]
fn ask_mode_refuses_every_file_change_and_sh() {
    let table: &[(&str, Option<&str>)] = &[
        // Upstream's four rules, upstream's words.
        ("<sh>ls -la</sh>", Some("Rejected <sh> in ask mode")),
        ("<sh command=\"make test\"/>", Some("Rejected <sh> in ask mode")),
        ("<sh>cd src\nls</sh>", Some("Rejected <sh> in ask mode")),
        (
            "<set path=\"src/app.js\">new text</set>",
            Some("Rejected file edit to src/app.js in ask mode"),
        ),
        (
            "<rm path=\"src/app.js\"/>",
            Some("Rejected file rm of src/app.js in ask mode"),
        ),
        (
            "<rm>notes.md</rm>",
            Some("Rejected file rm of notes.md in ask mode"),
        ),
        (
            "<mv path=\"known://a\">out.md</mv>",
            Some("Rejected mv to file out.md in ask mode"),
        ),
        (
            "<cp path=\"known://a\" to=\"out.md\"/>",
            Some("Rejected cp to file out.md in ask mode"),
        ),
        (
            "<cp path=\"a.md\">b.md</cp>",
            Some("Rejected cp to file b.md in ask mode"),
        ),
        // The defect fix: every edit form changes the file too.
        (
            "<set path=\"a.js\">\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n</set>",
            Some("Rejected file edit to a.js in ask mode"),
        ),
        (
            "<set path=\"a.js\">s/old/new/g</set>",
            Some("Rejected file edit to a.js in ask mode"),
        ),
        (
            "<set path=\"a.js\" search=\"old\" replace=\"new\"/>",
            Some("Rejected file edit to a.js in ask mode"),
        ),
        (
            "<set path=\"a.js\" body=\"old\">new</set>",
            Some("Rejected file edit to a.js in ask mode"),
        ),
        (
            "<set path=\"a.json\">{\"search\":\"old\",\"replace\":\"new\"}</set>",
            Some("Rejected file edit to a.json in ask mode"),
        ),
        (
            "<set path=\"a.js\">--- a/a.js\n+++ b/a.js\n@@ -1 +1 @@\n-old\n+new\n</set>",
            Some("Rejected file edit to a.js in ask mode"),
        ),
        // An empty write blanks the file.
        (
            "<set path=\"a.js\"/>",
            Some("Rejected file edit to a.js in ask mode"),
        ),
        // Bare globs count as files, whatever they might also match.
        (
            "<set path=\"src/*.js\">x</set>",
            Some("Rejected file edit to src/*.js in ask mode"),
        ),
        ("<rm path=\"*\"/>", Some("Rejected file rm of * in ask mode")),
        (
            "<set path=\"*.md\" filter=\"TODO\">done</set>",
            Some("Rejected file edit to *.md in ask mode"),
        ),
        // Beyond upstream: moving a file away removes it.
        (
            "<mv path=\"a.md\">known://a</mv>",
            Some(
                "Rejected mv of file a.md in ask mode: moving it would remove the file. Use <cp> to copy it to a known:// entry instead.",
            ),
        ),
        // Allowed: no file changes.
        ("<env>printenv</env>", None),
        ("<ask_user question=\"Which?\">a; b</ask_user>", None),
        ("<set path=\"known://plan\">steps</set>", None),
        (
            "<set path=\"known://plan\">\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n</set>",
            None,
        ),
        ("<set path=\"a.js\" visibility=\"archived\"/>", None),
        ("<set path=\"src/*\" visibility=\"summarized\" summary=\"code\"/>", None),
        // An invalid visibility is the tool's own error, not a file change.
        ("<set path=\"a.js\" visibility=\"bogus\"/>", None),
        ("<set path=\"a.js\" preview>text</set>", None),
        ("<set>text</set>", None),
        ("<rm path=\"known://a\"/>", None),
        ("<rm path=\"a.md\" preview/>", None),
        ("<rm/>", None),
        ("<cp path=\"a.md\">known://copy</cp>", None),
        ("<cp path=\"known://a\">known://b</cp>", None),
        ("<mv path=\"known://a\">known://b</mv>", None),
        ("<mv path=\"known://a\" preview>b.md</mv>", None),
        // No destination is "not a file" (upstream crashed the loop here).
        ("<mv path=\"a.md\" visibility=\"archived\"/>", None),
        ("<mv path=\"known://a\"/>", None),
        ("<cp path=\"a.md\"/>", None),
        ("<get path=\"a.md\"/>", None),
        ("<update status=\"200\">done</update>", None),
        ("<think>hmm</think>", None),
    ];
    for (xml, expected) in table {
        let got = check(&ask(), &cmd(xml));
        assert_eq!(got.as_ref().map(|r| r.message.as_str()), *expected, "{xml}");
        if let Some(r) = got {
            assert_eq!(r.rule, Rule::AskMode, "{xml}");
        }
    }
}

#[test]
fn act_mode_without_flags_refuses_nothing() {
    for xml in [
        "<sh>ls</sh>",
        "<env>env</env>",
        "<set path=\"a.js\">x</set>",
        "<set path=\"a.js\">s/a/b/</set>",
        "<rm path=\"a.js\"/>",
        "<mv path=\"a.md\">b.md</mv>",
        "<cp path=\"a.md\">known://a</cp>",
        "<ask_user question=\"Q\">a, b</ask_user>",
    ] {
        assert_eq!(check(&act(), &cmd(xml)), None, "{xml}");
    }
}

/// Everything that would wait for a client is refused under noProposals.
#[test]
fn no_proposals_refuses_whatever_would_become_a_proposal() {
    let tail = "this loop runs without proposals (noProposals), so nothing can wait for a client's approval.";
    let table: &[(&str, Option<&str>)] = &[
        ("<sh>ls</sh>", Some("Rejected <sh>: ")),
        ("<env>printenv</env>", Some("Rejected <env>: ")),
        (
            "<ask_user question=\"Q\">a; b</ask_user>",
            Some("Rejected <ask_user>: "),
        ),
        (
            "<set path=\"a.js\">x</set>",
            Some("Rejected file edit to a.js: "),
        ),
        (
            "<set path=\"a.js\" search=\"x\" replace=\"y\"/>",
            Some("Rejected file edit to a.js: "),
        ),
        ("<rm>a.js</rm>", Some("Rejected file rm of a.js: ")),
        (
            "<mv path=\"known://a\">a.md</mv>",
            Some("Rejected mv to file a.md: "),
        ),
        (
            "<cp path=\"a.md\">b.md</cp>",
            Some("Rejected cp to file b.md: "),
        ),
        (
            "<mv path=\"a.md\">known://a</mv>",
            Some("Rejected mv of file a.md: "),
        ),
        (
            "<cp path=\"a.md\">known://a</cp>",
            Some("Rejected cp of file a.md: "),
        ),
        ("<set path=\"known://a\">x</set>", None),
        ("<rm path=\"known://a\"/>", None),
        ("<cp path=\"known://a\">known://b</cp>", None),
        ("<mv path=\"a.md\" visibility=\"archived\"/>", None),
        ("<set path=\"a.md\" visibility=\"archived\"/>", None),
        ("<rm path=\"a.md\" preview/>", None),
        ("<get path=\"*\"/>", None),
    ];
    for (xml, expected) in table {
        let got = check(&no_proposals(Mode::Act), &cmd(xml));
        match (expected, got) {
            (None, got) => assert_eq!(got, None, "{xml}"),
            (Some(head), Some(r)) => {
                assert_eq!(r.rule, Rule::NoProposals, "{xml}");
                assert!(
                    r.message.starts_with(head) && r.message.contains(tail),
                    "{xml}: {}",
                    r.message
                );
                // Each says what to do instead.
                assert!(r.message.ends_with("instead."), "{xml}: {}", r.message);
            }
            (Some(_), None) => panic!("{xml}: not refused"),
        }
    }
}

#[test]
fn ask_mode_wording_wins_over_no_proposals() {
    let offer = no_proposals(Mode::Ask);
    let r = check(&offer, &cmd("<sh>ls</sh>")).unwrap();
    assert_eq!(
        (r.rule, r.message.as_str()),
        (Rule::AskMode, "Rejected <sh> in ask mode")
    );
    // What ask mode allows, noProposals still refuses.
    let r = check(&offer, &cmd("<env>env</env>")).unwrap();
    assert_eq!(r.rule, Rule::NoProposals);
    let r = check(&offer, &cmd("<cp path=\"a.md\">known://a</cp>")).unwrap();
    assert_eq!(r.rule, Rule::NoProposals);
}

#[test]
fn no_interaction_refuses_only_ask_user() {
    for mode in [Mode::Ask, Mode::Act] {
        let offer = no_interaction(mode);
        let r = check(&offer, &cmd("<ask_user question=\"Q\">a; b</ask_user>")).unwrap();
        assert_eq!(r.rule, Rule::NoInteraction);
        assert_eq!(
            r.message,
            "Rejected <ask_user>: this loop runs without interaction (noInteraction), so no one would answer. Decide for yourself and state what you assumed in your <update> instead."
        );
        assert_eq!(check(&offer, &cmd("<env>env</env>")), None);
    }
    assert_eq!(
        check(&no_interaction(Mode::Act), &cmd("<set path=\"a\">x</set>")),
        None
    );
    // Both flags: the more specific one names the reason.
    let both = ToolSet {
        no_interaction: true,
        no_proposals: true,
        ..act()
    };
    let r = check(&both, &cmd("<ask_user question=\"Q\"/>")).unwrap();
    assert_eq!(r.rule, Rule::NoInteraction);
}

#[test]
fn a_path_refused_as_leaked_reasoning_keeps_its_invalid_record() {
    let long = format!("<set path=\"{}\">x</set>", "a".repeat(600));
    let parsed = crate::parse::parse(&long, 99);
    // The parser already drops it; a command built by hand is still left
    // to RECORD's invalid-path rule.
    assert!(parsed.commands.is_empty());
    let by_hand = Command {
        name: "rm".into(),
        attrs: vec![("path".into(), "a\nb".into())],
        body: String::new(),
    };
    assert_eq!(check(&ask(), &by_hand), None);
}

#[test]
fn screen_keeps_order_and_pairs_each_refusal() {
    let parsed = crate::parse::parse(
        "<env>printenv</env><sh>ls</sh><set path=\"known://n\">x</set><rm>a.md</rm><update status=\"200\">ok</update>",
        99,
    );
    let (kept, refused) = screen(&ask(), &parsed.commands);
    let names: Vec<&str> = kept.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["env", "set", "update"]);
    let refused: Vec<(&str, &str)> = refused
        .iter()
        .map(|(c, r)| (c.name.as_str(), r.message.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            ("sh", "Rejected <sh> in ask mode"),
            ("rm", "Rejected file rm of a.md in ask mode")
        ]
    );
}
