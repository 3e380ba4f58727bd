//! Replaying archived events through the processor, the very path a queue message takes
//! (`EventProcessor::process`): claim in the events table, re-fetch the object, store it with
//! the versioned writes, decide. An event already COMPLETED is reported and skipped unless
//! `reprocess`, which reopens its record first; the processor re-fetches the object either way,
//! so a replay never acts on the archived (possibly stale) payload.
//!
//! A delivery the edge refused (`super::refused`) is replayed only when the replayer holds the
//! signing secret (`cbs events replay --refused`) and the archived bytes verify with it as they
//! would have when they arrived; otherwise it is reported, never processed. An accepted
//! delivery of the same event is always preferred to a refused one.

use crate::domain::event_processing::{EventProcessor, IncomingEvent, ProcessError};
use crate::ports::event_archive::{ArchivedDelivery, EventArchive};
use crate::ports::event_log::EventStatus;
use crate::ports::store_error::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::archive::NO_DELIVERY_ID;
use super::refused::{original_delivery_id, refused_reason, verify_again};
use crate::signature::WebhookSecrets;

/// Which archived events to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplaySelection {
    /// These events (their latest delivery each); when empty, the time window below.
    pub event_ids: Vec<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// `alert.*` (a prefix) or an exact type.
    pub event_type: Option<String>,
    pub organisation_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Report what would happen; change nothing.
    pub dry_run: bool,
    /// Re-run events already COMPLETED.
    pub reprocess: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReplayResult {
    /// Applied now, with the processor's outcome.
    Replayed { outcome: String },
    /// COMPLETED before: skipped (`--reprocess` re-runs it).
    SkippedCompleted { outcome: String },
    /// Dry run: would be applied.
    WouldReplay,
    /// Dry run: COMPLETED, would be re-run (`--reprocess`).
    WouldReprocess,
    /// Another worker holds the event right now: try again shortly.
    Busy,
    /// Failed (or dead-lettered) with the reason; the event is left for a later replay.
    Failed { reason: String },
    /// No archived delivery of this event id.
    NotArchived,
    /// Only a delivery the edge refused is archived, and this replay was not asked to verify
    /// refused deliveries (`--refused`): left as it is.
    RefusedAtEdge { reason: String },
    /// The edge refused it and it does not verify with the current secret either (a forged
    /// request, or the secret is still wrong): not processed.
    StillRefused { reason: String },
}

impl ReplayResult {
    pub fn label(&self) -> &'static str {
        match self {
            ReplayResult::Replayed { .. } => "replayed",
            ReplayResult::SkippedCompleted { .. } => "skipped (completed)",
            ReplayResult::WouldReplay => "would replay",
            ReplayResult::WouldReprocess => "would reprocess",
            ReplayResult::Busy => "busy",
            ReplayResult::Failed { .. } => "failed",
            ReplayResult::NotArchived => "not archived",
            ReplayResult::RefusedAtEdge { .. } => "refused at the edge",
            ReplayResult::StillRefused { .. } => "still refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayItem {
    pub event_id: String,
    pub event_type: Option<String>,
    pub received_at: Option<String>,
    #[serde(flatten)]
    pub result: ReplayResult,
}

/// Counts per result label, for the summary table.
pub fn summarise(items: &[ReplayItem]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for item in items {
        *out.entry(item.result.label()).or_default() += 1;
    }
    out
}

fn type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => event_type == pattern,
    }
}

#[derive(Clone)]
pub struct Replayer {
    pub processor: EventProcessor,
    pub archive: Arc<dyn EventArchive>,
    /// The webhook signing secret(s), when this replay may verify and replay deliveries the
    /// edge refused (`--refused`); `None` reports them as refused and leaves them.
    pub verify_refused_with: Option<WebhookSecrets>,
}

/// What `select` found: the deliveries to replay, and the requested ids with none archived.
#[derive(Debug, Default)]
pub struct Selected {
    pub deliveries: Vec<ArchivedDelivery>,
    pub not_archived: Vec<String>,
}

impl Replayer {
    /// One delivery per event (the latest received), oldest first, filtered.
    pub async fn select(&self, selection: &ReplaySelection) -> Result<Selected, StoreError> {
        let mut found = Selected::default();
        let mut all = Vec::new();
        if selection.event_ids.is_empty() {
            let now = self.processor.clock.now();
            let since = selection.since.unwrap_or(now - chrono::Duration::days(1));
            let until = selection
                .until
                .unwrap_or(now + chrono::Duration::minutes(1));
            all = self.archive.received_between(since, until).await?;
        } else {
            for id in &selection.event_ids {
                let deliveries = self.archive.deliveries_of(id).await?;
                if deliveries.is_empty() {
                    found.not_archived.push(id.clone());
                }
                all.extend(deliveries);
            }
        }
        let mut latest: BTreeMap<String, ArchivedDelivery> = BTreeMap::new();
        for d in all {
            if selection
                .event_type
                .as_deref()
                .is_some_and(|p| !type_matches(p, &d.event_type))
            {
                continue;
            }
            if selection
                .organisation_id
                .as_deref()
                .is_some_and(|o| d.organisation_id.as_deref() != Some(o))
            {
                continue;
            }
            // An accepted delivery before any refused one, then the latest received.
            let rank = |d: &ArchivedDelivery| (refused_reason(d).is_none(), d.received_at.clone());
            match latest.get(&d.event_id) {
                Some(kept) if rank(kept) >= rank(&d) => {}
                _ => {
                    latest.insert(d.event_id.clone(), d);
                }
            }
        }
        found.deliveries = latest.into_values().collect();
        found
            .deliveries
            .sort_by(|a, b| (&a.received_at, &a.event_id).cmp(&(&b.received_at, &b.event_id)));
        Ok(found)
    }

