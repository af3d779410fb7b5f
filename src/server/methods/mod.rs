//! RPC method handlers, one module per protocol area, and the table that
//! registers them. What each method takes and answers is declared once, in
//! `protocol::schema::METHODS`; this table adds only how it is served.

mod entries;
mod fallback;
mod models;
mod runs;
mod session;
mod skills;
mod streams;

use super::router::MethodSpec;

/// A method answered without `rummy/hello`, under the RPC timeout.
macro_rules! open_method {
    ($name:literal, $handler:path) => {
        MethodSpec {
            name: $name,
            gated: false,
            long_running: false,
            handler: |c, p| Box::pin($handler(c, p)),
        }
    };
}

/// A method that needs a bound project; `long` exempts it from the RPC timeout.
macro_rules! gated_method {
    ($name:literal, $handler:path) => {
        gated_method!($name, $handler, false)
    };
    ($name:literal, $handler:path, $long:expr) => {
        MethodSpec {
            name: $name,
            gated: true,
            long_running: $long,
            handler: |c, p| Box::pin($handler(c, p)),
        }
    };
}

/// Session, models, runs, skills and personas.
pub static ALL: &[MethodSpec] = &[
    open_method!("rummy/hello", session::hello),
    open_method!("ping", session::ping),
    open_method!("discover", session::discover),
    open_method!("getModels", models::get_models),
    open_method!("addModel", models::add_model),
    open_method!("removeModel", models::remove_model),
    // `set` on run:// answers at once, but an inject may wait for the drain.
    gated_method!("set", runs::set, true),
    gated_method!("ask", runs::ask, true),
    gated_method!("act", runs::act, true),
    gated_method!("getRuns", runs::get_runs),
    gated_method!("getRun", runs::get_run),
    gated_method!("run/rename", runs::rename),
    gated_method!("skill/add", skills::skill_add),
    gated_method!("skill/remove", skills::skill_remove),
    gated_method!("getSkills", skills::get_skills),
    gated_method!("listSkills", skills::list_skills),
    gated_method!("persona/set", skills::persona_set),
    gated_method!("listPersonas", skills::list_personas),
];

/// Entry methods (client writer tier), project file constraints and the
/// tool fallbacks (model writer tier).
pub static ENTRY_METHODS: &[MethodSpec] = &[
    gated_method!("get", entries::get),
    gated_method!("rm", entries::rm),
    gated_method!("cp", entries::cp),
    gated_method!("mv", entries::mv),
    gated_method!("update", entries::update),
    gated_method!("getEntries", entries::get_entries),
    gated_method!("file/constraint", entries::file_constraint),
    gated_method!("file/drop", entries::file_drop),
    gated_method!("getConstraints", entries::get_constraints),
    // Tool fallbacks (spec 03 §2.2): tools without a method of their own.
    gated_method!("known", fallback::known),
    gated_method!("unknown", fallback::unknown),
    gated_method!("think", fallback::think),
    gated_method!("sh", fallback::sh),
    gated_method!("env", fallback::env),
    gated_method!("ask_user", fallback::ask_user),
    // Streaming commands (a client runs an accepted sh/env).
    gated_method!("stream", streams::stream),
    gated_method!("stream/completed", streams::completed),
    gated_method!("stream/aborted", streams::aborted),
    gated_method!("stream/cancel", streams::cancel),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::schema::METHODS;

    #[test]
    fn the_table_serves_exactly_the_served_protocol_methods() {
        let table: Vec<&str> = ALL.iter().chain(ENTRY_METHODS).map(|m| m.name).collect();
        let served: Vec<&str> = METHODS
            .iter()
            .filter(|m| m.served)
            .map(|m| m.name)
            .collect();
        for name in &table {
            assert!(
                served.contains(name),
                "{name} has a handler but no protocol entry"
            );
        }
        for name in &served {
            assert!(
                table.contains(name),
                "{name} is declared served but has no handler"
            );
        }
        assert_eq!(table.len(), served.len(), "a method is registered twice");
    }

    #[test]
    fn aliases_find_their_method() {
        use crate::server::router::find;
        assert_eq!(find("init").map(|m| m.name), Some("rummy/hello"));
        assert_eq!(find("rpc/discover").map(|m| m.name), Some("discover"));
        assert_eq!(find("stream").map(|m| m.name), Some("stream"));
        assert!(find("nope").is_none());
    }
}
