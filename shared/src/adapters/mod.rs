//! DynamoDB, SQS, SNS and in-memory implementations of the ports.
