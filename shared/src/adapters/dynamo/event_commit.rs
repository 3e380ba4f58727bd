//! `EventCommitter` over DynamoDB: one `TransactWriteItems` across the `archive`, `events`,
//! `alerts` and `enrolments` tables (one write request; each item costs twice the WCU of a plain
//! write, see docs/capacity.md). An alert or enrolment written carries its bookkeeping journal
//! item along (`journal`, in the archive table), so the journal is written exactly when the
//! record is.
//!
//! Each item carries the condition of its own single write (`events::claim_condition`,
//! `events::held_condition`, `table::versioned_condition`); the archive item is an UpdateItem
//! that sets every attribute `if_not_exists`, so a delivery archived before never refuses the
//! transaction and is never overwritten. A cancelled transaction is mapped item by item
//! (`refusal`): a ConditionalCheckFailed on the event is the same answer a refused claim or
//! `complete` gives, on the alert or enrolment the same `StoreError::Conflict` their `put`
//! gives; anything else (a transaction conflict, throttling) is transient.
//!
//! After a commit that finishes an event with an alert record, the record's insights facts are
//! counted once (`domain::insights::counting`), as `CountingAlertStore` does after each put.

use super::alerts::DynamoAlertStore;
use super::archive::DynamoEventArchive;
use super::events::{claim_condition, finish_update, held_condition, DynamoEventLog};
use super::insights::DynamoInsightsStore;
use super::journal::DynamoBookkeepingJournal;
use super::table::{conditional_put as put, set_if_absent, versioned_condition, Item, Table};
use crate::clock::Clock;
use crate::domain::insights::counting::count_logged;
use crate::domain::insights::facts::alert_facts_with_match;
use crate::ports::event_commit::{CommitError, EventCommit, EventCommitter, EventWrite};
use crate::ports::event_log::{EventLog, EventRecord, EventStatus};
use crate::ports::insights_store::Subject;
use crate::ports::store_error::StoreError;
use crate::ports::transaction_index::IndexWrite;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use std::sync::Arc;

/// TransactWriteItems takes at most 100 items.
const MAX_TRANSACTION_ITEMS: usize = 100;

/// Which part of the commit an item of the transaction is (the cancellation reasons come in the
/// order of the items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Archive,
    Event,
    Alert,
    Enrolment,
    /// The bookkeeping journal item of the alert or enrolment written (`journal`): never
    /// conditional, so never the reason of a refusal.
    Journal,
    Index,
    /// The insights counters of the event's last alert write (`DynamoInsightsStore::actions_for`).
    Insights,
}

/// One cancellation reason: DynamoDB's code (`None`, `ConditionalCheckFailed`,
/// `TransactionConflict`, `ThrottlingError`, ...) and the item as it stood, when the failed
/// condition asked for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reason {
    pub code: Option<String>,
    pub item: Option<Item>,
}

pub struct DynamoEventCommitter {
    pub(crate) events: DynamoEventLog,
    pub(crate) events_table: Table,
    pub(crate) alerts: DynamoAlertStore,
    pub(crate) alerts_table: Table,
    pub(crate) enrolments_table: Table,
    pub(crate) archive_table: Table,
    /// The alert's or enrolment's bookkeeping, journaled with each record write (in the
    /// archive table).
    pub(crate) journal: DynamoBookkeepingJournal,
    /// The transactions index, for the entries the matching held (`None`: refused).
    pub(crate) index_table: Option<Table>,
    /// Counts the facts of an event's last alert write (`None`: nothing counted): in the same
    /// transaction, or on its own when the counters refused it.
    pub(crate) insights: Option<(Arc<DynamoInsightsStore>, Arc<dyn Clock>)>,
}

impl DynamoEventCommitter {
    pub fn new(events: Table, alerts: Table, enrolments: Table, archive: Table) -> Self {
        Self {
            events: DynamoEventLog::new(events.clone()),
            events_table: events,
            alerts: DynamoAlertStore::new(alerts.clone()),
            alerts_table: alerts,
            enrolments_table: enrolments,
            journal: DynamoBookkeepingJournal::new(archive.clone()),
            archive_table: archive,
            index_table: None,
            insights: None,
        }
    }

    pub fn with_index(mut self, transactions: Table) -> Self {
        self.index_table = Some(transactions);
        self
    }

    pub fn counting_insights(
        mut self,
        insights: Arc<DynamoInsightsStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        self.insights = Some((insights, clock));
        self
    }

