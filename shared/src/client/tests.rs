//! Unit tests of the client that need no server: URLs, query encoding, error mapping.

use super::*;
use crate::models::{AlertQuery, AlertSort, AlertStatus};

fn client(base: &str) -> ChargebackStop {
    ChargebackStop::new(ClientConfig::new(
        base,
        Secret::new("cbs_test_key_do_not_print"),
    ))
    .unwrap()
}

#[test]
fn urls_keep_a_base_path_and_encode_ids() {
    let api = client("http://127.0.0.1:9/prefix/");
    assert_eq!(
        api.url(&["v1", "organisations"], true).as_str(),
        "http://127.0.0.1:9/prefix/v1/organisations/"
    );
    assert_eq!(
        api.url(&["v1", "alerts", "a/b c"], false).as_str(),
        "http://127.0.0.1:9/prefix/v1/alerts/a%2Fb%20c"
    );
}

#[test]
fn alert_query_encodes_every_filter() {
    let q = AlertQuery {
        status: Some(AlertStatus::ActionRequired),
        organisation_id: Some("org_1".into()),
        merchant_id: Some("mrch_1".into()),
        alert_received_at_gte: Some("2026-02-01T00:00:00Z".parse().unwrap()),
        alert_received_at_lte: Some("2026-02-02T00:00:00Z".parse().unwrap()),
        sort: Some(AlertSort::DeadlineSoonestFirst),
        limit: Some(10),
        offset: Some(20),
    };
    let api = client("http://127.0.0.1:9");
    let url = api
        .http
        .get(api.url(&["v1", "alerts"], false))
        .query(&q)
        .build()
        .unwrap()
        .url()
        .clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("status"), Some("ACTION_REQUIRED"));
    assert_eq!(get("organisation_id"), Some("org_1"));
    assert_eq!(get("merchant_id"), Some("mrch_1"));
    assert_eq!(get("alert_received_at_gte"), Some("2026-02-01T00:00:00Z"));
    assert_eq!(get("alert_received_at_lte"), Some("2026-02-02T00:00:00Z"));
    assert_eq!(get("sort"), Some("action_required_deadline"));
    assert_eq!(get("limit"), Some("10"));
    assert_eq!(get("offset"), Some("20"));
}

#[test]
fn debug_never_shows_the_key() {
    let api = client("http://127.0.0.1:9");
    assert!(!format!("{api:?}").contains("cbs_test_key"));
}
