//! Each invariant must fail on a dump crafted to break it, so the checker cannot silently pass.

use super::*;
use serde_json::json;

const DEADLINE: &str = "2026-11-30T12:10:00.000Z";

fn ethoca(id: &str) -> Value {
    json!({
        "id": id, "enrolment_type": "ETHOCA_ALERT", "status": "RESOLVED",
        "action_required_deadline": DEADLINE, "transaction_refund_outcome": "REFUNDED",
        "subscription_cancel_outcome": null, "updated_at": "2026-11-30T12:05:00.000Z",
        "organisation_id": "org_1"
    })
}

fn rdr(id: &str) -> Value {
    json!({
        "id": id, "enrolment_type": "VERIFI_RDR", "status": "RESOLVED",
        "action_required_deadline": null, "transaction_refund_outcome": "REFUNDED",
        "subscription_cancel_outcome": null, "updated_at": "2026-11-30T12:01:00.000Z",
        "organisation_id": "org_1"
    })
}

fn stored(alert: &Value) -> Value {
    let mut s = alert.clone();
    s["alert_id"] = alert["id"].clone();
    // Our copy may carry other precision: equal instants are equal.
    s["updated_at"] = json!("2026-11-30T12:05:00Z");
    if alert["enrolment_type"] == "VERIFI_RDR" {
        s["updated_at"] = json!("2026-11-30T12:01:00Z");
    }
    s
}

fn action(alert: &str, at: &str, accepted: bool) -> Value {
    json!({"alert_id": alert, "action": "REFUND", "note": null, "accepted": accepted,
           "error_code": if accepted { Value::Null } else { json!("ALERT_ALREADY_RESOLVED") },
           "status": "RESOLVED", "at": at})
}

fn event(id: &str) -> Value {
    json!({"id": id, "type": "alert.created", "data": {"object": {}}})
}

fn delivered(id: &str) -> Value {
    json!({"event_id": id, "attempt": 1, "status_code": 200, "outcome": "delivered"})
}

fn completed(id: &str) -> Value {
    json!({"event_id": id, "status": "COMPLETED", "outcome": "applied"})
}

fn order_at_cbs(id: &str, reference: &str) -> Value {
    json!({"id": id, "organisation_id": "org_1", "reference_id": reference})
}

fn outbox(reference: &str, state: &str, order_id: Option<&str>) -> Value {
    json!({"organisation_id": "org_1", "reference_id": reference, "state": state,
           "order_id": order_id, "attempts": 1})
}

fn warning(alert: &str, threshold: &str) -> Value {
    json!({"kind": "alert.deadline_warning", "object_id": alert,
           "subject": format!("Alert {alert} within {threshold} of its deadline"),
           "at": "2026-11-30T12:00:00.000Z"})
}

/// A run where everything held: one Ethoca alert refunded once in time, one RDR alert never
/// actioned, two events completed, an enrolment in step, two orders (one created, one FAILED
/// with a reason), one warning per threshold.
fn clean() -> Dumps {
    let a = ethoca("alrt_e1");
    let r = rdr("alrt_r1");
    let enrolment =
        json!({"id": "enrl_1", "status": "ENABLED", "updated_at": "2026-11-30T11:00:00.000Z"});
    Dumps {
        sandbox_state: json!({
            "alerts": {"alrt_e1": a, "alrt_r1": r},
            "enrolments": {"enrl_1": enrolment},
            "orders": {"ord_1": order_at_cbs("ord_1", "ref-1")},
        }),
        sandbox_events: vec![event("evt_1"), event("evt_2")],
        sandbox_deliveries: vec![delivered("evt_1"), delivered("evt_2")],
        sandbox_actions: vec![action("alrt_e1", "2026-11-30T12:04:00.000Z", true)],
        dlq: vec![],
        edge_queue_depth: 0,
        tables: BTreeMap::from([
            (
                "events".into(),
                vec![completed("evt_1"), completed("evt_2")],
            ),
            ("alerts".into(), vec![stored(&a), stored(&r)]),
            (
                "enrolments".into(),
                vec![json!({"enrolment_id": "enrl_1", "status": "ENABLED",
                            "updated_at": "2026-11-30T11:00:00Z"})],
            ),
            (
                "orders".into(),
                vec![
                    outbox("ref-1", "CREATED", Some("ord_1")),
                    json!({"organisation_id": "org_1", "reference_id": "ref-2", "state": "FAILED",
                           "error_code": "INVALID_INTEGRATION", "attempts": 1}),
                    // The outbox's organisation registry is not an order.
                    json!({"organisation_id": "#organisations", "reference_id": "org_1"}),
                ],
            ),
        ]),
        notifications: vec![warning("alrt_e1", "3m"), warning("alrt_e1", "2m")],
        queued_orders: vec![
            ("org_1".into(), "ref-1".into()),
            ("org_1".into(), "ref-2".into()),
        ],
        taken_at: Some("2026-11-30T12:20:00Z".parse().unwrap()),
    }
}

