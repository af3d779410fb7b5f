//! `SetEntry`: full and body-less writes, permissions and validation.

use super::fixture::*;
use crate::store::schemes::{RegisterSchemes, SchemeDef};
use crate::store::*;
use serde_json::{json, Value};

#[test]
fn set_entry_full_write_defaults_to_resolved_turn_zero_and_empty_attributes() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "known://x", Writer::Model, "body");
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.state, EntryState::Resolved);
    assert_eq!(e.outcome, None);
    assert_eq!(e.turn, 0);
    assert_eq!(e.body, "body");
    assert_eq!(attrs(&e), json!({}));
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), 1);

    // "" is a valid body; explicit state/turn are stored.
    assert!(exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some(String::new()),
            state: Some(EntryState::Proposed),
            turn: 4,
            ..EntryWrite::new(fx.run, "known://empty", Writer::Plugin)
        }),
    )
    .unwrap());
    let e = get(&mut fx.conn, fx.run, "known://empty").unwrap();
    assert_eq!(
        (e.body.as_str(), e.state.as_str(), e.turn),
        ("", "proposed", 4)
    );
}

#[test]
fn set_entry_default_visibility_comes_from_the_scheme() {
    let mut fx = fixture();
    let cases = [
        ("known://k", Writer::Model, "summarized"),
        ("unknown://u", Writer::Model, "visible"),
        ("log://turn_1/set/x", Writer::Model, "visible"),
        ("src/main.rs", Writer::Model, "visible"),
        ("prompt://1", Writer::Plugin, "visible"),
        ("unregistered://z", Writer::Model, "visible"),
    ];
    for (path, writer, expected) in cases {
        put(&mut fx.conn, fx.run, path, writer, "b");
        let e = get(&mut fx.conn, fx.run, path).unwrap();
        assert_eq!(e.visibility, expected, "{path}");
    }
    assert_eq!(
        get(&mut fx.conn, fx.run, "src/main.rs").unwrap().scheme,
        None
    );

    // An explicit visibility beats the scheme default.
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            visibility: Some("visible".into()),
            ..EntryWrite::new(fx.run, "known://explicit", Writer::Model)
        }),
    )
    .unwrap();
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://explicit")
            .unwrap()
            .visibility,
        "visible"
    );
}

#[test]
fn set_entry_rewrite_increments_write_count_and_replaces_the_body() {
    let mut fx = fixture();
    for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
        put(&mut fx.conn, fx.run, "known://x", Writer::Model, body);
        assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), i as i64 + 1);
    }
    assert_eq!(
        get(&mut fx.conn, fx.run, "known://x").unwrap().body,
        "three"
    );
    assert_eq!(entry_count(&mut fx.conn), 2); // run://r1 and known://x
    assert_eq!(view_count(&mut fx.conn), 2);
}

#[test]
fn set_entry_attributes_are_replaced_when_given_and_kept_when_none() {
    let mut fx = fixture();
    let with_attrs = |body: &str, a: Option<Value>| {
        SetEntry(EntryWrite {
            body: Some(body.into()),
            attributes: a,
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        })
    };
    exec(&mut fx.conn, with_attrs("1", Some(json!({"a": 1, "b": 2})))).unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(attrs(&e), json!({"a": 1, "b": 2}));

    exec(&mut fx.conn, with_attrs("2", Some(json!({"c": 3})))).unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(attrs(&e), json!({"c": 3}));

    exec(&mut fx.conn, with_attrs("3", None)).unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.body, "3");
    assert_eq!(attrs(&e), json!({"c": 3}));
}

#[test]
fn set_entry_log_write_with_attributes_gets_action_injected() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("set known://a".into()),
            attributes: Some(json!({"path": "known://a"})),
            ..EntryWrite::new(fx.run, "log://turn_2/set/known%3A//a", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "log://turn_2/set/known%3A//a").unwrap();
    assert_eq!(attrs(&e), json!({"path": "known://a", "action": "set"}));

    // No attributes: nothing injected.
    put(
        &mut fx.conn,
        fx.run,
        "log://turn_2/get/src",
        Writer::Model,
        "x",
    );
    let e = get(&mut fx.conn, fx.run, "log://turn_2/get/src").unwrap();
    assert_eq!(attrs(&e), json!({}));

    // Non-log schemes never get an action.
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("k".into()),
            attributes: Some(json!({"x": 1})),
            ..EntryWrite::new(fx.run, "known://turn_2/set/x", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "known://turn_2/set/x").unwrap();
    assert_eq!(attrs(&e), json!({"x": 1}));
}

