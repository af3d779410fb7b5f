//! Case tables per pipeline stage. Expected values are `rummy parse`
//! output; where no deviation applies they equal upstream 2.0.0's output
//! for the same reply (checked against it when the tables were written).

use super::*;
use proptest::prelude::*;
use serde_json::Value;

/// Runs a table: each reply must parse to exactly the expected JSON.
fn check(table: &[(&str, &str, &str)]) {
    for (name, input, expected) in table {
        let want: Value = serde_json::from_str(expected).unwrap();
        let got = parse(input, 99).to_json();
        assert_eq!(got, want, "case {name}: {input:?}");
    }
}

#[test]
fn foreign() {
    check(&[
        (
            "fence_tool_code",
            r#"```tool_code
<get path="src/a.js"/>
```"#,
            r#"{"commands": [{"name": "get", "path": "src/a.js"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "fence_xml_narration",
            r#"Let me look.
```xml
<get>src/a.js</get>
```
Then decide."#,
            r#"{"commands": [{"name": "get", "path": "src/a.js"}], "warnings": [], "unparsed": "Let me look.\n\nThen decide."}"#,
        ),
        (
            "qwen_call",
            r#"<|tool_call>call:search{query:"Mass Effect release"}<tool_call|>
<update>Searching.</update>"#,
            r#"{"commands": [{"name": "search", "path": "Mass Effect release", "results": null}, {"name": "update", "body": "Searching.", "status": 102}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "qwen_namespaced_chat_quotes",
            r#"<|tool_call>call:rummy.nvim/get{path:<|"|>src/app.js<|"|>}<|tool_call>"#,
            r#"{"commands": [{"name": "get", "path": "src/app.js"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "qwen_unquoted",
            r#"<|tool_call>call:sh{command:ls -la}<tool_call|>"#,
            r#"{"commands": [{"name": "sh", "command": "ls -la"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "qwen_unknown_tool",
            r#"<|tool_call>call:fakeTool{arg:"v"}<tool_call|>
<update status="200">Done.</update>"#,
            r#"{"commands": [{"name": "update", "status": 200, "body": "Done."}], "warnings": ["Unknown command 'fakeTool' in a native tool-call format. Use the XML commands listed above."], "unparsed": ""}"#,
        ),
        (
            "qwen_no_argument",
            r#"<|tool_call>call:get{}<tool_call|>"#,
            r#"{"commands": [], "warnings": ["Could not extract an argument from the native tool call to 'get'. Use the XML command instead, with the value as the tag's text."], "unparsed": ""}"#,
        ),
        (
            "native_leftover",
            r#"<|tool_call>get path=x</get> <update>u</update>"#,
            r#"{"commands": [{"name": "update", "body": "u", "status": 102}], "warnings": ["Native tool call format not supported. Use the XML commands listed above (for example a get tag with a path attribute, or a set tag with a path and a body)."], "unparsed": ""}"#,
        ),
        (
            "openai_json",
            r#"{"name":"search","arguments":{"query":"test query"}}
<update>Searching.</update>"#,
            r#"{"commands": [{"name": "search", "path": "test query", "results": null}, {"name": "update", "body": "Searching.", "status": 102}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "openai_not_a_tool",
            r#"{"name":"weather","arguments":{"city":"Paris"}}"#,
            r#"{"commands": [], "warnings": [], "unparsed": "{\"name\":\"weather\",\"arguments\":{\"city\":\"Paris\"}}"}"#,
        ),
        (
            "anthropic_tool_use",
            r#"<tool_use>
<name>get</name>
<input>{"path":"src/b.js"}</input>
</tool_use>"#,
            r#"{"commands": [{"name": "get", "path": "src/b.js"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "mistral",
            r#"[TOOL_CALLS] [{"name":"sh","arguments":{"command":"npm test"}}]"#,
            r#"{"commands": [{"name": "sh", "command": "npm test"}], "warnings": [], "unparsed": "[TOOL_CALLS] []"}"#,
        ),
        (
            "harmony_channels",
            r#"<|channel>thought
<channel|>I will read it.<|message|><get path="a.md"/><|end|>"#,
            r#"{"commands": [{"name": "get", "path": "a.md"}], "warnings": [], "unparsed": "thought\nI will read it.<|message|><|end|>"}"#,
        ),
        (
            "fenced_block_neutralized",
            r#"Example:
```
<sh>rm -rf /</sh>
```
<update>shown</update>"#,
            r#"{"commands": [{"name": "update", "body": "shown", "status": 102}], "warnings": [], "unparsed": "Example:\n```\n<sh>rm -rf /</sh>\n```"}"#,
        ),
    ]);
}

#[test]
fn code_spans() {
    check(&[
        (
            "code_span_quoted_tool",
            r#"Required: promote entries with `<get/>` to verify.
<update status="200">done</update>"#,
            r#"{"commands": [{"name": "update", "status": 200, "body": "done"}], "warnings": [], "unparsed": "Required: promote entries with `<get/>` to verify."}"#,
        ),
        (
            "code_span_inside_body",
            r#"<set path="known://tip">Use `<get path="x"/>` to read.</set>"#,
            r#"{"commands": [{"name": "set", "path": "known://tip", "body": "Use `<get path=\"x\"/>` to read."}], "warnings": [], "unparsed": ""}"#,
        ),
    ]);
}