fn violations_of(report: &Report, name: &str) -> Vec<Violation> {
    report
        .invariants
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no invariant {name}"))
        .violations
        .clone()
}

/// Only `name` fails, with the offending id.
fn only_fails(report: &Report, name: &str, id: &str) {
    for inv in &report.invariants {
        if inv.name == name {
            assert!(
                inv.violations.iter().any(|v| v.id == id),
                "{name} should name {id}: {:?}",
                inv.violations
            );
        } else {
            assert!(
                inv.violations.is_empty(),
                "{} failed too: {:?}",
                inv.name,
                inv.violations
            );
        }
    }
    assert!(!report.ok());
}

#[test]
fn a_clean_run_passes_every_invariant() {
    let report = check(&clean());
    assert!(report.ok(), "{}", report.table());
    assert_eq!(
        report.last_line(),
        "chaos: 2 events, 2 alerts, 2 orders, lost 0, missed deadlines 0, double actions 0, orders duplicated 0"
    );
    assert!(
        report.invariants.iter().all(|i| i.checked > 0),
        "{}",
        report.table()
    );
}

#[test]
fn two_accepted_actions_are_a_double_action() {
    let mut d = clean();
    d.sandbox_actions
        .push(action("alrt_e1", "2026-11-30T12:04:01.000Z", true));
    let report = check(&d);
    only_fails(&report, ETHOCA_ONCE, "alrt_e1");
    assert_eq!(report.summary.double_actions, 1);
}

#[test]
fn a_refused_second_action_is_not_a_double_action() {
    let mut d = clean();
    d.sandbox_actions
        .push(action("alrt_e1", "2026-11-30T12:04:01.000Z", false));
    assert!(check(&d).ok());
}

#[test]
fn an_action_after_the_deadline_is_a_missed_deadline() {
    let mut d = clean();
    d.sandbox_actions = vec![action("alrt_e1", "2026-11-30T12:10:00.001Z", true)];
    let report = check(&d);
    only_fails(&report, ETHOCA_DEADLINE, "alrt_e1");
    assert_eq!(report.summary.missed_deadlines, 1);
}

#[test]
fn no_action_at_all_misses_the_deadline_and_the_one_action() {
    let mut d = clean();
    d.sandbox_actions.clear();
    let report = check(&d);
    assert_eq!(violations_of(&report, ETHOCA_ONCE).len(), 1);
    assert_eq!(violations_of(&report, ETHOCA_DEADLINE).len(), 1);
    assert_eq!(report.summary.missed_deadlines, 1);
    // Before the deadline, an undecided alert is not (yet) a missed deadline.
    d.taken_at = Some("2026-11-30T12:09:00Z".parse().unwrap());
    let report = check(&d);
    assert!(violations_of(&report, ETHOCA_DEADLINE).is_empty());
}

