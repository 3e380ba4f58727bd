//! What the recovery commands (`events replay`, `dlq`, `reconcile`, `rebuild`) are built from:
//! the same stores, client and processor the functions use, from the environment.

use shared::adapters::dead_letter_queue::SqsDeadLetterQueue;
use shared::adapters::dynamo::archive::DynamoEventArchive;
use shared::adapters::dynamo::event_processor::{dynamo_event_processor, ProcessorSettings};
use shared::adapters::dynamo::journal::DynamoBookkeepingJournal;
use shared::adapters::dynamo::table::{DynamoCounters, Table};
use shared::adapters::notify::NotifyTarget;
use shared::client::RetryPolicy;
use shared::clock::SystemClock;
use shared::config::{PartnerEnv, TableNames};
use shared::domain::alert_policy::AlertPolicy;
use shared::domain::onboarding::refuse_key_of_other_mode;
use shared::domain::reconcile::ClientListing;
use shared::domain::recovery::rebuild::StateSources;
use shared::domain::recovery::replay::Replayer;
use shared::ports::event_archive::EventArchive;
use shared::ports::notifier::Notifier;
use std::sync::Arc;

pub struct Recovery {
    pub replayer: Replayer,
    pub sources: StateSources,
}

fn tables(client: &aws_sdk_dynamodb::Client, name: String) -> Table {
    Table::new(client.clone(), name, Arc::new(DynamoCounters::default()))
}

/// The archive alone (needs only TABLE_PREFIX and the AWS variables).
pub async fn archive_from_env() -> anyhow::Result<Arc<dyn EventArchive>> {
    let names = TableNames::from_env()?;
    let aws = shared::adapters::aws::load_config().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    Ok(Arc::new(DynamoEventArchive::new(tables(
        &client,
        names.archive(),
    ))))
}

pub async fn dlq_from_env() -> anyhow::Result<SqsDeadLetterQueue> {
    Ok(SqsDeadLetterQueue::from_env().await?)
}

/// The processor as process-events builds it, plus the archive and the listing.
pub async fn from_env() -> anyhow::Result<Recovery> {
    let partner = PartnerEnv::from_env()?;
    if let Some(key) = partner.api_key() {
        refuse_key_of_other_mode(partner.mode, &key)?;
    }
    let default_policy = AlertPolicy::default_from_env()?;
    let aws = shared::adapters::aws::load_config().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let api = partner.client(RetryPolicy::default())?;
    let notifier: Arc<dyn Notifier> = match NotifyTarget::from_env() {
        Ok(target) => Arc::from(target.build(Some(&aws))),
        Err(_) => Arc::new(shared::adapters::notify::LogNotifier),
    };
    let names = &partner.tables;
    let archive: Arc<dyn EventArchive> =
        Arc::new(DynamoEventArchive::new(tables(&client, names.archive())));
    let api = Arc::new(api);
    // The processor exactly as process-events builds it: replayed and rebuilt alerts are
    // counted into insights, matched, decided by the same policy (its problems notified), and
    // refunds go through the partner's refund hook first.
    let processor = dynamo_event_processor(
        &client,
        names,
        Default::default(),
        ProcessorSettings {
            alert_api: api.clone(),
            enrolment_api: api.clone(),
            notifier: notifier.clone(),
            default_policy,
            not_found_retry_for: chrono::Duration::seconds(shared::config::parsed(
                "EVENT_NOT_FOUND_RETRY_SECS",
                3600i64,
            )?),
        },
    )?;
    let (alerts, enrolments) = (processor.alerts.clone(), processor.enrolments.clone());
    let (policies, partner_records) = (
        processor.policies.clone(),
        processor.partner_records.clone(),
    );
    Ok(Recovery {
        replayer: Replayer {
            processor,
            archive: archive.clone(),
            // `cbs events replay --refused` sets the signing secret it reads.
            verify_refused_with: None,
        },
        sources: StateSources {
            archive,
            listing: Arc::new(ClientListing((*api).clone())),
            alert_api: api.clone(),
            enrolment_api: api,
            alerts,
            enrolments,
            // Where every alert and enrolment write journals our bookkeeping (the archive
            // table), for rebuild to restore it.
            journal: Arc::new(DynamoBookkeepingJournal::new(tables(
                &client,
                names.archive(),
            ))),
            notifier,
            policies,
            partner_records,
            clock: Arc::new(SystemClock),
            page_size: 100,
        },
    })
}

/// `2026-11-24T10:00:00Z`, `2026-11-24`, or an age (`3d`, `12h`, `30m`) before now.
pub fn parse_time(raw: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = raw.parse::<chrono::DateTime<chrono::Utc>>() {
        return Ok(t);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    let age = shared::domain::rate_limit::parse_duration(raw).map_err(|e| {
        anyhow::anyhow!("{raw:?} is neither a time (2026-11-24T10:00:00Z, 2026-11-24) nor an age (3d, 12h): {e}")
    })?;
    Ok(chrono::Utc::now() - chrono::Duration::from_std(age)?)
}