#[test]
fn mismatched_closes() {
    check(&[
        (
            "mismatch_corrected",
            r#"<set path="known://plan">- [x] find</update>
<get path="a"/>"#,
            r#"{"commands": [{"name": "set", "path": "known://plan", "body": "- [x] find"}, {"name": "get", "path": "a"}], "warnings": ["Mismatched </update> closing <set> — corrected to </set>"], "unparsed": ""}"#,
        ),
        (
            "mismatch_nested_untouched",
            r#"<set path="known://x">see <get>a</sh> b</set>"#,
            r#"{"commands": [{"name": "set", "path": "known://x", "body": "see <get>a</sh> b"}], "warnings": [], "unparsed": ""}"#,
        ),
    ]);
}

#[test]
fn attribute_quotes() {
    check(&[(
        "attr_quote_repaired",
        r#"<get path="src/app.js</get>
<update>next</update>"#,
        r#"{"commands": [{"name": "get", "path": "src/app.js"}, {"name": "update", "body": "next", "status": 102}], "warnings": ["Repaired 1 malformed attribute(s) — close all attribute values with a quote."], "unparsed": ""}"#,
    )]);
}

#[test]
fn tokenizer() {
    check(&[
        (
            "opaque_body_nested_tools",
            r#"<set path="known://plan" summary="plan,steps">checklist:
- use <get path="data.txt"/> to read
- use <set> for writes
</set>"#,
            r#"{"commands": [{"name": "set", "path": "known://plan", "summary": "plan,steps", "body": "checklist:\n- use <get path=\"data.txt\"/> to read\n- use <set> for writes\n</set>"}], "warnings": ["Unclosed <set> tag — content captured anyway"], "unparsed": ""}"#,
        ),
        (
            "verbatim_entities_and_void",
            r#"<set path="page.html"><p>Tom &amp; Jerry<br/></p>&lt;3</set>"#,
            r#"{"commands": [{"name": "set", "path": "page.html", "body": "<p>Tom &amp; Jerry<br/></p>&lt;3"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_with_search_replace_and_xml",
            r#"<set path="src/page.html">
<<<<<<< SEARCH
<div class="old">x</div>
=======
<div class="new">x &amp; y</div>
>>>>>>> REPLACE
</set>"#,
            r#"{"commands": [{"name": "set", "path": "src/page.html", "blocks": [{"search": "<div class=\"old\">x</div>", "replace": "<div class=\"new\">x &amp; y</div>"}]}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "empty_body_recovered",
            r#"<rm path="unknown://foo"></unknown>
<update>Starting.</update>
<search>Mitch Hedberg</search>"#,
            r#"{"commands": [{"name": "rm", "path": "unknown://foo"}, {"name": "update", "body": "Starting.", "status": 102}, {"name": "search", "path": "Mitch Hedberg", "results": null}], "warnings": ["Unclosed <rm> before <update> — recovered"], "unparsed": ""}"#,
        ),
        (
            "unclosed_at_end",
            r#"<update status="200">The answer is 42."#,
            r#"{"commands": [{"name": "update", "status": 200, "body": "The answer is 42."}], "warnings": ["Unclosed <update> tag — content captured anyway"], "unparsed": ""}"#,
        ),
        (
            "unclosed_cut_close",
            r#"<update>done</upd"#,
            r#"{"commands": [{"name": "update", "body": "done", "status": 102}], "warnings": ["Unclosed <update> tag — content captured anyway"], "unparsed": ""}"#,
        ),
        (
            "self_closing_and_case",
            r#"<GET PATH="src/A.js"/><Get path="b" preview/>"#,
            r#"{"commands": [{"name": "get", "path": "src/A.js"}, {"name": "get", "path": "b", "preview": ""}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "narration_several_tools",
            r#"I'll check the config first.
<get path="src/config.js"/>
Then note the port.
<set path="known://port">3000</set>
<update status="102">Reading config.</update>
That's all."#,
            r#"{"commands": [{"name": "get", "path": "src/config.js"}, {"name": "set", "path": "known://port", "body": "3000"}, {"name": "update", "status": 102, "body": "Reading config."}], "warnings": [], "unparsed": "I'll check the config first.\n\nThen note the port.\n\n\nThat's all."}"#,
        ),
        (
            "html_outer_close_ends_tool",
            r#"<div><set path="known://x">abc</div> more <get>y</get>"#,
            r#"{"commands": [{"name": "set", "path": "known://x", "body": "abc"}, {"name": "get", "path": "y"}], "warnings": [], "unparsed": "more"}"#,
        ),
        (
            "script_raw_text",
            r#"<set path="x.html"><script>if (a<b) { go(); }</script></set>"#,
            r#"{"commands": [{"name": "set", "path": "x.html", "body": "<script>if (a<b) { go(); }</script>"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "less_than_in_prose",
            r#"x < 3 and y > 2 <get>a</get>"#,
            r#"{"commands": [{"name": "get", "path": "a"}], "warnings": [], "unparsed": "x < 3 and y > 2"}"#,
        ),
        (
            "unknown_tags_vanish",
            r#"<thinking>internal thoughts</thinking>
<update status="200">The answer.</update>"#,
            r#"{"commands": [{"name": "update", "status": 200, "body": "The answer."}], "warnings": [], "unparsed": "internal thoughts"}"#,
        ),
        (
            "comment_outside",
            r#"<!-- plan --><get>a</get>"#,
            r#"{"commands": [{"name": "get", "path": "a"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "duplicate_attribute_first_wins",
            r#"<get path="x" path="y"/>"#,
            r#"{"commands": [{"name": "get", "path": "x"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "unquoted_attribute_not_self_closing",
            r#"<get path=a/b/>"#,
            r#"{"commands": [{"name": "get", "path": "a/b/"}], "warnings": ["Unclosed <get> tag — content captured anyway"], "unparsed": ""}"#,
        ),
        (
            "heredoc_in_sh",
            r#"<sh>cat <<EOF
<div class="test">content</div>
EOF</sh>"#,
            r#"{"commands": [{"name": "sh", "command": "cat <<EOF\n<div class=\"test\">content</div>\nEOF"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "empty",
            r#""#,
            r#"{"commands": [], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "prose_only",
            r#"Just some text with no XML."#,
            r#"{"commands": [], "warnings": [], "unparsed": "Just some text with no XML."}"#,
        ),
    ]);
}