#[test]
fn set_entry_client_write_to_known_is_refused_with_the_exact_message() {
    let mut fx = fixture();
    // Pin `known` to the plain tool row (model, plugin): which tiers the
    // tool registry lets write it is policy; this tests the store's check.
    exec(
        &mut fx.conn,
        RegisterSchemes(vec![SchemeDef::tool("known", "data")]),
    )
    .unwrap();
    let entries_before = entry_count(&mut fx.conn);
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "known://x", Writer::Client), "b"),
    )
    .unwrap_err();
    match &err {
        StoreError::Permission {
            writer,
            scheme,
            allowed,
        } => {
            assert_eq!(
                (writer.as_str(), scheme.as_str(), allowed.as_str()),
                ("client", "known", "model, plugin")
            );
        }
        other => panic!("expected Permission, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        r#"403: writer "client" not permitted for scheme "known" (allowed: model, plugin)"#
    );
    assert!(get(&mut fx.conn, fx.run, "known://x").is_none());
    assert_eq!(entry_count(&mut fx.conn), entries_before);

    // System is not a model/plugin tier either.
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "known://x", Writer::System), "b"),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Permission { .. }), "{err:?}");
}

#[test]
fn set_entry_bare_path_permission_error_names_the_file_scheme() {
    let mut fx = fixture();
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "src/main.rs", Writer::Client), "fn"),
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Permission { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"403: writer "client" not permitted for scheme "file" (allowed: model, plugin)"#
    );
    assert!(get(&mut fx.conn, fx.run, "src/main.rs").is_none());
}

#[test]
fn set_entry_audit_schemes_are_writable_by_system_only() {
    let mut fx = fixture();
    let err = exec(
        &mut fx.conn,
        write(EntryWrite::new(fx.run, "system://1", Writer::Model), "s"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"403: writer "model" not permitted for scheme "system" (allowed: system)"#
    );
    put(&mut fx.conn, fx.run, "system://1", Writer::System, "s");
}

#[test]
fn set_entry_full_write_normalizes_the_path() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "KNOWN://a b", Writer::Model, "spaced");
    let e = get(&mut fx.conn, fx.run, "known://a%20b").unwrap();
    assert_eq!(e.path, "known://a%20b");
    assert_eq!(e.scheme.as_deref(), Some("known"));
    assert_eq!(e.body, "spaced");
    // The raw spelling finds the same entry, and rewriting it does not
    // create a second one.
    assert_eq!(
        get(&mut fx.conn, fx.run, "KNOWN://a b").unwrap().path,
        e.path
    );
    put(
        &mut fx.conn,
        fx.run,
        "known://a%20b",
        Writer::Model,
        "again",
    );
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://a%20b"), 2);
    assert_eq!(entry_count(&mut fx.conn), 2);
}

#[test]
fn set_entry_views_are_per_run() {
    let mut fx = fixture();
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    put(&mut fx.conn, fx.run, "known://x", Writer::Model, "mine");
    assert!(get(&mut fx.conn, other, "known://x").is_none());
    put(&mut fx.conn, other, "known://x", Writer::Model, "theirs");
    assert_eq!(get(&mut fx.conn, fx.run, "known://x").unwrap().body, "mine");
    assert_eq!(
        get(&mut fx.conn, other, "known://x").unwrap().body,
        "theirs"
    );
    let listed: Vec<String> = exec(&mut fx.conn, ListEntries(fx.run))
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(listed, ["known://x", "run://r1"]);
}

