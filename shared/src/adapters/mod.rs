//! DynamoDB, SQS, SNS, HTTP and in-memory implementations of the ports.

pub mod aws;
pub mod dead_letter_queue;
pub mod dynamo;
pub mod memory;
pub mod memory_commit;
pub mod memory_insights;
pub mod memory_journal;
pub mod memory_orders;
pub mod memory_records;
pub mod memory_recovery;
pub mod memory_run_state;
pub mod memory_transactions;
pub mod notify;
pub mod refund_hook;