#[test]
fn leaked_reasoning() {
    check(&[
        (
            "leaked_reasoning_path",
            r#"<get>I think I should look at the file
that holds the config</get><update>u</update>"#,
            r#"{"commands": [{"name": "update", "body": "u", "status": 102}], "warnings": ["Rejected <get>: its path contains line breaks or other control characters, so it looks like reasoning rather than a path. Put only the path in the tag."], "unparsed": ""}"#,
        ),
        (
            "long_path_rejected",
            r#"<get path="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"/>"#,
            r#"{"commands": [{"name": "get", "path": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "multiline_sh_kept",
            r#"<sh>npm install
npm test</sh>"#,
            r#"{"commands": [{"name": "sh", "command": "npm install\nnpm test"}], "warnings": [], "unparsed": ""}"#,
        ),
    ]);
}

#[test]
fn set_resolution() {
    check(&[
        (
            "set_merge",
            r#"<set path="src/config.js">
<<<<<<< SEARCH
const port = 3000;
=======
const port = 8080;
>>>>>>> REPLACE
</set>"#,
            r#"{"commands": [{"name": "set", "path": "src/config.js", "blocks": [{"search": "const port = 3000;", "replace": "const port = 8080;"}]}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_replace_only",
            r#"<set path="src/new.js">
=======
export default {};
>>>>>>> REPLACE
</set>"#,
            r#"{"commands": [{"name": "set", "path": "src/new.js", "blocks": [{"search": null, "replace": "export default {};"}]}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_udiff",
            r#"<set path="a.txt">
@@ -1,2 +1,2 @@
 one
-two
+TWO
</set>"#,
            r#"{"commands": [{"name": "set", "path": "a.txt", "blocks": [{"search": "one\ntwo", "replace": "one\nTWO"}]}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_old_new",
            r#"<set path="a.txt"><old_text>two</old_text>
<new_text>TWO</new_text></set>"#,
            r#"{"commands": [{"name": "set", "path": "a.txt", "blocks": [{"search": "two", "replace": "TWO"}]}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_json",
            r#"<set path="a.txt">{"search":"two","replace":"TWO"}</set>"#,
            r#"{"commands": [{"name": "set", "path": "a.txt", "search": "two", "replace": "TWO"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_jsonish",
            r#"<set path="a.txt">{search="two", replace="TWO"}</set>"#,
            r#"{"commands": [{"name": "set", "path": "a.txt", "search": "two", "replace": "TWO"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_sed_one",
            r#"<set path="hw.txt">s/b \/ 4 = 3/12 \/ 4 = 3/g</set>"#,
            r#"{"commands": [{"name": "set", "path": "hw.txt", "search": "b / 4 = 3", "replace": "12 / 4 = 3", "flags": "g", "sed": true}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_sed_chain",
            r#"<set path="f.js">s/foo/bar/g;s/baz/qux/</set>"#,
            r#"{"commands": [{"name": "set", "path": "f.js", "blocks": [{"search": "foo", "replace": "bar", "flags": "g", "sed": true}, {"search": "baz", "replace": "qux", "flags": "", "sed": true}]}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_sed_pipe",
            r#"<set path="f.js">s|/usr/bin|/opt/bin|g</set>"#,
            r#"{"commands": [{"name": "set", "path": "f.js", "search": "/usr/bin", "replace": "/opt/bin", "flags": "g", "sed": true}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_search_attr",
            r#"<set path="config.js" search="3000">8080</set>"#,
            r#"{"commands": [{"name": "set", "path": "config.js", "search": "3000", "replace": "8080"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_search_replace_attrs",
            r#"<set path="x.js" search="old" replace="new">ignored</set>"#,
            r#"{"commands": [{"name": "set", "path": "x.js", "search": "old", "replace": "new"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_body_attr_edit",
            r#"<set path="x.js" body="old">new</set>"#,
            r#"{"commands": [{"name": "set", "path": "x.js", "search": "old", "replace": "new"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_full_write",
            r#"<set path="known://auth" summary="auth" visibility="visible">OAuth2 PKCE</set>"#,
            r#"{"commands": [{"name": "set", "path": "known://auth", "summary": "auth", "visibility": "visible", "body": "OAuth2 PKCE"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_visibility_only",
            r#"<set path="known://*" visibility="summarized"/>"#,
            r#"{"commands": [{"name": "set", "path": "known://*", "visibility": "summarized", "body": ""}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "set_preview_bare",
            r#"<set path="known://x" preview/>"#,
            r#"{"commands": [{"name": "set", "path": "known://x", "preview": "", "body": ""}], "warnings": [], "unparsed": ""}"#,
        ),
    ]);
}

