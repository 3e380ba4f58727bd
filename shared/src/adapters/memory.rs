//! In-memory implementations of the ports, for unit tests only.
