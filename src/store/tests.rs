//! Store operation tests on a real temporary database.
