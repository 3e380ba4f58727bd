//! The seeded schedule of one chaos run: the workload (alerts, operator actions, enrolment
//! changes, order imports) and the faults, as steps at offsets from the start of the fault phase.
//! Pure: the same seed and length give the same plan.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Duration;

/// Timing of the compressed alert lifecycle. Deadlines are minutes away (never seconds), so a
/// slow two-core machine still has real time to act before them.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// An Ethoca alert's deadline is this many seconds after it is simulated (min..max).
    pub deadline_secs: (u64, u64),
    /// `SWEEP_CUTOFF`: the sweep acts this long before the deadline.
    pub cutoff_secs: u64,
    /// `SWEEP_WARN_THRESHOLDS`.
    pub warn_thresholds: &'static str,
    pub sweep_every_secs: u64,
    pub upload_every_secs: u64,
    /// The longest full API or DynamoDB outage: well inside the cutoff, so the system is up for
    /// part of the time before every deadline.
    pub max_outage_secs: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            deadline_secs: (270, 360),
            cutoff_secs: 120,
            warn_thresholds: "4m,3m",
            sweep_every_secs: 15,
            upload_every_secs: 20,
            max_outage_secs: 25,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum Step {
    /// An Ethoca alert for organisation `org`; an operator acts on it `operator_after` seconds
    /// after it was created, when set (a "race" lands within seconds of the sweep's cutoff).
    EthocaAlert {
        org: usize,
        amount: i64,
        deadline_secs: u64,
        operator_after: Option<u64>,
        operator_action: &'static str,
    },
    RdrAlert {
        org: usize,
        amount: i64,
    },
    /// ChargebackStop moves the organisation's RDR enrolment to `status` (then back to ENABLED
    /// `back_after` seconds later).
    EnrolmentChange {
        org: usize,
        status: &'static str,
        back_after: u64,
    },
    /// An order import through the ops API: `count` orders, `bad_integration` of them with an
    /// integration ChargebackStop does not know (they must end FAILED with the reason);
    /// `invalid_first`: first sent with one order missing a field (refused whole), then corrected;
    /// `resend`: the same import sent again (nothing may be created twice).
    ImportOrders {
        org: usize,
        batch: usize,
        count: usize,
        bad_integration: usize,
        invalid_first: bool,
        resend: bool,
    },
    Fault(Fault),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub enum Fault {
    /// `error_rate` (share of API requests answered `status`) for `secs`.
    ApiErrors {
        rate: f64,
        status: u16,
        secs: u64,
    },
    /// The next `n` API requests get 429.
    Burst429 {
        n: u32,
    },
    ApiLatency {
        ms: u64,
        secs: u64,
    },
    /// The next `n` webhooks are dropped; redelivered late, `late_secs` afterwards.
    DropWebhooks {
        n: u32,
        late_secs: u64,
    },
    DuplicateWebhooks {
        secs: u64,
    },
    /// Webhooks delivered in swapped pairs for `secs`.
    ReorderWebhooks {
        secs: u64,
    },
    /// ChargebackStop redelivers `n` already delivered events (picked by `pick`).
    LateRedeliveries {
        n: u32,
        pick: u64,
    },
    /// The edge Worker cannot reach SQS for `secs`.
    EdgeSqsDown {
        secs: u64,
    },
    /// The functions cannot reach DynamoDB for `secs`.
    DynamoDown {
        secs: u64,
    },
    /// `process-events` killed (SIGKILL) while it works, restarted `restart_after` seconds later.
    KillProcessor {
        restart_after: u64,
    },
    /// A run of `function` killed `kill_after_ms` into it, restarted `restart_after` s later.
    KillScheduledRun {
        function: &'static str,
        kill_after_ms: u64,
        restart_after: u64,
    },
    /// Two runs of `function` at the same moment.
    OverlappingRuns {
        function: &'static str,
    },
}

impl Fault {
    /// How long the fault lasts (0 for one-off faults).
    pub fn secs(&self) -> u64 {
        match self {
            Fault::ApiErrors { secs, .. }
            | Fault::ApiLatency { secs, .. }
            | Fault::DuplicateWebhooks { secs }
            | Fault::ReorderWebhooks { secs }
            | Fault::EdgeSqsDown { secs }
            | Fault::DynamoDown { secs } => *secs,
            Fault::DropWebhooks { late_secs, .. } => *late_secs,
            _ => 0,
        }
    }

    /// A short name for the report's timeline.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::ApiErrors { .. } => "api_5xx",
            Fault::Burst429 { .. } => "api_429_burst",
            Fault::ApiLatency { .. } => "api_latency",
            Fault::DropWebhooks { .. } => "webhook_drop_late_redelivery",
            Fault::DuplicateWebhooks { .. } => "webhook_duplicates",
            Fault::ReorderWebhooks { .. } => "webhook_reorder",
            Fault::LateRedeliveries { .. } => "webhook_late_redelivery",
            Fault::EdgeSqsDown { .. } => "edge_sqs_unreachable",
            Fault::DynamoDown { .. } => "dynamodb_unreachable",
            Fault::KillProcessor { .. } => "kill_processor",
            Fault::KillScheduledRun { .. } => "kill_scheduled_run",
            Fault::OverlappingRuns { .. } => "overlapping_runs",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Planned {
    /// Seconds from the start of the fault phase.
    pub at: f64,
    pub step: Step,
}

impl Planned {
    pub fn at(&self) -> Duration {
        Duration::from_secs_f64(self.at)
    }
}

/// The run's steps, sorted by time. `orgs` organisations are onboarded before the phase starts.
pub fn build(seed: u64, minutes: f64, orgs: usize, timing: &Timing) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let phase = (minutes * 60.0).max(30.0);
    let mut steps = Vec::new();
    let orgs = orgs.max(1);

    // Ethoca alerts all through the phase.
    let mut t = rng.random_range(1.0..4.0);
    while t < phase {
        let deadline_secs = rng.random_range(timing.deadline_secs.0..=timing.deadline_secs.1);
        let operator_after = if rng.random_bool(0.35) {
            if rng.random_bool(0.5) {
                Some(rng.random_range(10..60))
            } else {
                // Race the sweep at its cutoff.
                let at_cutoff = deadline_secs.saturating_sub(timing.cutoff_secs);
                Some((at_cutoff + rng.random_range(0..6)).saturating_sub(3))
            }
        } else {
            None
        };
        steps.push(Planned {
            at: t,
            step: Step::EthocaAlert {
                org: rng.random_range(0..orgs),
                amount: [500, 1500, 8_000, 30_000, 60_000][rng.random_range(0..5)],
                deadline_secs,
                operator_after,
                operator_action: ["REFUND", "ACCEPT_DISPUTE"][rng.random_range(0..2)],
            },
        });
        t += rng.random_range(5.0..11.0);
    }
    let mut t = rng.random_range(2.0..10.0);
    while t < phase {
        steps.push(Planned {
            at: t,
            step: Step::RdrAlert {
                org: rng.random_range(0..orgs),
                amount: rng.random_range(1_000..20_000),
            },
        });
        t += rng.random_range(12.0..25.0);
    }
    let mut t = rng.random_range(20.0..40.0);
    while t < phase - 20.0 {
        steps.push(Planned {
            at: t,
            step: Step::EnrolmentChange {
                org: rng.random_range(0..orgs),
                status: ["ACTION_REQUIRED", "PAUSED", "IN_PROGRESS"][rng.random_range(0..3)],
                back_after: rng.random_range(10..30),
            },
        });
        t += rng.random_range(40.0..80.0);
    }
    let mut t = rng.random_range(3.0..15.0);
    let mut batch = 0;
    while t < phase {
        let count = rng.random_range(5..40);
        steps.push(Planned {
            at: t,
            step: Step::ImportOrders {
                org: rng.random_range(0..orgs),
                batch,
                count,
                bad_integration: if rng.random_bool(0.4) {
                    rng.random_range(1..3)
                } else {
                    0
                },
                invalid_first: rng.random_bool(0.3),
                resend: rng.random_bool(0.3),
            },
        });
        batch += 1;
        t += rng.random_range(15.0..35.0);
    }

    // Faults that last: one at a time, back to back with short calm gaps; every kind once
    // before any kind twice (a shuffled deck), so even a short run meets each of them.
    let mut t = rng.random_range(3.0..8.0);
    let mut deck = Deck::new(7);
    while t < phase {
        let outage = timing.max_outage_secs;
        let fault = match deck.draw(&mut rng) {
            // An outage of the API, or a storm of errors among successes.
            0 if rng.random_bool(0.5) => Fault::ApiErrors {
                rate: 1.0,
                status: [500, 502, 503][rng.random_range(0..3)],
                secs: rng.random_range(8..=outage),
            },
            0 => Fault::ApiErrors {
                rate: rng.random_range(0.2..0.6),
                status: [500, 502, 503][rng.random_range(0..3)],
                secs: rng.random_range(12..30),
            },
            1 => Fault::EdgeSqsDown {
                secs: rng.random_range(8..=outage),
            },
            2 => Fault::ApiLatency {
                ms: rng.random_range(300..2_000),
                secs: rng.random_range(12..25),
            },
            3 => Fault::DropWebhooks {
                n: rng.random_range(1..4),
                late_secs: rng.random_range(12..30),
            },
            4 => Fault::DuplicateWebhooks {
                secs: rng.random_range(10..25),
            },
            5 => Fault::ReorderWebhooks {
                secs: rng.random_range(10..25),
            },
            _ => Fault::DynamoDown {
                secs: rng.random_range(8..=outage),
            },
        };
        let secs = fault.secs() as f64;
        steps.push(Planned {
            at: t,
            step: Step::Fault(fault),
        });
        t += secs + rng.random_range(2.0..6.0);
    }
    // One-off faults, sprinkled (a deck too).
    let mut t = rng.random_range(8.0..20.0);
    let mut deck = Deck::new(5);
    while t < phase {
        let fault = match deck.draw(&mut rng) {
            0 => Fault::Burst429 {
                n: rng.random_range(10..60),
            },
            1 => Fault::LateRedeliveries {
                n: rng.random_range(1..4),
                pick: rng.random(),
            },
            2 => Fault::KillProcessor {
                restart_after: rng.random_range(2..8),
            },
            3 => Fault::KillScheduledRun {
                function: ["order-upload", "deadline-sweep"][rng.random_range(0..2)],
                kill_after_ms: rng.random_range(300..3_000),
                restart_after: rng.random_range(2..8),
            },
            _ => Fault::OverlappingRuns {
                function: ["order-upload", "deadline-sweep"][rng.random_range(0..2)],
            },
        };
        steps.push(Planned {
            at: t,
            step: Step::Fault(fault),
        });
        t += rng.random_range(10.0..22.0);
    }
    steps.sort_by(|a, b| a.at.total_cmp(&b.at));
    steps
}

/// `0..n` in a seeded random order, reshuffled when used up.
struct Deck {
    n: usize,
    cards: Vec<usize>,
}

impl Deck {
    fn new(n: usize) -> Self {
        Self {
            n,
            cards: Vec::new(),
        }
    }

    fn draw(&mut self, rng: &mut StdRng) -> usize {
        if self.cards.is_empty() {
            self.cards = (0..self.n).collect();
            // Fisher-Yates.
            for i in (1..self.n).rev() {
                let j = rng.random_range(0..=i);
                self.cards.swap(i, j);
            }
        }
        self.cards.pop().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let t = Timing::default();
        assert_eq!(build(7, 3.0, 3, &t), build(7, 3.0, 3, &t));
        assert_ne!(build(7, 3.0, 3, &t), build(8, 3.0, 3, &t));
    }

    #[test]
    fn outages_stay_shorter_than_the_cutoff_and_deadlines_are_minutes_away() {
        let t = Timing::default();
        for seed in 0..50 {
            for p in build(seed, 5.0, 3, &t) {
                match p.step {
                    Step::Fault(Fault::ApiErrors { rate, secs, .. }) if rate >= 1.0 => {
                        assert!(secs <= t.max_outage_secs)
                    }
                    Step::Fault(Fault::EdgeSqsDown { secs } | Fault::DynamoDown { secs }) => {
                        assert!(secs <= t.max_outage_secs && secs < t.cutoff_secs)
                    }
                    Step::EthocaAlert { deadline_secs, .. } => assert!(deadline_secs >= 240),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn a_three_minute_plan_has_every_kind_of_fault() {
        let t = Timing::default();
        for seed in 0..20 {
            let mut seen = std::collections::BTreeSet::new();
            for p in build(seed, 3.0, 3, &t) {
                if let Step::Fault(f) = p.step {
                    seen.insert(f.name());
                }
            }
            assert_eq!(seen.len(), 12, "seed {seed}: {seen:?}");
        }
    }
}