#[test]
fn an_action_sent_for_an_rdr_alert_fails_even_when_refused() {
    let mut d = clean();
    d.sandbox_actions
        .push(action("alrt_r1", "2026-11-30T12:02:00.000Z", false));
    only_fails(&check(&d), RDR_NEVER, "alrt_r1");
}

#[test]
fn a_note_only_patch_is_not_an_action() {
    let mut d = clean();
    d.sandbox_actions
        .push(json!({"alert_id": "alrt_r1", "action": null, "note": "n",
                                  "accepted": true, "at": "2026-11-30T12:02:00.000Z"}));
    assert!(check(&d).ok());
}

#[test]
fn an_acknowledged_event_missing_from_our_table_is_lost() {
    let mut d = clean();
    d.tables.get_mut("events").unwrap().remove(1);
    let report = check(&d);
    only_fails(&report, EVENTS, "evt_2");
    assert_eq!(report.summary.lost, 1);
}

#[test]
fn an_event_left_in_progress_is_lost_and_unsettled() {
    let mut d = clean();
    d.tables.get_mut("events").unwrap()[1] = json!({"event_id": "evt_2", "status": "IN_PROGRESS"});
    let report = check(&d);
    assert_eq!(violations_of(&report, EVENTS).len(), 1);
    assert_eq!(violations_of(&report, SETTLED).len(), 1);
}

#[test]
fn a_never_acknowledged_event_is_lost_too() {
    let mut d = clean();
    d.sandbox_events.push(event("evt_3"));
    d.sandbox_deliveries
        .push(json!({"event_id": "evt_3", "attempt": 0,
                                     "status_code": null, "outcome": "dropped"}));
    let report = check(&d);
    only_fails(&report, EVENTS, "evt_3");
    assert!(violations_of(&report, EVENTS)[0]
        .detail
        .contains("never acknowledged"));
}

#[test]
fn a_dead_lettered_event_counts_only_with_a_reason() {
    let mut d = clean();
    d.tables.get_mut("events").unwrap().remove(1);
    d.dlq.push(json!({"message_id": "m1", "body": "{}",
                      "message_attributes": {"event_id": "evt_2"}}));
    only_fails(&check(&d), EVENTS, "evt_2");
    d.dlq[0]["message_attributes"]["envelope_error"] = json!("missing_id");
    assert!(check(&d).ok(), "{}", check(&d).table());
}

#[test]
fn a_stored_alert_behind_chargebackstop_fails() {
    let mut d = clean();
    d.tables.get_mut("alerts").unwrap()[0]["status"] = json!("ACTION_REQUIRED");
    only_fails(&check(&d), ALERTS_EQUAL, "alrt_e1");
    let mut d = clean();
    d.tables.get_mut("alerts").unwrap().remove(1);
    only_fails(&check(&d), ALERTS_EQUAL, "alrt_r1");
}

#[test]
fn any_field_both_sides_hold_must_agree_and_ours_only_records_fail() {
    // A field beyond the named ones, kept by both: compared.
    let mut d = clean();
    d.sandbox_state["alerts"]["alrt_e1"]["transaction_amount_in_cents"] = json!(1200);
    d.tables.get_mut("alerts").unwrap()[0]["transaction_amount_in_cents"] = json!(1100);
    only_fails(&check(&d), ALERTS_EQUAL, "alrt_e1");
    // A field only ChargebackStop's object has, or only ours (bookkeeping): not compared.
    let mut d = clean();
    d.sandbox_state["alerts"]["alrt_e1"]["links"] = json!([]);
    d.tables.get_mut("alerts").unwrap()[0]["decisions"] = json!([{"by": "policy"}]);
    assert!(check(&d).ok(), "{}", check(&d).table());
    // A nested null ChargebackStop sends and our copy leaves out: the same; a nested value
    // that differs: not.
    let mut d = clean();
    d.sandbox_state["alerts"]["alrt_e1"]["card"] = json!({"bin": "411111", "arn": null});
    d.tables.get_mut("alerts").unwrap()[0]["card"] = json!({"bin": "411111"});
    assert!(check(&d).ok(), "{}", check(&d).table());
    d.tables.get_mut("alerts").unwrap()[0]["card"] = json!({"bin": "422222"});
    only_fails(&check(&d), ALERTS_EQUAL, "alrt_e1");
    // A record ChargebackStop never had.
    let mut d = clean();
    let mut extra = stored(&ethoca("alrt_ghost"));
    extra["alert_id"] = json!("alrt_ghost");
    d.tables.get_mut("alerts").unwrap().push(extra);
    only_fails(&check(&d), ALERTS_EQUAL, "alrt_ghost");
}

