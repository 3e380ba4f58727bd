//! Matching alerts to the partner's own transactions, and the evidence of the matched order.
//!
//! - `keys`: the index entries written when orders and their updates enter the outbox
//!   (`IndexedOutbox`), one partition per lookup: `itid#`, `arn#`, `auth#`, `card#` (sorted by
//!   authorisation time, so the date window is a range), `order#` (facts), `customer#` (alerts);
//! - `matcher`: the methods in the order (integration transaction id, ARN, auth code +
//!   last 4 + amount, BIN + last 4 + amount + currency within the window), descriptor as the
//!   tie-breaker; AMBIGUOUS is a result;
//! - `evidence`: refunds, disputes, cancellation, subscription, the customer's earlier alerts;
//!   `IndexedPartnerRecords` is the real `PartnerRecords` of the decision policy.
//!
//! Reads per alert: at most 4 for the match, 2 for the evidence, whatever the number of stored
//! transactions (tests: `reads_per_alert_do_not_grow_with_the_number_of_transactions`).

pub mod decision_words;
pub mod dry_run;
pub mod evidence;
pub mod indexed_outbox;
pub mod keys;
pub mod late;
pub mod matcher;
pub mod on_record;

pub use evidence::{evidence_for_alert, IndexedPartnerRecords};
pub use indexed_outbox::IndexedOutbox;
pub use matcher::match_alert;
pub use on_record::record_match;

#[cfg(test)]
mod late_tests;
#[cfg(test)]
mod tests;
