//! Records the ports carry, below both the domain logic that builds them and the ports that
//! store them (so neither imports the other in a circle). Plain data and simple questions about
//! it; the rules that change them live in `domain`.
/// An alert as kept in the `alerts` table, with our decisions and the action claim.
pub mod alert;
/// An organisation's decision policy, its own rules, and a run's read of every policy.
pub mod alert_policy;
/// Our own bookkeeping on an alert or enrolment record, as the journal keeps it.
pub mod bookkeeping;
/// A customer as kept in the `customers` table, and how far its onboarding got.
pub mod customer;
/// An enrolment as kept in the `enrolments` table, with its status history.
pub mod enrolment;
/// The partner's indexed transactions, and the match kept on an alert.
pub mod matching;
/// Where reconciliation of an organisation stands between runs (the `cursors` table).
pub mod reconcile;
/// How a policy names the partner's billing system, and what an alert keeps of its answer.
pub mod refund_hook;
/// TEST or LIVE: the stack a record belongs to.
pub mod stack_mode;
