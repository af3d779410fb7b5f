//! Diesel table declarations matching `migrations/2026-11-24-000001_initial_schema/up.sql`.
//!
//! Written by hand (not by `diesel print-schema`) so the read-only views can be declared too.
//! Type mapping: INTEGER -> `BigInt` (i64), REAL -> `Double`, TEXT/JSON -> `Text`,
//! BOOLEAN -> `Bool`, DATETIME -> `Text` (SQLite's `YYYY-MM-DD HH:MM:SS`). Columns declared
//! without NOT NULL are `Nullable`, including every `created_at`/`updated_at`: they have a
//! default but SQLite still accepts an explicit NULL.
//!
//! Generated columns (`entries.scheme`, `turn_context.scheme`) are readable like any other
//! column, but inserts and updates must never set them: SQLite rejects writes to a
//! generated column.

diesel::table! {
    /// Scheme registry: category, visibility to the model, default scope, allowed writers.
    schemes (name) {
        name -> Text,
        model_visible -> Bool,
        category -> Nullable<Text>,
        default_scope -> Text,
        /// JSON array of writer tiers.
        writable_by -> Text,
        capability_class -> Nullable<Text>,
    }
}

diesel::table! {
    projects (id) {
        id -> BigInt,
        name -> Text,
        project_root -> Nullable<Text>,
        config_path -> Nullable<Text>,
        created_at -> Nullable<Text>,
    }
}

