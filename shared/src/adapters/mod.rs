//! DynamoDB, SQS, SNS, HTTP and in-memory implementations of the ports.

pub mod aws;
pub mod dynamo;
pub mod memory;
pub mod notify;
pub mod memory_orders;
