//! One organisation's share of a run: read its pending-index (oldest due first), lease what
//! may be taken now, and hand the work out (create batches, lookups, patches) with at most
//! `in_flight_per_org` in flight.

use super::{create, lookup, patches, store_retry, Shared};
use crate::ports::order_outbox::{iso, OutboxOrder, UploadOutcome, Work};
use crate::ports::store_error::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn upload_organisation(
    shared: Arc<Shared>,
    org: String,
) -> Result<(), StoreError> {
    let run = &shared.run;
    let batch_size = run.config.batch_size();
    // One read of the pending-index feeds every batch allowed in flight: fewer index queries
    // (each one costs a request; the local emulator even scans the table for it).
    let page_size = batch_size * run.config.in_flight_per_org.max(1);
    let permits = Arc::new(tokio::sync::Semaphore::new(
        run.config.in_flight_per_org.max(1),
    ));
    let blocked = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let mut cursor: Option<String> = None;
    let mut creates: Vec<OutboxOrder> = Vec::new();
    let mut lookups: Vec<OutboxOrder> = Vec::new();
    let mut store_error = None;

    loop {
        if shared.out_of_time(Duration::ZERO) || blocked.load(Ordering::Relaxed) {
            break;
        }
        let page = match store_retry("read pending orders", || {
            run.outbox.pending(&org, cursor.as_deref(), page_size)
        })
        .await
        {
            Ok(page) => page,
            Err(e) => {
                store_error = Some(e);
                break;
            }
        };
        let now = run.clock.now();
        // The index is sorted by when each order is next due: past the first order that is not
        // due yet, nothing is.
        let reached_later = page
            .orders
            .iter()
            .any(|o| o.queued_at.as_str() > iso(now).as_str());
        let candidates: Vec<OutboxOrder> = page
            .orders
            .into_iter()
            .filter(|o| o.work_at(now).is_some())
            .collect();
        let until = now
            + chrono::Duration::from_std(run.config.lease).unwrap_or(chrono::Duration::minutes(5));
        // A repeat after a lost answer cannot take an order twice (the lease is conditional);
        // one we did take stays leased to us until it expires, then the next run sends it.
        let leased = match store_retry("lease orders", || {
            run.outbox.lease(&candidates, &run.owner, now, until)
        })
        .await
        {
            Ok(leased) => leased,
            Err(e) => {
                store_error = Some(e);
                break;
            }
        };
        for order in leased {
            match Work::for_leased(&order) {
                Work::Patch => {
                    let permit = permits.clone().acquire_owned().await.expect("semaphore");
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let _permit = permit;
                        patches::send_patches(&shared, order).await
                    });
                }
                Work::Lookup => lookups.push(order),
                Work::Create => creates.push(order),
            }
        }
        cursor = if reached_later { None } else { page.next };
        // Lookups first: those orders exist at ChargebackStop already, only their id is missing.
        while lookups.len() >= batch_size || (cursor.is_none() && !lookups.is_empty()) {
            let permit = permits.clone().acquire_owned().await.expect("semaphore");
            // Waiting for a slot may have taken the rest of the run: what is left goes back.
            if shared.out_of_time(Duration::ZERO) {
                break;
            }
            let take = lookups.len().min(batch_size);
            let chunk: Vec<String> = lookups.drain(..take).map(|o| o.reference_id).collect();
            let (shared, org, blocked) = (shared.clone(), org.clone(), blocked.clone());
            tasks.spawn(async move {
                let _permit = permit;
                lookup::look_up_orders(&shared, &org, chunk, &blocked).await
            });
        }
        while creates.len() >= batch_size || (cursor.is_none() && !creates.is_empty()) {
            let permit = permits.clone().acquire_owned().await.expect("semaphore");
            if shared.out_of_time(Duration::ZERO) {
                break;
            }
            let take = creates.len().min(batch_size);
            let batch: Vec<OutboxOrder> = creates.drain(..take).collect();
            let (shared, org, blocked) = (shared.clone(), org.clone(), blocked.clone());
            tasks.spawn(async move {
                let to_look_up = create::send_batch(&shared, &org, batch, &blocked).await?;
                // The slot goes to the next create; the lookups draw from their own pool
                // (`Endpoint::OrderLookup`) and finish in this task, inside the run.
                drop(permit);
                if to_look_up.is_empty() {
                    return Ok(());
                }
                lookup::look_up_orders(&shared, &org, to_look_up, &blocked).await
            });
        }
        if cursor.is_none() || shared.out_of_time(Duration::ZERO) {
            break;
        }
    }
    // Leased but never started (out of time): give them back now rather than wait for the lease.
    let mut give_back: Vec<(String, UploadOutcome)> = creates
        .iter()
        .map(|o| {
            (
                o.reference_id.clone(),
                UploadOutcome::Unsent {
                    reason: "run ended before sending".into(),
                },
            )
        })
        .collect();
    give_back.extend(lookups.iter().map(|o| {
        (
            o.reference_id.clone(),
            UploadOutcome::Lookup {
                reason: "run ended before the lookup".into(),
                keep_lease: false,
            },
        )
    }));
    if !give_back.is_empty() {
        shared.add(|r| r.retry_later += give_back.len() as u64);
        if let Err(e) = store_retry("give leases back", || {
            run.outbox
                .record(&org, &run.owner, &give_back, run.clock.now())
        })
        .await
        {
            store_error.get_or_insert(e);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                store_error.get_or_insert(e);
            }
            Err(e) => tracing::error!(organisation_id = %org, error = %e, "upload task panicked"),
        }
    }
    if blocked.load(Ordering::Relaxed) {
        shared.add(|r| r.blocked.push(org.clone()));
    }
    match store_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
