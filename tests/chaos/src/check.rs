//! The promise, judged from dumps alone (pure: no I/O, no clock). Given what ChargebackStop
//! recorded (the sandbox's state, events, delivery attempts and action log) and what we stored
//! (our tables, the dead-letter queue, the notification sink), list every violation of:
//!
//! - every Ethoca alert got exactly one accepted action, before its deadline;
//! - no action was ever sent for an RDR alert;
//! - every event ChargebackStop emitted is in our events table as COMPLETED, or in the DLQ with
//!   a reason;
//! - our stored alerts and enrolments equal ChargebackStop's final objects (every field both
//!   hold), and we hold none ChargebackStop does not;
//! - every queued order exists exactly once at ChargebackStop, or is FAILED with a reason (and
//!   absent there);
//! - at most one deadline warning per alert and threshold;
//! - the run settled: nothing left on the edge queue, no event or order still in flight.
//!
//! `bin/chaos` writes the same dumps with `--out DIR`, so anyone can re-run this on them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Everything the checker reads. Field names match the files `--out DIR` writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Dumps {
    /// `GET /_sandbox/state`: `alerts`, `enrolments`, `orders` keyed by id.
    pub sandbox_state: Value,
    /// `GET /_sandbox/events`: every event emitted, in order.
    pub sandbox_events: Vec<Value>,
    /// `GET /_sandbox/deliveries`: every delivery attempt.
    pub sandbox_deliveries: Vec<Value>,
    /// `GET /_sandbox/actions`: every PATCH of an alert, accepted or refused.
    pub sandbox_actions: Vec<Value>,
    /// Messages left on the dead-letter queue: `{message_id, body, attributes, message_attributes}`.
    pub dlq: Vec<Value>,
    /// Messages still on the edge queue (visible, in flight or delayed) when the dumps were taken.
    pub edge_queue_depth: u64,
    /// Every item of each table (`events`, `alerts`, `enrolments`, `orders`, ...), plain JSON.
    pub tables: BTreeMap<String, Vec<Value>>,
    /// The notification sink's lines (`OpsNotification` JSON).
    pub notifications: Vec<Value>,
    /// `(organisation_id, reference_id)` of every order the intake accepted (stored or already
    /// queued): each must be in the outbox.
    pub queued_orders: Vec<(String, String)>,
    /// When the dumps were taken (deadlines still ahead of it are not yet missed).
    pub taken_at: Option<DateTime<Utc>>,
}

mod report;
pub use report::{InvariantResult, Report, Summary, Violation};

pub const ETHOCA_ONCE: &str = "ethoca alert: exactly one accepted action";
pub const ETHOCA_DEADLINE: &str = "ethoca alert: actioned before its deadline";
pub const RDR_NEVER: &str = "rdr alert: no action ever sent";
pub const EVENTS: &str = "event: COMPLETED, or in the DLQ with a reason";
pub const ALERTS_EQUAL: &str = "stored alert equals ChargebackStop's";
pub const ENROLMENTS_EQUAL: &str = "stored enrolment equals ChargebackStop's";
pub const ORDERS: &str = "order: created exactly once, or FAILED with a reason";
pub const WARNINGS: &str = "at most one warning per alert and threshold";
pub const SETTLED: &str = "settled: queue empty, nothing in flight";