    fn items(
        &self,
        commit: &EventCommit,
    ) -> Result<(Vec<TransactWriteItem>, Vec<Part>), StoreError> {
        let mut items = Vec::new();
        let mut parts = Vec::new();
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Permanent {
            operation: "commit event",
            table: self.events_table.name.clone(),
            detail: e.to_string(),
        };
        if let Some(d) = &commit.archive {
            let mut attributes = DynamoEventArchive::to_item(d);
            let key: Item = ["event_id", "delivery_id"]
                .into_iter()
                .filter_map(|k| attributes.remove_entry(k))
                .collect();
            let (update, names, values) = set_if_absent(attributes);
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.archive_table.name)
                            .set_key(Some(key))
                            .update_expression(update)
                            .set_expression_attribute_names(Some(names))
                            .set_expression_attribute_values(Some(values))
                            .build()
                            .map_err(built)?,
                    )
                    .build(),
            );
            parts.push(Part::Archive);
        }
        if let Some(write) = &commit.event {
            items.push(self.event_item(write).map_err(|e| match e {
                Ok(b) => built(b),
                Err(s) => s,
            })?);
            parts.push(Part::Event);
        }
        if let Some(record) = &commit.alert {
            let item = self.alerts.to_item(record)?;
            let item = self.alerts_table.versioned_item("put alert", item)?;
            let condition = versioned_condition("alert_id", record.revision, &record.version_key);
            items.push(put(&self.alerts_table.name, item, condition).map_err(built)?);
            parts.push(Part::Alert);
            items.push(self.journal.alert_write(record)?);
            parts.push(Part::Journal);
        }
        if let Some(record) = &commit.enrolment {
            let item = serde_json::to_value(record)
                .map_err(|e| self.enrolments_table.bad_item("put enrolment", e))?;
            let item = self
                .enrolments_table
                .versioned_item("put enrolment", item)?;
            let condition =
                versioned_condition("enrolment_id", record.revision, &record.version_key);
            items.push(put(&self.enrolments_table.name, item, condition).map_err(built)?);
            parts.push(Part::Enrolment);
            items.push(self.journal.enrolment_write(record)?);
            parts.push(Part::Journal);
        }
        if !commit.index.is_empty() {
            let Some(table) = &self.index_table else {
                return Err(StoreError::Permanent {
                    operation: "commit event",
                    table: self.events_table.name.clone(),
                    detail: "index writes but no transactions table to write them to".into(),
                });
            };
            // One operation per item in a transaction: the last write of a key wins.
            let mut last: std::collections::BTreeMap<(String, String), &IndexWrite> =
                Default::default();
            for w in &commit.index {
                let (lookup, entry) = w.key();
                last.insert((lookup.to_string(), entry.to_string()), w);
            }
            for w in last.into_values() {
                items.push(index_item(table, w).map_err(|e| match e {
                    Ok(b) => built(b),
                    Err(s) => s,
                })?);
                parts.push(Part::Index);
            }
        }
        Ok((items, parts))
    }

    #[allow(clippy::result_large_err)]
    fn event_item(
        &self,
        write: &EventWrite,
    ) -> Result<TransactWriteItem, Result<aws_sdk_dynamodb::error::BuildError, StoreError>> {
        let table = &self.events_table.name;
        let (k, v) = DynamoEventLog::key(write.event_id());
        let all_old = ReturnValuesOnConditionCheckFailure::AllOld;
        Ok(match write {
            EventWrite::Claim(record) => {
                let item: Item = serde_dynamo::to_item(record)
                    .map_err(|e| Err(self.events_table.bad_item("claim", e)))?;
                let now = record
                    .claimed_at
                    .parse()
                    .map_err(|e| Err(self.events_table.bad_item("claim", e)))?;
                put(table, item, claim_condition(now)).map_err(Ok)?
            }
            EventWrite::Finish {
                token,
                status,
                outcome,
                at,
                ..
            } => {
                let condition = held_condition(token);
                let status = match status {
                    EventStatus::DeadLettered => "DEAD_LETTERED",
                    EventStatus::Completed => "COMPLETED",
                    EventStatus::InProgress => "IN_PROGRESS",
                };
                let (update, mut values) = finish_update(status, outcome, at);
                values.extend(condition.values.unwrap_or_default());
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(table)
                            .key(k, v)
                            .update_expression(update)
                            .condition_expression(condition.expression)
                            .set_expression_attribute_names(condition.names)
                            .set_expression_attribute_values(Some(values))
                            .return_values_on_condition_check_failure(all_old)
                            .build()
                            .map_err(Ok)?,
                    )
                    .build()
            }
            EventWrite::Release { token, .. } => {
                let condition = held_condition(token);
                TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(table)
                            .key(k, v)
                            .condition_expression(condition.expression)
                            .set_expression_attribute_names(condition.names)
                            .set_expression_attribute_values(condition.values)
                            .return_values_on_condition_check_failure(all_old)
                            .build()
                            .map_err(Ok)?,
                    )
                    .build()
            }
        })
    }

    /// The table and key a part's conflict is named by.
    fn conflict_of(&self, part: Part, commit: &EventCommit) -> StoreError {
        let (operation, table, key) = match part {
            Part::Event => {
                let write = commit.event.as_ref();
                let operation = match write {
                    Some(EventWrite::Claim(_)) => "claim",
                    Some(EventWrite::Release { .. }) => "release",
                    _ => "complete",
                };
                (
                    operation,
                    &self.events_table.name,
                    write.map(|w| w.event_id().to_string()),
                )
            }
            Part::Alert => (
                "put alert",
                &self.alerts_table.name,
                commit.alert.as_ref().map(|r| r.alert_id.clone()),
            ),
            Part::Enrolment => (
                "put enrolment",
                &self.enrolments_table.name,
                commit.enrolment.as_ref().map(|r| r.enrolment_id.clone()),
            ),
            Part::Journal => ("journal bookkeeping", &self.archive_table.name, None),
            Part::Archive => (
                "archive delivery",
                &self.archive_table.name,
                commit.archive.as_ref().map(|d| d.event_id.clone()),
            ),
            Part::Insights => ("count insights", &self.events_table.name, None),
            Part::Index => (
                "put index entries",
                self.index_table
                    .as_ref()
                    .map_or(&self.events_table.name, |t| &t.name),
                None,
            ),
        };
        StoreError::Conflict {
            operation,
            table: table.clone(),
            key: key.unwrap_or_default(),
        }
    }

    /// The insights subject of a commit that finishes an event with an alert record.
    fn insights_subject(&self, commit: &EventCommit) -> Option<Subject> {
        let finishes = match &commit.event {
            Some(EventWrite::Finish { .. }) => true,
            Some(EventWrite::Claim(r)) => r.status != EventStatus::InProgress,
            _ => false,
        };
        let record = commit.alert.as_ref().filter(|_| finishes)?;
        self.insights.as_ref()?;
        Some(alert_facts_with_match(record))
    }

    /// One TransactWriteItems; a cancellation mapped item by item (`refusal`), with whether only
    /// insights items were refused.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        parts: &[Part],
        commit: &EventCommit,
    ) -> Result<(), (CommitError, bool)> {
        self.events_table.counters.write();
        let result = self
            .events_table
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let reasons: Option<Vec<Reason>> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => Some(
                c.cancellation_reasons()
                    .iter()
                    .map(|r| Reason {
                        code: r.code().map(str::to_string),
                        item: r.item().cloned(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let Some(reasons) = reasons else {
            return Err((
                CommitError::Store(self.events_table.error("commit event", err)),
                false,
            ));
        };
        let only_insights = only_insights_refused(parts, &reasons);
        let (item, mapped) = refusal(
            parts,
            &reasons,
            |part| self.conflict_of(part, commit),
            &self.events_table.name,
        );
        let mapped = match mapped {
            CommitError::EventRefused {
                event_id, conflict, ..
            } => {
                let stored: Result<Option<EventRecord>, CommitError> = match item {
                    Some(item) => serde_dynamo::from_item(item)
                        .map(Some)
                        .map_err(|e| CommitError::Store(self.events_table.bad_item("claim", e))),
                    // Emulators may not return the item: read it.
                    None => self.events.get(&event_id).await.map_err(CommitError::Store),
                };
                match stored {
                    Ok(stored) => CommitError::EventRefused {
                        event_id,
                        stored: stored.map(Box::new),
                        conflict,
                    },
                    Err(e) => e,
                }
            }
            other => other,
        };
        Err((mapped, only_insights))
    }
}

/// Whether a cancelled transaction failed only on its insights items (a fact counted by another
/// writer meanwhile, a busy day counter): the event's own items would have been written.
pub(crate) fn only_insights_refused(parts: &[Part], reasons: &[Reason]) -> bool {
    let refused = |r: &Reason| r.code.as_deref().is_some_and(|c| c != "None");
    let mut any = false;
    for (part, reason) in parts.iter().zip(reasons) {
        if refused(reason) {
            if *part != Part::Insights {
                return false;
            }
            any = true;
        }
    }
    any
}

#[allow(clippy::result_large_err)]
fn index_item(
    table: &Table,
    write: &IndexWrite,
) -> Result<TransactWriteItem, Result<aws_sdk_dynamodb::error::BuildError, StoreError>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    Ok(match write {
        IndexWrite::Put(item) => {
            let item: Item = serde_dynamo::to_item(&**item)
                .map_err(|e| Err(table.bad_item("put index entries", e)))?;
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&table.name)
                        .set_item(Some(item))
                        .build()
                        .map_err(Ok)?,
                )
                .build()
        }
        IndexWrite::Delete { lookup, entry } => TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&table.name)
                    .key("lookup", AttributeValue::S(lookup.clone()))
                    .key("entry", AttributeValue::S(entry.clone()))
                    .build()
                    .map_err(Ok)?,
            )
            .build(),
    })
}

