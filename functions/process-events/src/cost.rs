//! What one record cost: DynamoDB requests and ChargebackStop calls, read from running totals
//! before and after it (the "event processed" log line's figures).

/// What a record cost, read before and after it (see `CostMeter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Every DynamoDB request, the bookkeeping's included.
    pub dynamo_reads: u64,
    pub dynamo_writes: u64,
    /// Of those, the bookkeeping tables' (the insights counters, the transactions index the
    /// matching keeps): not the event's own state.
    pub bookkeeping_reads: u64,
    pub bookkeeping_writes: u64,
    pub api_calls: u64,
}

impl Cost {
    pub fn since(self, before: Cost) -> Cost {
        Cost {
            dynamo_reads: self.dynamo_reads - before.dynamo_reads,
            dynamo_writes: self.dynamo_writes - before.dynamo_writes,
            bookkeeping_reads: self.bookkeeping_reads - before.bookkeeping_reads,
            bookkeeping_writes: self.bookkeeping_writes - before.bookkeeping_writes,
            api_calls: self.api_calls - before.api_calls,
        }
    }
}

/// Running totals of DynamoDB requests and ChargebackStop calls. Records are processed one
/// after another, so the difference of two readings is one record's cost.
pub trait CostMeter: Send + Sync {
    fn reading(&self) -> Cost;
}