pub fn check(d: &Dumps) -> Report {
    let alerts = objects(&d.sandbox_state, "alerts");
    let actions_by_alert = group_by_str(&d.sandbox_actions, "alert_id");
    let (once, deadline, rdr, double_actions) = check_alert_actions(&alerts, &actions_by_alert, d);
    let events = check_events(d);
    let alerts_equal = check_equal(
        &alerts,
        table(d, "alerts"),
        "alert_id",
        &[
            "status",
            "action_required_deadline",
            "transaction_refund_outcome",
            "subscription_cancel_outcome",
            "updated_at",
        ],
    );
    let enrolments = objects(&d.sandbox_state, "enrolments");
    let enrolments_equal = check_equal(
        &enrolments,
        table(d, "enrolments"),
        "enrolment_id",
        &["status", "updated_at"],
    );
    let (orders, orders_duplicated, orders_checked) = check_orders(d);
    let warnings = check_warnings(d);
    let settled = check_settled(d);

    let summary = Summary {
        events: d.sandbox_events.len(),
        alerts: alerts.len(),
        orders: orders_checked,
        lost: events.violations.len(),
        missed_deadlines: deadline.violations.len(),
        double_actions,
        orders_duplicated,
    };
    Report {
        invariants: vec![
            once,
            deadline,
            rdr,
            events,
            alerts_equal,
            enrolments_equal,
            orders,
            warnings,
            settled,
        ],
        summary,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `state[key]` as a list of objects (the sandbox keys them by id).
fn objects(state: &Value, key: &str) -> Vec<Value> {
    match state.get(key) {
        Some(Value::Object(map)) => map.values().cloned().collect(),
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn table<'a>(d: &'a Dumps, name: &str) -> &'a [Value] {
    d.tables.get(name).map(Vec::as_slice).unwrap_or(&[])
}

fn group_by_str<'a>(items: &'a [Value], key: &str) -> HashMap<String, Vec<&'a Value>> {
    let mut out: HashMap<String, Vec<&Value>> = HashMap::new();
    for item in items {
        if let Some(k) = str_of(item, key) {
            out.entry(k.to_string()).or_default().push(item);
        }
    }
    out
}