diesel::table! {
    models (id) {
        id -> BigInt,
        alias -> Text,
        actual -> Text,
        context_length -> Nullable<BigInt>,
        created_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Runs; `status` changes are policed by the `trg_run_state_transition` trigger.
    runs (id) {
        id -> BigInt,
        project_id -> BigInt,
        /// Self-reference (ON DELETE SET NULL); no `joinable!` since diesel cannot self-join.
        parent_run_id -> Nullable<BigInt>,
        model -> Nullable<Text>,
        status -> BigInt,
        alias -> Text,
        temperature -> Nullable<Double>,
        persona -> Nullable<Text>,
        context_limit -> Nullable<BigInt>,
        next_turn -> BigInt,
        next_loop -> BigInt,
        created_at -> Nullable<Text>,
        /// JSON: the loop flags later loops inherit.
        flags -> Nullable<Text>,
    }
}

diesel::table! {
    /// The per-run FIFO prompt queue.
    loops (id) {
        id -> BigInt,
        run_id -> BigInt,
        sequence -> BigInt,
        mode -> Text,
        model -> Nullable<Text>,
        prompt -> Text,
        status -> BigInt,
        /// JSON.
        config -> Nullable<Text>,
        /// JSON.
        result -> Nullable<Text>,
        created_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Per-LLM-call usage telemetry; `sequence` is the run-wide turn number.
    turns (id) {
        id -> BigInt,
        run_id -> BigInt,
        loop_id -> BigInt,
        sequence -> BigInt,
        context_tokens -> BigInt,
        reasoning_content -> Nullable<Text>,
        prompt_tokens -> BigInt,
        cached_tokens -> BigInt,
        completion_tokens -> BigInt,
        reasoning_tokens -> BigInt,
        total_tokens -> BigInt,
        cost -> Double,
        created_at -> Nullable<Text>,
        /// JSON array: the log paths RECORD allocated, in dispatch order.
        dispatch_plan -> Nullable<Text>,
    }
}

diesel::table! {
    file_constraints (id) {
        id -> BigInt,
        project_id -> BigInt,
        pattern -> Text,
        visibility -> Text,
        created_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Entry content, unique per (scope, path).
    entries (id) {
        id -> BigInt,
        scope -> Text,
        path -> Text,
        /// GENERATED from `path`: read it, never insert or update it.
        scheme -> Nullable<Text>,
        body -> Text,
        /// JSON object.
        attributes -> Text,
        hash -> Nullable<Text>,
        created_at -> Nullable<Text>,
        updated_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// A run's projection of an entry: state, visibility, turn.
    run_views (id) {
        id -> BigInt,
        run_id -> BigInt,
        entry_id -> BigInt,
        loop_id -> Nullable<BigInt>,
        turn -> BigInt,
        state -> Text,
        outcome -> Nullable<Text>,
        visibility -> Text,
        write_count -> BigInt,
        refs -> BigInt,
        created_at -> Nullable<Text>,
        updated_at -> Nullable<Text>,
        /// The entry's path, kept by triggers (migration `view_paths`).
        path -> Nullable<Text>,
    }
}

diesel::table! {
    /// The materialized packet rows of one turn.
    turn_context (id) {
        id -> BigInt,
        run_id -> BigInt,
        loop_id -> Nullable<BigInt>,
        turn -> BigInt,
        ordinal -> BigInt,
        path -> Text,
        /// GENERATED from `path`: read it, never insert or update it.
        scheme -> Nullable<Text>,
        state -> Text,
        outcome -> Nullable<Text>,
        visibility -> Text,
        body -> Text,
        /// JSON object.
        attributes -> Text,
        category -> Text,
        source_turn -> Nullable<BigInt>,
        /// Last turn the row is part of; NULL while in the latest one.
        until_turn -> Nullable<BigInt>,
        sort_key -> Text,
        tokens -> BigInt,
        digest -> BigInt,
    }
}

diesel::table! {
    /// Audit log of every JSON-RPC call.
    rpc_log (id) {
        id -> BigInt,
        project_id -> Nullable<BigInt>,
        method -> Text,
        /// JSON of the request id: `7` or `"seven"`.
        rpc_id -> Nullable<Text>,
        /// JSON.
        params -> Nullable<Text>,
        /// JSON.
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> Nullable<Text>,
    }
}

// ----- read-only views (SELECT only; SQLite rejects writes to a view) -----

diesel::table! {
    /// `run_views` joined to `entries`; `id` is the run_views id, `entry_id` the entry's.
    known_entries (id) {
        id -> BigInt,
        run_id -> BigInt,
        loop_id -> Nullable<BigInt>,
        turn -> BigInt,
        path -> Text,
        body -> Text,
        scheme -> Nullable<Text>,
        state -> Text,
        outcome -> Nullable<Text>,
        visibility -> Text,
        hash -> Nullable<Text>,
        attributes -> Text,
        refs -> BigInt,
        write_count -> BigInt,
        /// The entry's creation time.
        created_at -> Nullable<Text>,
        /// The view's last update time.
        updated_at -> Nullable<Text>,
        entry_id -> BigInt,
        scope -> Text,
    }
}

diesel::table! {
    /// Rows the model may see; `ordinal` (1-based) is the packet order within a run,
    /// so (run_id, ordinal) identifies a row. Order by `ordinal` explicitly.
    v_model_context (run_id, ordinal) {
        run_id -> BigInt,
        path -> Text,
        /// NULL for bare file paths.
        scheme -> Nullable<Text>,
        visibility -> Text,
        state -> Text,
        outcome -> Nullable<Text>,
        body -> Text,
        attributes -> Text,
        category -> Text,
        turn -> BigInt,
        ordinal -> BigInt,
    }
}

diesel::table! {
    /// The run's readable history. The view has no id column, so (run_id, path) stands in as
    /// the key; it is not guaranteed unique (a forked run can hold two entries of one path).
    /// The view sorts by run_views id; a diesel `order_by` would need a join on known_entries.
    v_run_log (run_id, path) {
        run_id -> BigInt,
        path -> Text,
        body -> Text,
        state -> Text,
        outcome -> Nullable<Text>,
        turn -> BigInt,
        /// The entry's scheme; never NULL here because the view inner-joins `schemes` on it.
        tool -> Text,
        attributes -> Text,
    }
}

diesel::joinable!(runs -> projects (project_id));
diesel::joinable!(loops -> runs (run_id));
diesel::joinable!(turns -> runs (run_id));
diesel::joinable!(turns -> loops (loop_id));
diesel::joinable!(file_constraints -> projects (project_id));
diesel::joinable!(run_views -> runs (run_id));
diesel::joinable!(run_views -> entries (entry_id));
diesel::joinable!(run_views -> loops (loop_id));
diesel::joinable!(turn_context -> runs (run_id));
diesel::joinable!(turn_context -> loops (loop_id));
diesel::joinable!(rpc_log -> projects (project_id));

diesel::allow_tables_to_appear_in_same_query!(
    schemes,
    projects,
    models,
    runs,
    loops,
    turns,
    file_constraints,
    entries,
    run_views,
    turn_context,
    rpc_log,
);
