//! The event processor over DynamoDB, built one way for every path that processes events:
//! process-events (the queue), the ops API's replay and `cbs events replay` / `cbs rebuild`.
//! A replayed event is decided exactly as a delivered one: the same stores (alert writes
//! counted into insights), the organisation's policy with its problems notified, the match to
//! the partner's transactions, and refunds asked of the partner's billing system first when the
//! policy names a `refund_hook`.

use super::alerts::DynamoAlertStore;
use super::customers::DynamoCustomerStore;
use super::enrolments::DynamoEnrolmentStore;
use super::event_commit::DynamoEventCommitter;
use super::events::DynamoEventLog;
use super::insights::DynamoInsightsStore;
use super::table::{DynamoCounters, Table};
use super::transactions::{indexed_outbox, DynamoTransactionIndex};
use crate::clock::{Clock, SystemClock};
use crate::config::TableNames;
use crate::domain::alert_policy::{AlertPolicy, CustomerPolicies};
use crate::domain::event_processing::EventProcessor;
use crate::domain::insights::CountingAlertStore;
use crate::domain::matching::IndexedPartnerRecords;
use crate::domain::refund_hook::RefundFirst;
use crate::ports::alert_api::AlertApi;
use crate::ports::alert_store::AlertStore;
use crate::ports::enrolment_api::EnrolmentApi;
use crate::ports::notifier::Notifier;
use crate::ports::transaction_index::HeldIndex;
use std::sync::Arc;
use std::time::Duration;

/// What differs between the paths: the API client (process-events counts its calls), the
/// notifier, the default policy and how long a 404 is retried.
pub struct ProcessorSettings {
    pub alert_api: Arc<dyn AlertApi>,
    pub enrolment_api: Arc<dyn EnrolmentApi>,
    pub notifier: Arc<dyn Notifier>,
    pub default_policy: AlertPolicy,
    /// How long after an event's `created_at` a 404 on its object is still retried.
    pub not_found_retry_for: chrono::Duration,
}

/// The first pause between POSTs to a refund hook (doubled each time, at most 2 s).
const REFUND_HOOK_BACKOFF: Duration = Duration::from_millis(250);

/// Builds the processor on `client`'s tables (`tables`), every request counted in `counters`.
pub fn dynamo_event_processor(
    client: &aws_sdk_dynamodb::Client,
    tables: &TableNames,
    counters: Arc<DynamoCounters>,
    settings: ProcessorSettings,
) -> Result<EventProcessor, reqwest::Error> {
    dynamo_event_processor_counting(client, tables, counters.clone(), counters, settings)
}

/// `dynamo_event_processor`, with the requests of the bookkeeping tables (insights counters and
/// the transactions index the matching keeps) counted apart in `bookkeeping`, so a record's
/// cost shows the event's own writes and the bookkeeping's separately.
pub fn dynamo_event_processor_counting(
    client: &aws_sdk_dynamodb::Client,
    tables: &TableNames,
    counters: Arc<DynamoCounters>,
    bookkeeping: Arc<DynamoCounters>,
    settings: ProcessorSettings,
) -> Result<EventProcessor, reqwest::Error> {
    let table = |name: String| Table::new(client.clone(), name, counters.clone());
    let side_table = |name: String| Table::new(client.clone(), name, bookkeeping.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let insights = Arc::new(DynamoInsightsStore::new(side_table(tables.insights())));
    // Every alert write also counts its facts into the insights table (idempotent); the event
    // commits count an event's last alert write.
    let alerts: Arc<dyn AlertStore> = Arc::new(CountingAlertStore::new(
        Arc::new(DynamoAlertStore::new(table(tables.alerts()))),
        insights.clone(),
        clock.clone(),
    ));
    let commits = Arc::new(
        DynamoEventCommitter::new(
            table(tables.events()),
            table(tables.alerts()),
            table(tables.enrolments()),
            table(tables.archive()),
        )
        .with_index(table(tables.transactions()))
        .counting_insights(insights, clock.clone()),
    );
    // Refund first in the partner's billing system (policies with a `refund_hook`); a confirmed
    // refund is queued for the order at ChargebackStop through the (indexed) order outbox.
    let refund_first = Arc::new(RefundFirst {
        hook: crate::adapters::refund_hook::http_refund_hook()?,
        alert_api: settings.alert_api.clone(),
        alerts: alerts.clone(),
        outbox: Some(Arc::new(indexed_outbox(client, tables, counters.clone()))),
        notifier: settings.notifier.clone(),
        clock: clock.clone(),
        backoff: REFUND_HOOK_BACKOFF,
    });
    let customers = Arc::new(DynamoCustomerStore::new(table(tables.customers())));
    Ok(EventProcessor {
        events: Arc::new(DynamoEventLog::new(table(tables.events()))),
        alerts,
        enrolments: Arc::new(DynamoEnrolmentStore::new(table(tables.enrolments()))),
        alert_api: settings.alert_api,
        enrolment_api: settings.enrolment_api,
        notifier: settings.notifier.clone(),
        // A customer's policy that cannot be read or is invalid is told to a person.
        policies: Arc::new(
            CustomerPolicies::new(customers, settings.default_policy)
                .notifying(settings.notifier, clock.clone()),
        ),
        // Alerts matched to the partner's own transactions (the index written at order intake).
        partner_records: Arc::new(IndexedPartnerRecords::new(
            // Held while an event is processed and written with its commit.
            Arc::new(HeldIndex {
                inner: Arc::new(DynamoTransactionIndex::new(side_table(
                    tables.transactions(),
                ))),
            }),
            clock.clone(),
        )),
        clock,
        not_found_retry_for: settings.not_found_retry_for,
        refund_first: Some(refund_first),
        commits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::notify::LogNotifier;
    use crate::client::{ChargebackStop, ClientConfig};
    use crate::secret::Secret;

    /// Every path (process-events, the ops API's replay, `cbs events replay`) gets the refund
    /// hook and the policies' notifications from here: a replay that sent a REFUND without the
    /// partner's billing system was the hole this builder closed.
    #[tokio::test]
    async fn every_processor_asks_the_refund_hook_first() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let api = Arc::new(
            ChargebackStop::new(ClientConfig::new(
                "http://127.0.0.1:9",
                Secret::new("cbs_test_unused"),
            ))
            .unwrap(),
        );
        let processor = dynamo_event_processor(
            &client,
            &TableNames::new("t"),
            Default::default(),
            ProcessorSettings {
                alert_api: api.clone(),
                enrolment_api: api,
                notifier: Arc::new(LogNotifier),
                default_policy: AlertPolicy::default(),
                not_found_retry_for: chrono::Duration::hours(1),
            },
        )
        .unwrap();
        assert!(processor.refund_first.is_some());
        assert_eq!(processor.not_found_retry_for, chrono::Duration::hours(1));
    }
}