fn instant(v: Option<&str>) -> Option<DateTime<Utc>> {
    v.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn check_alert_actions(
    alerts: &[Value],
    actions_by_alert: &HashMap<String, Vec<&Value>>,
    d: &Dumps,
) -> (InvariantResult, InvariantResult, InvariantResult, usize) {
    let mut once = InvariantResult {
        name: ETHOCA_ONCE.into(),
        checked: 0,
        violations: Vec::new(),
    };
    let mut deadline_inv = InvariantResult {
        name: ETHOCA_DEADLINE.into(),
        checked: 0,
        violations: Vec::new(),
    };
    let mut rdr = InvariantResult {
        name: RDR_NEVER.into(),
        checked: 0,
        violations: Vec::new(),
    };
    let mut double_actions = 0;
    let no_actions = Vec::new();
    for alert in alerts {
        let Some(id) = str_of(alert, "id") else {
            continue;
        };
        let actions = actions_by_alert.get(id).unwrap_or(&no_actions);
        // A PATCH with only a note is not a decision.
        let decisions: Vec<&&Value> = actions
            .iter()
            .filter(|a| a.get("action").is_some_and(|x| !x.is_null()))
            .collect();
        match str_of(alert, "enrolment_type") {
            Some("VERIFI_RDR") => {
                rdr.checked += 1;
                if !decisions.is_empty() {
                    rdr.violations.push(Violation {
                        id: id.into(),
                        detail: format!("{} action(s) sent", decisions.len()),
                    });
                }
            }
            Some("ETHOCA_ALERT") => {
                once.checked += 1;
                let accepted: Vec<&&Value> = decisions
                    .iter()
                    .copied()
                    .filter(|a| a.get("accepted").and_then(Value::as_bool) == Some(true))
                    .collect();
                let deadline = instant(str_of(alert, "action_required_deadline"));
                match accepted.len() {
                    1 => {}
                    0 => once.violations.push(Violation {
                        id: id.into(),
                        detail: format!(
                            "no accepted action (status {}, {} refused)",
                            str_of(alert, "status").unwrap_or("?"),
                            decisions.len()
                        ),
                    }),
                    n => {
                        double_actions += 1;
                        once.violations.push(Violation {
                            id: id.into(),
                            detail: format!("{n} accepted actions"),
                        });
                    }
                }
                let Some(deadline) = deadline else {
                    continue;
                };
                deadline_inv.checked += 1;
                match accepted.first() {
                    Some(first) => {
                        if let Some(at) = instant(str_of(first, "at")) {
                            if at > deadline {
                                deadline_inv.violations.push(Violation {
                                    id: id.into(),
                                    detail: format!(
                                        "actioned {}s after the deadline",
                                        (at - deadline).num_seconds()
                                    ),
                                });
                            }
                        }
                    }
                    None => {
                        if d.taken_at.is_none_or(|t| t >= deadline) {
                            deadline_inv.violations.push(Violation {
                                id: id.into(),
                                detail: "deadline passed with no decision".into(),
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (once, deadline_inv, rdr, double_actions)
}

/// The reason a dead-lettered message carries: a message attribute whose name says so, or the
/// processor's note on the event's record.
fn dlq_reason(message: &Value, event_record: Option<&Value>) -> Option<String> {
    if let Some(Value::Object(attrs)) = message.get("message_attributes") {
        for (name, value) in attrs {
            let n = name.to_ascii_lowercase();
            if (n.contains("reason") || n.contains("error")) && !value.is_null() {
                let text = value
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(value.to_string());
                if !text.is_empty() {
                    return Some(format!("{name}={text}"));
                }
            }
        }
    }
    let record = event_record?;
    for key in ["dead_letter_reason", "reason", "last_error", "outcome"] {
        if let Some(text) = str_of(record, key).filter(|s| !s.is_empty()) {
            return Some(format!("{key}={text}"));
        }
    }
    None
}

fn dlq_event_id(message: &Value) -> Option<String> {
    message
        .get("message_attributes")
        .and_then(|a| a.get("event_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            let body: Value = serde_json::from_str(str_of(message, "body")?).ok()?;
            str_of(&body, "id").map(str::to_string)
        })
}

fn check_events(d: &Dumps) -> InvariantResult {
    let records: HashMap<&str, &Value> = table(d, "events")
        .iter()
        .filter_map(|r| Some((str_of(r, "event_id")?, r)))
        .collect();
    let deliveries = group_by_str(&d.sandbox_deliveries, "event_id");
    let mut dead: HashMap<String, &Value> = HashMap::new();
    for m in &d.dlq {
        if let Some(id) = dlq_event_id(m) {
            dead.insert(id, m);
        }
    }
    let mut inv = InvariantResult {
        name: EVENTS.into(),
        checked: 0,
        violations: Vec::new(),
    };
    let none = Vec::new();
    for event in &d.sandbox_events {
        let Some(id) = str_of(event, "id") else {
            continue;
        };
        inv.checked += 1;
        let record = records.get(id).copied();
        if record.and_then(|r| str_of(r, "status")) == Some("COMPLETED") {
            continue;
        }
        if let Some(message) = dead.get(id) {
            if dlq_reason(message, record).is_some() {
                continue;
            }
            inv.violations.push(Violation {
                id: id.into(),
                detail: "in the DLQ without a reason".into(),
            });
            continue;
        }
        let attempts = deliveries.get(id).unwrap_or(&none);
        let acknowledged = attempts.iter().any(|a| {
            a.get("status_code")
                .and_then(Value::as_u64)
                .is_some_and(|c| (200..300).contains(&c))
        });
        let detail = match (record, acknowledged) {
            (Some(r), _) => format!(
                "our record is {} ({})",
                str_of(r, "status").unwrap_or("?"),
                str_of(r, "outcome").unwrap_or("no outcome")
            ),
            (None, true) => "acknowledged by our edge, then not recorded".into(),
            (None, false) => format!(
                "never acknowledged by our edge ({} attempts: {})",
                attempts.len(),
                attempts
                    .iter()
                    .filter_map(|a| str_of(a, "outcome"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        inv.violations.push(Violation {
            id: id.into(),
            detail,
        });
    }
    inv
}

/// Two JSON values equal as ChargebackStop meant them: timestamps as instants (precision and
/// offset notation may differ), missing and null alike.
/// Without the object keys whose value is null, at any depth: a field ChargebackStop sends as
/// null and one our copy leaves out say the same.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).map(without_nulls);
    match (norm(a), norm(b)) {
        (None, None) => true,
        (Some(Value::String(x)), Some(Value::String(y))) => {
            x == y || matches!((instant(Some(&x)), instant(Some(&y))), (Some(p), Some(q)) if p == q)
        }
        (x, y) => x == y,
    }
}

fn check_equal(theirs: &[Value], ours: &[Value], key: &str, fields: &[&str]) -> InvariantResult {
    let ours: HashMap<&str, &Value> = ours
        .iter()
        .filter_map(|r| Some((str_of(r, key)?, r)))
        .collect();
    let name = if key == "alert_id" {
        ALERTS_EQUAL
    } else {
        ENROLMENTS_EQUAL
    };
    let mut inv = InvariantResult {
        name: name.into(),
        checked: 0,
        violations: Vec::new(),
    };
    let their_ids: BTreeSet<&str> = theirs.iter().filter_map(|o| str_of(o, "id")).collect();
    // Ours only: a record ChargebackStop never had is as wrong as one we are missing.
    for id in ours.keys().filter(|id| !their_ids.contains(**id)) {
        inv.checked += 1;
        inv.violations.push(Violation {
            id: (*id).into(),
            detail: "stored here, unknown to ChargebackStop".into(),
        });
    }
    for object in theirs {
        let Some(id) = str_of(object, "id") else {
            continue;
        };
        inv.checked += 1;
        let Some(stored) = ours.get(id) else {
            inv.violations.push(Violation {
                id: id.into(),
                detail: "not stored".into(),
            });
            continue;
        };
        // The named fields always; beyond them every field of ChargebackStop's object that our
        // record keeps under the same name (the rest of ours is our own bookkeeping).
        let mut compared: Vec<&str> = fields.to_vec();
        if let Some(map) = object.as_object() {
            compared.extend(
                map.keys()
                    .map(String::as_str)
                    .filter(|k| *k != "id" && stored.get(*k).is_some() && !fields.contains(k)),
            );
        }
        let differing: Vec<String> = compared
            .iter()
            .filter(|f| !same(object.get(**f), stored.get(**f)))
            .map(|f| {
                format!(
                    "{f}: ours {} theirs {}",
                    stored.get(*f).unwrap_or(&Value::Null),
                    object.get(*f).unwrap_or(&Value::Null)
                )
            })
            .collect();
        if !differing.is_empty() {
            inv.violations.push(Violation {
                id: id.into(),
                detail: differing.join(", "),
            });
        }
    }
    inv
}

/// (violations, duplicated orders, orders checked).
fn check_orders(d: &Dumps) -> (InvariantResult, usize, usize) {
    let mut at_cbs: HashMap<(String, String), Vec<String>> = HashMap::new();
    for o in objects(&d.sandbox_state, "orders") {
        if let (Some(org), Some(reference)) =
            (str_of(&o, "organisation_id"), str_of(&o, "reference_id"))
        {
            at_cbs
                .entry((org.into(), reference.into()))
                .or_default()
                .push(str_of(&o, "id").unwrap_or("?").into());
        }
    }
    let outbox: HashMap<(String, String), &Value> = table(d, "orders")
        .iter()
        // The outbox also holds a registry of organisations (no upload state).
        .filter(|o| o.get("state").is_some())
        .filter_map(|o| {
            Some((
                (
                    str_of(o, "organisation_id")?.to_string(),
                    str_of(o, "reference_id")?.to_string(),
                ),
                o,
            ))
        })
        .collect();
    let mut keys: BTreeSet<(String, String)> = outbox.keys().cloned().collect();
    keys.extend(d.queued_orders.iter().cloned());
    let mut inv = InvariantResult {
        name: ORDERS.into(),
        checked: keys.len(),
        violations: Vec::new(),
    };
    let mut duplicated = 0;
    for key in &keys {
        let id = format!("{}/{}", key.0, key.1);
        let created = at_cbs.get(key).map(Vec::as_slice).unwrap_or(&[]);
        if created.len() > 1 {
            duplicated += 1;
            inv.violations.push(Violation {
                id,
                detail: format!(
                    "{} orders at ChargebackStop: {}",
                    created.len(),
                    created.join(",")
                ),
            });
            continue;
        }
        let Some(stored) = outbox.get(key) else {
            inv.violations.push(Violation {
                id,
                detail: "accepted by the intake, missing from the outbox".into(),
            });
            continue;
        };
        let state = str_of(stored, "state").unwrap_or("?");
        match state {
            "CREATED" | "DUPLICATE" => {
                let ours = str_of(stored, "order_id");
                match created.first() {
                    None => inv.violations.push(Violation {
                        id,
                        detail: format!("{state} here, absent at ChargebackStop"),
                    }),
                    Some(theirs) if ours.is_some_and(|o| o != theirs) => {
                        inv.violations.push(Violation {
                            id,
                            detail: format!(
                                "{state} as {} here, {theirs} at ChargebackStop",
                                ours.unwrap_or("?")
                            ),
                        })
                    }
                    Some(_) => {}
                }
            }
            "FAILED" => {
                let reason = ["error_code", "error_message", "last_error"]
                    .iter()
                    .any(|k| str_of(stored, k).is_some_and(|s| !s.is_empty()));
                if !reason {
                    inv.violations.push(Violation {
                        id,
                        detail: "FAILED without a reason".into(),
                    });
                } else if let Some(theirs) = created.first() {
                    // Told a person it failed while ChargebackStop has it.
                    inv.violations.push(Violation {
                        id,
                        detail: format!("FAILED here, created at ChargebackStop as {theirs}"),
                    });
                }
            }
            other => inv.violations.push(Violation {
                id,
                detail: format!(
                    "still {other} (attempts {})",
                    stored.get("attempts").unwrap_or(&Value::Null)
                ),
            }),
        }
    }
    (inv, duplicated, keys.len())
}

/// The threshold a warning is about: `within <label> of its deadline` in the subject, else a
/// `threshold` field, else the whole subject.
fn warning_threshold(n: &Value) -> String {
    if let Some(t) = str_of(n, "threshold") {
        return t.to_string();
    }
    let subject = str_of(n, "subject").unwrap_or("");
    subject
        .split("within ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or(subject)
        .to_string()
}

fn check_warnings(d: &Dumps) -> InvariantResult {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for n in &d.notifications {
        if str_of(n, "kind") != Some("alert.deadline_warning") {
            continue;
        }
        let alert = str_of(n, "object_id").unwrap_or("?").to_string();
        *counts.entry((alert, warning_threshold(n))).or_default() += 1;
    }
    InvariantResult {
        name: WARNINGS.into(),
        checked: counts.len(),
        violations: counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|((alert, threshold), n)| Violation {
                id: alert,
                detail: format!("{n} warnings for {threshold}"),
            })
            .collect(),
    }
}

fn check_settled(d: &Dumps) -> InvariantResult {
    let mut inv = InvariantResult {
        name: SETTLED.into(),
        checked: 0,
        violations: Vec::new(),
    };
    inv.checked += 1;
    if d.edge_queue_depth > 0 {
        inv.violations.push(Violation {
            id: "edge queue".into(),
            detail: format!("{} messages left", d.edge_queue_depth),
        });
    }
    for r in table(d, "events") {
        inv.checked += 1;
        if str_of(r, "status") == Some("IN_PROGRESS") {
            inv.violations.push(Violation {
                id: str_of(r, "event_id").unwrap_or("?").into(),
                detail: "event still IN_PROGRESS".into(),
            });
        }
    }
    let retrying: BTreeSet<&str> = d
        .sandbox_deliveries
        .iter()
        .filter(|a| str_of(a, "outcome") == Some("retrying"))
        .filter_map(|a| str_of(a, "event_id"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|id| {
            // Still retrying only if no later attempt delivered or gave up.
            !d.sandbox_deliveries.iter().any(|a| {
                str_of(a, "event_id") == Some(*id)
                    && matches!(str_of(a, "outcome"), Some("delivered") | Some("gave_up"))
            })
        })
        .collect();
    for id in retrying {
        inv.violations.push(Violation {
            id: id.into(),
            detail: "ChargebackStop still retrying its delivery".into(),
        });
    }
    inv
}

#[cfg(test)]
mod tests;
