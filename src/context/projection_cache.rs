//! Projections kept between packets of one loop.
//!
//! A row's two projections and their token counts depend only on its path,
//! body and attributes (every tool's view is a pure function of them), yet
//! a turn assembles the packet twice (turn start and after dispatch) and
//! each turn adds a few rows to hundreds that did not change. Keeping each
//! path's last projection, and redoing it only when the body or the
//! attributes differ, takes the JSON parse, both projections, both counts
//! and the attribute re-serialization out of the per-row cost.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// What projecting one row produced.
#[derive(Debug)]
pub struct Projection {
    pub attributes: Arc<Map<String, Value>>,
    /// The attributes as `turn_context` stores them.
    pub attributes_json: String,
    /// The visible and the summarized projection.
    pub full: String,
    pub cheap: String,
    pub v_tokens: i64,
    pub s_tokens: i64,
}

struct Cached {
    /// SipHash of the body plus its length: a body is only ever compared to
    /// the previous body of the same path, so a 64-bit collision between
    /// those two is the only way to serve a stale projection.
    body_len: usize,
    body_hash: u64,
    attributes: String,
    divisor_bits: u64,
    projection: Arc<Projection>,
    /// The pass that last used it; older ones are dropped.
    pass: u64,
}

/// One loop's projections by path. The lock is never contended (one loop
/// drives its turns in order); it is there so the loop's future stays
/// `Send`.
#[derive(Default)]
pub struct ProjectionCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_path: HashMap<String, Cached>,
    pass: u64,
}

fn body_hash(body: &str) -> u64 {
    let mut h = DefaultHasher::new();
    body.hash(&mut h);
    h.finish()
}

/// One pass over a packet's rows: lookups and stores, then the drop of
/// every path the packet no longer holds.
pub struct Pass<'a> {
    inner: std::sync::MutexGuard<'a, Inner>,
    pass: u64,
}

impl ProjectionCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a pass. A poisoned lock (a panic mid-pass) only loses cached
    /// work, so the cache is emptied and used on.
    pub fn pass(&self) -> Pass<'_> {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                g.by_path.clear();
                g
            }
        };
        inner.pass += 1;
        let pass = inner.pass;
        Pass { inner, pass }
    }

    /// How many paths it holds (for tests).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.by_path.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Pass<'_> {
    /// The projection of `path` with this body and attributes, computing it
    /// with `project` when the cached one is missing or stale.
    pub fn get_or_project(
        &mut self,
        path: &str,
        body: &str,
        attributes: &str,
        divisor: f64,
        project: impl FnOnce() -> Projection,
    ) -> Arc<Projection> {
        let hash = body_hash(body);
        let divisor_bits = divisor.to_bits();
        let pass = self.pass;
        if let Some(c) = self.inner.by_path.get_mut(path) {
            if c.body_len == body.len()
                && c.body_hash == hash
                && c.divisor_bits == divisor_bits
                && c.attributes == attributes
            {
                c.pass = pass;
                return c.projection.clone();
            }
        }
        let projection = Arc::new(project());
        self.inner.by_path.insert(
            path.to_string(),
            Cached {
                body_len: body.len(),
                body_hash: hash,
                attributes: attributes.to_string(),
                divisor_bits,
                projection: projection.clone(),
                pass,
            },
        );
        projection
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let pass = self.pass;
        self.inner.by_path.retain(|_, c| c.pass == pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn projection(text: &str) -> Projection {
        Projection {
            attributes: Arc::new(Map::new()),
            attributes_json: "{}".into(),
            full: text.into(),
            cheap: String::new(),
            v_tokens: 1,
            s_tokens: 0,
        }
    }

    #[test]
    fn unchanged_rows_are_projected_once_and_changed_ones_again() {
        let cache = ProjectionCache::new();
        let mut calls = 0;
        for _ in 0..3 {
            let mut pass = cache.pass();
            pass.get_or_project("known://a", "body", "{}", 2.0, || {
                calls += 1;
                projection("a")
            });
        }
        assert_eq!(calls, 1);
        let mut pass = cache.pass();
        let p = pass.get_or_project("known://a", "body!", "{}", 2.0, || projection("b"));
        assert_eq!(p.full, "b");
        let p = pass.get_or_project("known://a", "body!", "{\"x\":1}", 2.0, || projection("c"));
        assert_eq!(p.full, "c");
        let p = pass.get_or_project("known://a", "body!", "{\"x\":1}", 3.0, || projection("d"));
        assert_eq!(p.full, "d");
    }

    #[test]
    fn paths_a_pass_did_not_use_are_dropped() {
        let cache = ProjectionCache::new();
        {
            let mut pass = cache.pass();
            pass.get_or_project("a", "1", "{}", 2.0, || projection("a"));
            pass.get_or_project("b", "1", "{}", 2.0, || projection("b"));
        }
        assert_eq!(cache.len(), 2);
        {
            let mut pass = cache.pass();
            pass.get_or_project("b", "1", "{}", 2.0, || projection("b"));
        }
        assert_eq!(cache.len(), 1);
    }
}
