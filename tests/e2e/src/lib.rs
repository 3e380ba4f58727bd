//! Helpers for the end-to-end tests live in the devstack crate; this crate only holds tests.
