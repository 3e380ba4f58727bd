//! The per-event costs `cbs-bench capacity` simulates, before and after issue 15's changes, as
//! `tests/e2e/tests/process_events.rs` measured them.

use super::{Cost, Costs};

/// Before this changes (2026-12-01, main at f4da523): an actioned alert 11 reads + 10
/// writes, its alert item written 3 times in the index, 3 insights transactions; the
/// `alert.updated` it causes fetched again.
pub(super) const COSTS_BEFORE: Costs = Costs {
    ethoca_actioned: Cost {
        alert_gets: 1,
        alert_patches: 1,
        enrolment_gets: 0,
        dynamo_requests: 21,
        index_writes: 3,
        day_transactions: 3,
    },
    rdr_informational: Cost {
        alert_gets: 1,
        alert_patches: 0,
        enrolment_gets: 0,
        dynamo_requests: 6,
        index_writes: 0,
        day_transactions: 1,
    },
    own_update: Cost {
        alert_gets: 1,
        alert_patches: 0,
        enrolment_gets: 0,
        dynamo_requests: 3,
        index_writes: 0,
        day_transactions: 1,
    },
    other: Cost {
        alert_gets: 0,
        alert_patches: 0,
        enrolment_gets: 1,
        dynamo_requests: 4,
        index_writes: 0,
        day_transactions: 0,
    },
};

/// Now: an actioned alert 6 reads + 2 writes (two transactions: the claim, then the decision
/// with the insights counters), so 2 index writes and 1 counting transaction; the
/// `alert.updated` our PATCH causes completes without a GET (2 reads + 1 write).
pub(super) const COSTS_NOW: Costs = Costs {
    ethoca_actioned: Cost {
        alert_gets: 1,
        alert_patches: 1,
        enrolment_gets: 0,
        dynamo_requests: 8,
        index_writes: 2,
        day_transactions: 1,
    },
    rdr_informational: Cost {
        alert_gets: 1,
        alert_patches: 0,
        enrolment_gets: 0,
        dynamo_requests: 4,
        index_writes: 0,
        day_transactions: 1,
    },
    own_update: Cost {
        alert_gets: 0,
        alert_patches: 0,
        enrolment_gets: 0,
        dynamo_requests: 3,
        index_writes: 0,
        day_transactions: 0,
    },
    other: Cost {
        alert_gets: 0,
        alert_patches: 0,
        enrolment_gets: 1,
        dynamo_requests: 3,
        index_writes: 0,
        day_transactions: 0,
    },
};
