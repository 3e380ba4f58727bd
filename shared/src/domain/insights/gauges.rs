//! The card-scheme gauges of the current and previous month for many organisations (the
//! all-customers view): from the month items (a few small items per organisation, batched),
//! so the view's reads grow with the customers shown, not with customers x days. A month that
//! began before month items were kept (`month_items_since`) is read from the organisation's
//! day items instead, as before; two months after an upgrade no month needs that.

use super::report::{current_and_previous_month, scheme_month, SchemeMonth};
use crate::ports::insights_store::{DayCounters, InsightsStore};
use crate::ports::store_error::StoreError;
use chrono::{Duration, NaiveDate};
use std::collections::BTreeMap;

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Organisation → (current month, previous month).
pub async fn scheme_gauges(
    store: &dyn InsightsStore,
    organisation_ids: &[String],
    today: NaiveDate,
) -> Result<BTreeMap<String, (SchemeMonth, SchemeMonth)>, StoreError> {
    let (current, previous) = current_and_previous_month(today);
    let since = match store.month_items_since().await? {
        Some(day) => day,
        // The first view after month items were deployed: from today on, every count keeps
        // them (counts made before are only in the day items).
        None => store.mark_month_items_since(&ymd(today)).await?,
    };
    let mut out = BTreeMap::new();
    // Complete month items: the month began after the day they were first kept.
    if since < ymd(previous) {
        let months = [current, previous].map(|m| m.format("%Y-%m").to_string());
        let found = store.months(organisation_ids, &months).await?;
        for org in organisation_ids {
            let as_days: Vec<DayCounters> = months
                .iter()
                .filter_map(|m| {
                    Some(DayCounters {
                        day: format!("{m}-01"),
                        counters: found.get(&(org.clone(), m.clone()))?.clone(),
                        missed_alert_ids: Default::default(),
                    })
                })
                .collect();
            out.insert(
                org.clone(),
                (
                    scheme_month(current, &as_days),
                    scheme_month(previous, &as_days),
                ),
            );
        }
        return Ok(out);
    }
    for org in organisation_ids {
        let days = store.days(org, &ymd(previous), &ymd(today)).await?;
        out.insert(
            org.clone(),
            (scheme_month(current, &days), scheme_month(previous, &days)),
        );
    }
    Ok(out)
}

/// The day before `month_start`'s month began: what a deployment that kept month items since
/// then records (tests and the browser seed).
pub fn day_before(month_start: NaiveDate) -> String {
    ymd(month_start - Duration::days(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory_insights::MemoryInsightsStore;
    use crate::ports::insights_store::{Fact, Subject};

    fn subject(key: &str, org: &str, day: &str, counters: &[(&str, i64)]) -> Subject {
        let mut fact = Fact::new("f", org, day);
        for (k, v) in counters {
            fact = fact.inc(*k, *v);
        }
        Subject {
            key: key.into(),
            facts: vec![fact],
        }
    }

    /// 50 organisations, each with Visa alerts and settled transactions in both months.
    async fn seeded() -> (MemoryInsightsStore, Vec<String>) {
        let store = MemoryInsightsStore::default();
        let orgs: Vec<String> = (0..50).map(|i| format!("org_{i}")).collect();
        let mut subjects = Vec::new();
        for (i, org) in orgs.iter().enumerate() {
            for (n, day) in ["2026-10-03", "2026-10-28", "2026-11-02", "2026-11-20"]
                .iter()
                .enumerate()
            {
                subjects.push(subject(
                    &format!("s#{org}#{n}"),
                    org,
                    day,
                    &[
                        ("scheme_alerts:VISA", 10 + i as i64),
                        ("settled:VISA", 1000),
                        ("scheme_disputes:MASTERCARD", 2),
                        ("settled:MASTERCARD", 100),
                        ("alerts:ETHOCA_ALERT", 10),
                    ],
                ));
            }
        }
        store.count(&subjects).await.unwrap();
        (store, orgs)
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[tokio::test]
    async fn month_items_give_the_day_items_gauges_in_one_read_whatever_the_customers() {
        let (store, orgs) = seeded().await;
        store
            .mark_month_items_since(&day_before(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()))
            .await
            .unwrap();
        let gauges = scheme_gauges(&store, &orgs, today()).await.unwrap();
        assert_eq!(store.reads(), (0, 1), "one months read, no day read");
        for (i, org) in orgs.iter().enumerate() {
            let days = store.days(org, "2026-10-01", "2026-11-25").await.unwrap();
            let (current, previous) = &gauges[org];
            assert_eq!(
                *current,
                scheme_month(current_and_previous_month(today()).0, &days)
            );
            assert_eq!(
                *previous,
                scheme_month(current_and_previous_month(today()).1, &days)
            );
            assert_eq!(current.visa.alerts, 2 * (10 + i as i64));
            assert_eq!(previous.mastercard.settled, 200);
        }
    }

    #[tokio::test]
    async fn months_begun_before_month_items_were_kept_are_read_from_the_days() {
        let (store, orgs) = seeded().await;
        // Counted by a version without month items; this one's first view records today.
        store.forget_month_items();
        let gauges = scheme_gauges(&store, &orgs, today()).await.unwrap();
        assert_eq!(
            store.month_items_since().await.unwrap().as_deref(),
            Some("2026-11-25")
        );
        assert_eq!(store.reads(), (50, 0), "the day items, per organisation");
        assert_eq!(gauges["org_3"].1.visa.alerts, 26);
        assert_eq!(gauges["org_3"].1.visa.settled, 2000);
        // The same months later: December and November are both after the 25th... November
        // is not; December and January are.
        let later = NaiveDate::from_ymd_opt(2027, 1, 10).unwrap();
        scheme_gauges(&store, &orgs, later).await.unwrap();
        assert_eq!(
            store.reads(),
            (50, 1),
            "January and December from month items"
        );
    }
}