#[test]
fn other_tools() {
    check(&[
        (
            "update_statuses",
            r#"<update status="200">ok</update><update>no status</update><update status="abc">bad</update><update status="200" body="attr body"/>"#,
            r#"{"commands": [{"name": "update", "status": 200, "body": "ok"}, {"name": "update", "body": "no status", "status": 102}, {"name": "update", "status": null, "body": "bad"}, {"name": "update", "status": 200, "body": "attr body"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "get_forms",
            r#"<get>src/app.js</get><get path="known://*">auth</get><get path="*.js" body="TODO"/><get path="x" line="-50" limit="10"/>"#,
            r#"{"commands": [{"name": "get", "path": "src/app.js"}, {"name": "get", "path": "known://*", "body": "auth"}, {"name": "get", "path": "*.js", "body": "TODO"}, {"name": "get", "path": "x", "line": "-50", "limit": "10"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "rm_forms",
            r#"<rm>src/old.js</rm><rm path="known://x" body="pattern"/>"#,
            r#"{"commands": [{"name": "rm", "path": "src/old.js"}, {"name": "rm", "path": "known://x", "body": "pattern"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "search_forms",
            r#"<search results="5">SQLite WAL mode</search><search path="q"/>"#,
            r#"{"commands": [{"name": "search", "results": 5, "path": "SQLite WAL mode"}, {"name": "search", "path": "q", "results": null}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "mv_cp_forms",
            r#"<mv path="src/old.js">src/new.js</mv><cp path=".env" to="known://env"/><mv path="known://p/*" visibility="summarized"/>"#,
            r#"{"commands": [{"name": "mv", "path": "src/old.js", "to": "src/new.js"}, {"name": "cp", "path": ".env", "to": "known://env"}, {"name": "mv", "path": "known://p/*", "visibility": "summarized", "to": null}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "sh_env_forms",
            r#"<sh command="npm test"/><env>ls -la src/</env>"#,
            r#"{"commands": [{"name": "sh", "command": "npm test"}, {"name": "env", "command": "ls -la src/"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "ask_user_forms",
            r#"<ask_user question="Which DB?">PG; SQLite</ask_user><ask_user question="Q" options="a, b"/>"#,
            r#"{"commands": [{"name": "ask_user", "question": "Which DB?", "options": "PG; SQLite"}, {"name": "ask_user", "question": "Q", "options": "a, b"}], "warnings": [], "unparsed": ""}"#,
        ),
        (
            "think_forms",
            r#"<think>plan the edit</think><think body="b"/><think/>"#,
            r#"{"commands": [{"name": "think", "body": "plan the edit"}, {"name": "think", "body": "b"}, {"name": "think"}], "warnings": [], "unparsed": ""}"#,
        ),
    ]);
}

