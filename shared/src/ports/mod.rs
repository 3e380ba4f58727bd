//! The traits the domain needs, named after what they do for it.
pub mod alert_api;
pub mod alert_store;
pub mod customer_store;
pub mod dead_letters;
pub mod decision_inputs;
pub mod enrolment_api;
pub mod enrolment_store;
pub mod event_archive;
pub mod event_log;
pub mod notifier;
pub mod operator_keys;
pub mod order_api;
pub mod order_outbox;
pub mod reconcile_cursors;
pub mod run_state;
pub mod store_error;
