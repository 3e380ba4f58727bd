//! The traits the domain needs, named after what they do for it.
pub mod event_log;
pub mod notifier;
pub mod store_error;
pub mod customer_store;
pub mod operator_keys;
pub mod order_api;
pub mod order_outbox;