#[test]
fn command_cap_gives_one_warning() {
    let reply: String = (0..20).map(|i| format!("<get>file_{i}.js</get>")).collect();
    let p = parse(&reply, 5);
    assert_eq!(p.commands.len(), 5);
    assert_eq!(
        p.warnings,
        vec!["Tool call limit (5) reached — remaining commands dropped"]
    );
    let exact = parse("<get>a</get><get>b</get><get>c</get>", 3);
    assert_eq!(exact.commands.len(), 3);
    assert!(exact.warnings.is_empty());
    // Text after the cap is not read either (upstream stops there).
    let p = parse("<get>a</get> tail <get>b</get> more", 1);
    assert_eq!(p.unparsed, "tail");
}

#[test]
fn command_methods() {
    let p = parse(
        r#"<set path="known://a">  42  </set><update status=" 200 ">done</update><update status="abc">x</update><update>y</update><sh>npm
test</sh><ask_user question="Which?">a;b</ask_user><get>src/x.js</get><set body="b"/>"#,
        99,
    );
    let c = &p.commands;
    assert_eq!(c[0].text(), "42");
    assert_eq!(c[0].path().as_deref(), Some("known://a"));
    assert_eq!(c[0].body, "  42  ");
    assert_eq!(c[1].status(), Some(200));
    assert_eq!(c[1].target(), "done");
    assert_eq!(c[2].status(), None);
    assert_eq!(c[3].status(), Some(102));
    assert_eq!(c[4].target(), "npm\ntest");
    assert_eq!(c[5].target(), "Which?");
    assert_eq!(c[6].target(), "src/x.js");
    assert_eq!(c[7].text(), "b");
    assert!(!c[0].preview());
    let bare = parse(r#"<set path="known://x" preview/>"#, 9);
    assert!(bare.commands[0].preview());
    assert_eq!(c[7].path(), None);
}

#[test]
fn custom_tool_set() {
    let tools = ["get", "known"];
    let p = parse_with(
        "<known>fact</known><set path=\"x\">y</set>",
        ParseOptions {
            tools: &tools,
            max_commands: 9,
        },
    );
    assert_eq!(p.commands.len(), 1);
    assert_eq!(
        p.commands[0].to_json(),
        serde_json::json!({"name": "known", "body": "fact"})
    );
    assert_eq!(p.unparsed, "y");
}

#[test]
fn code_span_masks_fall_back_to_entities() {
    // A reply holding every noncharacter the masks could use.
    let all: String = ('\u{FDD0}'..='\u{FDEF}').collect();
    let reply = format!("{all} `<get/>` <update>u</update>");
    let p = parse(&reply, 9);
    assert_eq!(p.commands.len(), 1);
    assert!(p.unparsed.contains("`<get/>`"), "{}", p.unparsed);
}

#[test]
fn real_failures() {
    // A <set> whose body holds SEARCH/REPLACE markers and XML, with
    // narration and a quoted tool tag around it, then an unclosed update.
    let reply = "I'll fix the template (note: `<set>` edits need SEARCH blocks).\n\
<set path=\"src/index.html\">\n<<<<<<< SEARCH\n<title>Old</title>\n=======\n<title>New &amp; better</title>\n>>>>>>> REPLACE\n</set>\nDone with that.\n<update status=\"200\">Title updated";
    let p = parse(reply, 99);
    assert_eq!(p.commands.len(), 2);
    let set = p.commands[0].to_json();
    assert_eq!(set["blocks"][0]["search"], "<title>Old</title>");
    assert_eq!(
        set["blocks"][0]["replace"],
        "<title>New &amp; better</title>"
    );
    assert_eq!(p.commands[1].status(), Some(200));
    assert_eq!(p.commands[1].text(), "Title updated");
    assert_eq!(
        p.warnings,
        vec!["Unclosed <update> tag — content captured anyway"]
    );
    assert_eq!(
        p.unparsed,
        "I'll fix the template (note: `<set>` edits need SEARCH blocks).\n\nDone with that."
    );
}

/// Replies built from the pieces models actually emit.
fn reply_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<get path=\"a\"/>".to_string()),
        Just("<set path=\"known://k\">".to_string()),
        Just("</set>".to_string()),
        Just("<update status=\"200\">".to_string()),
        Just("</update>".to_string()),
        Just("<sh>".to_string()),
        Just("`<get/>`".to_string()),
        Just("<|tool_call>call:get{path:\"x\"}<tool_call|>".to_string()),
        Just("```xml\n".to_string()),
        Just("<<<<<<< SEARCH\n".to_string()),
        Just("<div class=\"".to_string()),
        Just("&amp;".to_string()),
        Just("<!--".to_string()),
        "[ -~\\n]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>(), max in 0usize..5) {
        let p = parse(&s, max);
        prop_assert!(p.commands.len() <= max);
        let _ = p.to_json().to_string();
    }

    #[test]
    fn model_like_replies_never_panic(s in reply_strategy()) {
        let p = parse(&s, 99);
        for c in &p.commands {
            let _ = (c.to_json(), c.target(), c.status(), c.text());
        }
    }

    /// A well-formed command round-trips: written out with escaped
    /// attributes and a body free of markup, it parses back to itself.
    #[test]
    fn well_formed_command_round_trips(
        name in prop::sample::select(TOOL_TAGS.to_vec()),
        attrs in prop::collection::vec(("[a-z][a-z_]{0,8}", "[^\u{0}-\u{1f}]{0,20}"), 0..4),
        body in "[^<>&`\u{0}-\u{8}]{0,40}",
    ) {
        let mut unique: Vec<(String, String)> = Vec::new();
        for (k, v) in attrs {
            if !unique.iter().any(|(u, _)| *u == k) {
                unique.push((k, v));
            }
        }
        let escape = |v: &str| v.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
        let attr_text: String = unique.iter().map(|(k, v)| format!(" {k}=\"{}\"", escape(v))).collect();
        let reply = format!("<{name}{attr_text}>{body}</{name}>");
        let p = parse_with(&reply, ParseOptions { tools: &TOOL_TAGS, max_commands: 9 });
        let cmd = Command { name: name.to_string(), attrs: unique, body: body.clone() };
        if super::leaked_reasoning(&cmd).is_some() {
            prop_assert!(p.commands.is_empty());
        } else {
            prop_assert_eq!(p.warnings.len(), 0, "{:?}", p.warnings);
            prop_assert_eq!(&p.commands, &vec![cmd]);
        }
    }
}
