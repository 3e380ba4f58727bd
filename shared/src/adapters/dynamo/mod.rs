//! DynamoDB adapters, one file per table. Items are mapped with `serde_dynamo`.
pub mod events;
pub mod table;
pub mod customers;
pub mod operators;
pub mod orders;
pub mod alerts;
pub mod enrolments;
