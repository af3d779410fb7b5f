//! Projects and models.

use super::fixture::*;
use crate::store::schema as s;
use crate::store::*;
use diesel::prelude::*;

#[test]
fn upsert_project_same_name_returns_same_id_updates_root_and_keeps_config() {
    let (_dir, mut conn) = open_db();
    let first = exec(
        &mut conn,
        UpsertProject {
            name: "demo".into(),
            project_root: "/a".into(),
            config_path: Some("/a/rummy.toml".into()),
        },
    )
    .unwrap();
    let second = exec(
        &mut conn,
        UpsertProject {
            name: "demo".into(),
            project_root: "/b".into(),
            config_path: None,
        },
    )
    .unwrap();
    assert_eq!(first, second);
    let row: (Option<String>, Option<String>) = s::projects::table
        .find(first)
        .select((s::projects::project_root, s::projects::config_path))
        .first(&mut conn)
        .unwrap();
    assert_eq!(row, (Some("/b".into()), Some("/a/rummy.toml".into())));

    // A new non-null config path wins.
    exec(
        &mut conn,
        UpsertProject {
            name: "demo".into(),
            project_root: "/b".into(),
            config_path: Some("/b/rummy.toml".into()),
        },
    )
    .unwrap();
    let config: Option<String> = s::projects::table
        .find(first)
        .select(s::projects::config_path)
        .first(&mut conn)
        .unwrap();
    assert_eq!(config.as_deref(), Some("/b/rummy.toml"));

    let other = exec(
        &mut conn,
        UpsertProject {
            name: "other".into(),
            project_root: "/c".into(),
            config_path: None,
        },
    )
    .unwrap();
    assert_ne!(other, first);
}

#[test]
fn upsert_model_keeps_the_window_only_for_the_same_model() {
    let (_dir, mut conn) = open_db();
    let upsert = |alias: &str, actual: &str, context_length: Option<i64>| UpsertModel {
        alias: alias.into(),
        actual: actual.into(),
        context_length,
    };
    let id = exec(&mut conn, upsert("fast", "vendor/a", Some(8192))).unwrap();
    let again = exec(&mut conn, upsert("fast", "vendor/a", None)).unwrap();
    assert_eq!(id, again);
    let row = exec(&mut conn, GetModel("fast".into())).unwrap().unwrap();
    assert_eq!(
        (
            row.id,
            row.alias.as_str(),
            row.actual.as_str(),
            row.context_length
        ),
        (id, "fast", "vendor/a", Some(8192))
    );

    // Another model under the alias: the old window no longer applies.
    exec(&mut conn, upsert("fast", "vendor/b", None)).unwrap();
    let row = exec(&mut conn, GetModel("fast".into())).unwrap().unwrap();
    assert_eq!(
        (row.actual.as_str(), row.context_length),
        ("vendor/b", None)
    );

    exec(&mut conn, upsert("fast", "vendor/c", Some(4096))).unwrap();
    let row = exec(&mut conn, GetModel("fast".into())).unwrap().unwrap();
    assert_eq!(row.actual, "vendor/c");
    assert_eq!(row.context_length, Some(4096));

    assert_eq!(exec(&mut conn, GetModel("nope".into())).unwrap(), None);
}

#[test]
fn list_models_sorted_by_alias_with_limit_and_offset() {
    let (_dir, mut conn) = open_db();
    for alias in ["charlie", "alpha", "bravo"] {
        exec(
            &mut conn,
            UpsertModel {
                alias: alias.into(),
                actual: format!("x/{alias}"),
                context_length: None,
            },
        )
        .unwrap();
    }
    let aliases = |conn: &mut SqliteConnection, limit, offset| -> Vec<String> {
        exec(conn, ListModels { limit, offset })
            .unwrap()
            .into_iter()
            .map(|m| m.alias)
            .collect()
    };
    assert_eq!(
        aliases(&mut conn, None, None),
        ["alpha", "bravo", "charlie"]
    );
    assert_eq!(aliases(&mut conn, Some(2), None), ["alpha", "bravo"]);
    assert_eq!(aliases(&mut conn, Some(2), Some(1)), ["bravo", "charlie"]);
    assert_eq!(aliases(&mut conn, None, Some(2)), ["charlie"]);
    assert!(aliases(&mut conn, Some(5), Some(3)).is_empty());
}

#[test]
fn remove_model_returns_rows_removed_and_zero_for_unknown_alias() {
    let (_dir, mut conn) = open_db();
    exec(
        &mut conn,
        UpsertModel {
            alias: "m".into(),
            actual: "x/m".into(),
            context_length: Some(2048),
        },
    )
    .unwrap();
    assert_eq!(exec(&mut conn, RemoveModel("unknown".into())).unwrap(), 0);
    assert!(exec(&mut conn, GetModel("m".into())).unwrap().is_some());
    assert_eq!(exec(&mut conn, RemoveModel("m".into())).unwrap(), 1);
    assert_eq!(exec(&mut conn, GetModel("m".into())).unwrap(), None);
    assert_eq!(exec(&mut conn, RemoveModel("m".into())).unwrap(), 0);
}
