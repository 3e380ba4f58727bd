//! DynamoDB adapters, one file per table. Items are mapped with `serde_dynamo`.
pub mod alerts;
pub mod archive;
pub mod cursors;
pub mod customers;
pub mod enrolments;
pub mod event_commit;
pub mod event_processor;
pub mod events;
pub mod insights;
pub mod journal;
pub mod operators;
pub mod orders;
pub mod run_state;
pub mod table;
pub mod transactions;