/// What a cancelled transaction means for the commit: the event's failed condition first (a
/// duplicate or a claim held elsewhere outranks a lost revision race), then an alert's or
/// enrolment's (`conflict_of`), else the whole commit failed and is worth retrying.
pub(crate) fn refusal(
    parts: &[Part],
    reasons: &[Reason],
    conflict_of: impl Fn(Part) -> StoreError,
    table: &str,
) -> (Option<Item>, CommitError) {
    let failed = |part: Part| {
        parts
            .iter()
            .zip(reasons)
            .find(|(p, r)| **p == part && r.code.as_deref() == Some("ConditionalCheckFailed"))
            .map(|(_, r)| r.clone())
    };
    if let Some(reason) = failed(Part::Event) {
        let conflict = conflict_of(Part::Event);
        let event_id = match &conflict {
            StoreError::Conflict { key, .. } => key.clone(),
            _ => String::new(),
        };
        return (
            reason.item,
            CommitError::EventRefused {
                event_id,
                stored: None,
                conflict,
            },
        );
    }
    for part in [Part::Alert, Part::Enrolment, Part::Archive] {
        if failed(part).is_some() {
            return (None, CommitError::Conflict(conflict_of(part)));
        }
    }
    let codes: Vec<&str> = reasons
        .iter()
        .filter_map(|r| r.code.as_deref())
        .filter(|c| *c != "None")
        .collect();
    let detail = format!("transaction cancelled: {}", codes.join(", "));
    // A malformed request is ours to fix; everything else (a conflicting transaction,
    // throttling, an item collection limit) may pass.
    (
        None,
        CommitError::Store(if codes.contains(&"ValidationError") {
            StoreError::Permanent {
                operation: "commit event",
                table: table.to_string(),
                detail,
            }
        } else {
            StoreError::Transient {
                operation: "commit event",
                table: table.to_string(),
                detail,
            }
        }),
    )
}