    /// Replays one archived delivery. `claim_until`: how long the claim lasts if this run dies.
    pub async fn replay_one(
        &self,
        delivery: &ArchivedDelivery,
        options: ReplayOptions,
        claim_until: DateTime<Utc>,
    ) -> ReplayItem {
        let result = self.result_of(delivery, options, claim_until).await;
        tracing::info!(
            event_id = %delivery.event_id,
            event_type = %delivery.event_type,
            result = result.label(),
            dry_run = options.dry_run,
            reprocess = options.reprocess,
            "event replayed from the archive"
        );
        ReplayItem {
            event_id: delivery.event_id.clone(),
            event_type: Some(delivery.event_type.clone()),
            received_at: Some(delivery.received_at.clone()),
            result,
        }
    }

    async fn result_of(
        &self,
        delivery: &ArchivedDelivery,
        options: ReplayOptions,
        claim_until: DateTime<Utc>,
    ) -> ReplayResult {
        if let Some(code) = refused_reason(delivery) {
            let Some(secrets) = &self.verify_refused_with else {
                return ReplayResult::RefusedAtEdge {
                    reason: format!(
                        "{code}: `--refused` verifies it with the current secret and replays it"
                    ),
                };
            };
            if let Err(e) = verify_again(delivery, secrets) {
                return ReplayResult::StillRefused {
                    reason: format!("refused at the edge ({code}); with the current secret: {e}"),
                };
            }
        }
        let events = &self.processor.events;
        let existing = match events.get(&delivery.event_id).await {
            Ok(r) => r,
            Err(e) => {
                return ReplayResult::Failed {
                    reason: e.to_string(),
                }
            }
        };
        let completed = existing.as_ref().filter(|r| {
            r.status == EventStatus::Completed
                && r.expires_at >= self.processor.clock.now().timestamp()
        });
        match (completed, options.reprocess, options.dry_run) {
            (Some(r), false, _) => {
                return ReplayResult::SkippedCompleted {
                    outcome: r.outcome.clone().unwrap_or_default(),
                }
            }
            (Some(_), true, true) => return ReplayResult::WouldReprocess,
            (None, _, true) => return ReplayResult::WouldReplay,
            (Some(_), true, false) => {
                if let Err(e) = events
                    .reopen(&delivery.event_id, self.processor.clock.now())
                    .await
                {
                    return ReplayResult::Failed {
                        reason: format!("could not reopen the completed event: {e}"),
                    };
                }
            }
            (None, _, false) => {}
        }
        let Some(body) = delivery.body_text() else {
            return ReplayResult::Failed {
                reason: "the archived body is not UTF-8 text (poison)".into(),
            };
        };
        let incoming = IncomingEvent {
            message_id: format!("replay:{}:{}", delivery.event_id, delivery.delivery_id),
            body: body.to_string(),
            idempotency_key: Some(original_delivery_id(&delivery.delivery_id))
                .filter(|id| *id != NO_DELIVERY_ID)
                .map(str::to_string),
            signature_timestamp: delivery.signature_timestamp,
            received_at: Some(delivery.received_at.clone()),
            receive_count: 1,
            sent_at: None,
        };
        match self.processor.process(&incoming, claim_until).await {
            Ok(p) if p.duplicate => ReplayResult::SkippedCompleted { outcome: p.outcome },
            Ok(p) => ReplayResult::Replayed { outcome: p.outcome },
            Err(ProcessError::Busy { .. }) => ReplayResult::Busy,
            Err(e) => ReplayResult::Failed {
                reason: e.to_string(),
            },
        }
    }

    /// Replays every selected event in order, within `deadline` (no new event is started after
    /// it; the rest are reported as not started). `progress` is called after each.
    pub async fn replay(
        &self,
        selected: &Selected,
        options: ReplayOptions,
        deadline: std::time::Instant,
        claim_secs: i64,
        mut progress: impl FnMut(&ReplayItem),
    ) -> Vec<ReplayItem> {
        let mut items: Vec<ReplayItem> = selected
            .not_archived
            .iter()
            .map(|id| ReplayItem {
                event_id: id.clone(),
                event_type: None,
                received_at: None,
                result: ReplayResult::NotArchived,
            })
            .collect();
        for delivery in &selected.deliveries {
            if std::time::Instant::now() >= deadline {
                items.push(ReplayItem {
                    event_id: delivery.event_id.clone(),
                    event_type: Some(delivery.event_type.clone()),
                    received_at: Some(delivery.received_at.clone()),
                    result: ReplayResult::Failed {
                        reason: "not started: out of time (run it again)".into(),
                    },
                });
                continue;
            }
            let claim_until = self.processor.clock.now() + chrono::Duration::seconds(claim_secs);
            let item = self.replay_one(delivery, options, claim_until).await;
            progress(&item);
            items.push(item);
        }
        items
    }
}
