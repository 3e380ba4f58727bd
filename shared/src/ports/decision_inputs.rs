//! What the alert policy reads besides the alert: the organisation's policy and the partner's
//! own records of the transaction.

use super::store_error::StoreError;
use crate::models::alert::Alert;
use crate::records::alert_policy::{AlertPolicy, PolicyLoad};

#[async_trait::async_trait]
pub trait PolicySource: Send + Sync {
    /// The organisation's policy (the customer record's `decision_policy`), or the default.
    async fn policy_for(&self, organisation_id: &str) -> Result<AlertPolicy, StoreError>;
}

/// Every organisation's policy for a scheduled run: read once (not once per alert), then looked
/// up per organisation only when the run's read was incomplete.
#[async_trait::async_trait]
pub trait PolicyCatalogue: Send + Sync {
    /// Every policy of up to `max_customers` customers, with the problems met on the way
    /// (undecodable items, invalid policies). Never fails: a failed read gives the default
    /// with `complete = false`.
    async fn load(&self, max_customers: usize) -> PolicyLoad;

    /// One organisation's policy (or the default), when [`PolicyLoad::complete`] is false.
    async fn lookup(&self, organisation_id: &str) -> Result<AlertPolicy, StoreError>;
}

/// The partner's own view of the alerted transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartnerEvidence {
    /// `Some(true)` when the partner's records show the transaction fully refunded;
    /// `None` when they do not know the transaction.
    pub refunded: Option<bool>,
    /// The match (method, confidence, candidates) and the evidence of the matched order, when
    /// the partner's transactions were searched.
    pub matching: Option<crate::records::matching::MatchRecord>,
}

impl PartnerEvidence {
    pub fn evidence(&self) -> Option<&crate::records::matching::Evidence> {
        self.matching.as_ref()?.evidence.as_ref()
    }

    /// MATCHED / AMBIGUOUS / UNMATCHED, when the transactions were searched.
    pub fn match_status(&self) -> Option<crate::records::matching::MatchStatus> {
        self.matching.as_ref().map(|m| m.matched.status)
    }
}

#[async_trait::async_trait]
pub trait PartnerRecords: Send + Sync {
    /// Looks the transaction up by ARN / authorisation code / integration transaction id.
    async fn evidence_for(&self, alert: &Alert) -> Result<PartnerEvidence, StoreError>;

    /// The alert was left waiting with this match: an unmatched or ambiguous one is kept where
    /// a later order can find it (late data). Nothing by default.
    async fn left_waiting(
        &self,
        _alert: &Alert,
        _matching: &crate::records::matching::MatchRecord,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Knows nothing, so only the amount rules apply: for tests and for a deployment without the
/// transactions index (`domain::matching::IndexedPartnerRecords` is the real one).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPartnerRecords;

#[async_trait::async_trait]
impl PartnerRecords for NoPartnerRecords {
    async fn evidence_for(&self, _alert: &Alert) -> Result<PartnerEvidence, StoreError> {
        Ok(PartnerEvidence::default())
    }
}