impl DynamoEventCommitter {
    /// The archive item alone (a duplicate, a poison message): the same update as a plain
    /// UpdateItem, at half the WCU of a one-item transaction. It has no condition to fail.
    async fn archive_alone(&self, items: Vec<TransactWriteItem>) -> Result<(), CommitError> {
        let Some(update) = items.into_iter().next().and_then(|i| i.update) else {
            return Ok(());
        };
        self.archive_table.counters.write();
        self.archive_table
            .client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await
            .map_err(|e| CommitError::Store(self.archive_table.error("archive delivery", e)))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl EventCommitter for DynamoEventCommitter {
    async fn commit(&self, commit: &EventCommit) -> Result<(), CommitError> {
        if commit.is_empty() {
            return Ok(());
        }
        let (mut items, mut parts) = self.items(commit).map_err(CommitError::Store)?;
        if parts == [Part::Archive] {
            return self.archive_alone(items).await;
        }
        // The insights of the event's last alert write go into the same transaction when they
        // can (one read of the subject's markers); otherwise they are counted after it.
        let subject = self.insights_subject(commit);
        let mut counted_inside = false;
        if let (Some(subject), Some((insights, _))) = (&subject, &self.insights) {
            match insights.actions_for(subject).await {
                Ok(actions) if items.len() + actions.len() <= MAX_TRANSACTION_ITEMS => {
                    parts.extend(actions.iter().map(|_| Part::Insights));
                    items.extend(actions);
                    counted_inside = true;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(subject = %subject.key, error = %e,
                        "insights markers not read; counted after the commit")
                }
            }
        }
        let own = parts.iter().filter(|p| **p != Part::Insights).count();
        let result = match self.transact(items.clone(), &parts, commit).await {
            Err((_, true)) if counted_inside => {
                // A busy counter or a fact counted meanwhile never holds back the event's own
                // write: again without the counters, which are then counted on their own.
                counted_inside = false;
                let own_items: Vec<TransactWriteItem> = items.into_iter().take(own).collect();
                self.transact(own_items, &parts[..own], commit).await
            }
            other => other,
        };
        result.map_err(|(e, _)| e)?;
        if let (Some(subject), Some((insights, clock)), false) =
            (&subject, &self.insights, counted_inside)
        {
            count_logged(&**insights, &**clock, std::slice::from_ref(subject)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "event_commit_tests.rs"]
mod tests;
