//! The hash map for per-turn indexes over a run's rows.
//!
//! Several maps are rebuilt or probed once per row every turn; std's
//! SipHash made hashing most of their cost. foldhash is several times
//! faster on short keys such as paths and ids, and its `RandomState` is
//! seeded per process, so keys a model chooses cannot be aimed at
//! collisions.

pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// An empty map sized for `capacity` entries.
pub fn with_capacity<K, V>(capacity: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(capacity, foldhash::fast::RandomState::default())
}
