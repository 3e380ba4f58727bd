//! The match on the alert record: process-events runs it before the policy acts, and
//! `cbs rebuild` runs it again for every alert it restores from the archive, so a rebuilt
//! record carries the same `alert_match` as the one it replaces (one code path, no copy).

use crate::domain::alert_policy::{evaluate, AlertPolicy, Evaluation};
use crate::domain::alert_record::update_alert_record;
use crate::models::alert::Alert;
use crate::ports::alert_store::AlertStore;
use crate::ports::decision_inputs::PartnerRecords;
use crate::ports::store_error::StoreError;
use crate::records::alert::AlertRecord;
use crate::records::matching::{MatchRecord, MatchStatus};

/// Matches `alert` (the partner's records: the match and its evidence), lets `policy` evaluate
/// it, and stores the match, its evidence and the deciding rule on the alert's record (written
/// only when it changed; `matched_at` is when that match was first made). An unmatched or ambiguous alert is kept where an order taken in
/// later finds it (late data). Returns the evaluation, for the caller to act on or not.
pub async fn record_match(
    alerts: &dyn AlertStore,
    partner_records: &dyn PartnerRecords,
    policy: &AlertPolicy,
    alert: &Alert,
) -> Result<Evaluation, StoreError> {
    let (evaluation, matching) = evaluate_match(partner_records, policy, alert).await?;
    if let Some(matching) = matching {
        // The match, its evidence and the deciding rule, on the record before anything is
        // sent: the audit trail shows what the decision rested on even if the action fails.
        update_alert_record(alerts, &alert.id, |current| {
            let mut record = current?;
            if !put_match(&mut record, &matching) {
                return None;
            }
            record.revision += 1;
            Some(record)
        })
        .await?;
    }
    Ok(evaluation)
}

/// `record_match` without the record's write: the evaluation and the match to put on the record
/// (`put_match`); an unmatched or ambiguous alert is kept where a later order finds it.
pub async fn evaluate_match(
    partner_records: &dyn PartnerRecords,
    policy: &AlertPolicy,
    alert: &Alert,
) -> Result<(Evaluation, Option<MatchRecord>), StoreError> {
    let evidence = partner_records.evidence_for(alert).await?;
    let evaluation = evaluate(alert, policy, &evidence);
    let Some(mut matching) = evidence.matching.clone() else {
        return Ok((evaluation, None));
    };
    matching.rule = Some(evaluation.rule.clone());
    if matching.matched.status != MatchStatus::Matched {
        partner_records.left_waiting(alert, &matching).await?;
    }
    Ok((evaluation, Some(matching)))
}

/// Puts `matching` on the record (pure); false when the same match is there already (a
/// redelivered event): it keeps the time it was first made, and nothing needs writing.
pub fn put_match(record: &mut AlertRecord, matching: &MatchRecord) -> bool {
    if let Some(stored) = &record.alert_match {
        let mut again = matching.clone();
        again.matched.matched_at = stored.matched.matched_at.clone();
        if *stored == again {
            return false;
        }
    }
    record.alert_match = Some(matching.clone());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryAlertStore;
    use crate::adapters::memory_transactions::MemoryTransactionIndex;
    use crate::clock::{Clock, FixedClock};
    use crate::domain::alert_record::store_fetched_alert;
    use crate::domain::matching::IndexedPartnerRecords;
    use crate::domain::test_support::{alert, ts};
    use std::sync::Arc;

    #[tokio::test]
    async fn the_same_match_found_again_keeps_its_time_and_writes_nothing() {
        let clock = Arc::new(FixedClock::at(ts("2026-11-24T10:00:00Z")));
        let alerts = MemoryAlertStore::default();
        let records =
            IndexedPartnerRecords::new(Arc::new(MemoryTransactionIndex::default()), clock.clone());
        let a = alert("a1", "ETHOCA_ALERT", "ACTION_REQUIRED", 100);
        store_fetched_alert(&alerts, &a, clock.now()).await.unwrap();
        let policy = AlertPolicy::default();
        record_match(&alerts, &records, &policy, &a).await.unwrap();
        let first = alerts.get("a1").await.unwrap().unwrap();
        let matched = first
            .alert_match
            .clone()
            .expect("matched (unmatched is a result)");
        assert_eq!(matched.matched.matched_at, "2026-11-24T10:00:00.000Z");

        clock.advance(chrono::Duration::minutes(5));
        record_match(&alerts, &records, &policy, &a).await.unwrap();
        let again = alerts.get("a1").await.unwrap().unwrap();
        assert_eq!(again.alert_match, first.alert_match, "first time kept");
        assert_eq!(again.revision, first.revision, "not written again");
    }
}