#[test]
fn set_entry_bodyless_state_change_sets_and_clears_the_outcome() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            turn: 3,
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    let changed = exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some(EntryState::Failed),
            outcome: Some("status:500".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    assert!(changed);
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.state, EntryState::Failed);
    assert_eq!(e.outcome.as_deref(), Some("status:500"));
    // Body, visibility, turn and write count are untouched.
    assert_eq!(
        (e.body.as_str(), e.visibility.as_str(), e.turn),
        ("b", "summarized", 3)
    );
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), 1);

    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some(EntryState::Resolved),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!((e.state.as_str(), e.outcome), ("resolved", None));
}

#[test]
fn set_entry_bodyless_visibility_change_alone() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            state: Some(EntryState::Failed),
            outcome: Some("x".into()),
            attributes: Some(json!({"k": 1})),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    assert!(exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            visibility: Some("archived".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap());
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(e.visibility, "archived");
    assert_eq!(e.state, EntryState::Failed);
    assert_eq!(e.outcome.as_deref(), Some("x"));
    assert_eq!(e.body, "b");
    assert_eq!(attrs(&e), json!({"k": 1}));
}

#[test]
fn set_entry_bodyless_attributes_are_merged_and_null_deletes_a_key() {
    let mut fx = fixture();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            body: Some("b".into()),
            attributes: Some(json!({"a": 1, "b": 2, "n": {"x": 1, "y": 2}})),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            attributes: Some(json!({"b": null, "c": 3, "n": {"y": null}})),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        }),
    )
    .unwrap();
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(attrs(&e), json!({"a": 1, "c": 3, "n": {"x": 1}}));
    assert_eq!(e.state, EntryState::Resolved);
    assert_eq!(e.visibility, "summarized");
}

#[test]
fn set_entry_bodyless_on_a_missing_entry_is_a_no_op() {
    let mut fx = fixture();
    let entries_before = entry_count(&mut fx.conn);
    let views_before = view_count(&mut fx.conn);
    let changed = exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some(EntryState::Resolved),
            visibility: Some("visible".into()),
            attributes: Some(json!({"a": 1})),
            ..EntryWrite::new(fx.run, "known://missing", Writer::Model)
        }),
    )
    .unwrap();
    assert!(!changed);
    assert!(get(&mut fx.conn, fx.run, "known://missing").is_none());
    assert_eq!(entry_count(&mut fx.conn), entries_before);
    assert_eq!(view_count(&mut fx.conn), views_before);

    // Another run's entry of that path is not reached either.
    let other = new_run(&mut fx.conn, fx.project, "r2").id;
    put(&mut fx.conn, other, "known://theirs", Writer::Model, "b");
    let changed = exec(
        &mut fx.conn,
        SetEntry(EntryWrite {
            state: Some(EntryState::Failed),
            ..EntryWrite::new(fx.run, "known://theirs", Writer::Model)
        }),
    )
    .unwrap();
    assert!(!changed);
    assert_eq!(
        get(&mut fx.conn, other, "known://theirs").unwrap().state,
        EntryState::Resolved
    );
}

#[test]
fn set_entry_refuses_invalid_state_and_visibility() {
    let mut fx = fixture();
    put(&mut fx.conn, fx.run, "known://x", Writer::Model, "b");
    // States are typed: an unknown name never becomes one, so it cannot reach a write.
    for name in ["done", "RESOLVED", ""] {
        assert!(name.parse::<EntryState>().is_err(), "{name}");
    }
    let bad = [
        EntryWrite {
            visibility: Some("hidden".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        },
        EntryWrite {
            body: Some("new".into()),
            state: Some(EntryState::Resolved),
            visibility: Some("Visible".into()),
            ..EntryWrite::new(fx.run, "known://x", Writer::Model)
        },
        EntryWrite {
            body: Some("new".into()),
            visibility: Some("".into()),
            ..EntryWrite::new(fx.run, "known://y", Writer::Model)
        },
    ];
    for w in bad {
        let err = exec(&mut fx.conn, SetEntry(w.clone())).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{w:?}: {err:?}");
    }
    let e = get(&mut fx.conn, fx.run, "known://x").unwrap();
    assert_eq!(
        (e.body.as_str(), e.state.as_str(), e.visibility.as_str()),
        ("b", "resolved", "summarized")
    );
    assert!(get(&mut fx.conn, fx.run, "known://y").is_none());
    assert_eq!(write_count(&mut fx.conn, fx.run, "known://x"), 1);
}