#[test]
fn a_failed_order_that_chargebackstop_has_fails() {
    let mut d = clean();
    d.sandbox_state["orders"]["ord_2"] = order_at_cbs("ord_2", "ref-2");
    only_fails(&check(&d), ORDERS, "org_1/ref-2");
}

#[test]
fn a_stored_enrolment_behind_chargebackstop_fails() {
    let mut d = clean();
    d.tables.get_mut("enrolments").unwrap()[0]["status"] = json!("UNENROLLED");
    only_fails(&check(&d), ENROLMENTS_EQUAL, "enrl_1");
}

#[test]
fn an_order_created_twice_is_duplicated() {
    let mut d = clean();
    d.sandbox_state["orders"]["ord_2"] = order_at_cbs("ord_2", "ref-1");
    let report = check(&d);
    only_fails(&report, ORDERS, "org_1/ref-1");
    assert_eq!(report.summary.orders_duplicated, 1);
}

#[test]
fn an_order_failed_without_a_reason_or_still_pending_or_lost_fails() {
    let mut d = clean();
    d.tables.get_mut("orders").unwrap()[1]["error_code"] = Value::Null;
    only_fails(&check(&d), ORDERS, "org_1/ref-2");

    let mut d = clean();
    d.tables.get_mut("orders").unwrap()[0] = outbox("ref-1", "LEASED", None);
    only_fails(&check(&d), ORDERS, "org_1/ref-1");

    let mut d = clean();
    d.queued_orders.push(("org_1".into(), "ref-9".into()));
    only_fails(&check(&d), ORDERS, "org_1/ref-9");

    let mut d = clean();
    d.sandbox_state["orders"] = json!({});
    only_fails(&check(&d), ORDERS, "org_1/ref-1");
}

#[test]
fn two_warnings_for_one_threshold_fail() {
    let mut d = clean();
    d.notifications.push(warning("alrt_e1", "2m"));
    only_fails(&check(&d), WARNINGS, "alrt_e1");
}

#[test]
fn messages_left_on_the_queue_or_retries_pending_are_unsettled() {
    let mut d = clean();
    d.edge_queue_depth = 2;
    only_fails(&check(&d), SETTLED, "edge queue");

    let mut d = clean();
    d.sandbox_deliveries.insert(
        0,
        json!({"event_id": "evt_1", "attempt": 1, "status_code": 503, "outcome": "retrying"}),
    );
    assert!(check(&d).ok(), "a retry that later delivered is settled");
    d.sandbox_deliveries
        .retain(|a| a["outcome"] != "delivered" || a["event_id"] != "evt_1");
    let report = check(&d);
    assert!(violations_of(&report, SETTLED)
        .iter()
        .any(|v| v.id == "evt_1"));
}

#[test]
fn the_table_names_the_first_offenders() {
    let mut d = clean();
    d.sandbox_actions
        .push(action("alrt_e1", "2026-11-30T12:04:01.000Z", true));
    let table = check(&d).table();
    assert!(table.contains("alrt_e1 (2 accepted actions)"), "{table}");
}
