//! Store operation tests on a real temporary database.
//!
//! Every operation runs through [`fixture::exec`], which wraps it in the same
//! immediate transaction `EntryStore::execute` uses, so "refused and changes
//! nothing" is checked with production's all-or-nothing semantics.

mod budget;
mod changes;
mod entries;
mod fixture;
mod incremental;
mod logs;
mod projects;
mod reads;
mod runs;
mod turns;
mod verbs;
