//! Validation used before anything is sent to ChargebackStop or stored, with field-level
//! messages: a caller gets every problem at once, each naming the JSON path of the field
//! (`orders[2].transactions[0].currency`), so an operator or a customer can fix them in one go
//! instead of discovering them one 422 at a time.
//!
//! The rules come from the seeds (orders guide, partner guide, alerts reference): required
//! `COMPLETE` order and transaction fields, ISO 4217 currencies, RDR enrolments with bin+caid
//! together or at least one ARN, Ethoca descriptors with STARTS_WITH or EXACT_MATCH, RDR
//! ruleset limits, and `alert_received_at_gte <= alert_received_at_lte`.
//!
//! Wasm-safe: no I/O, no clock.

use std::fmt;

use crate::models::{
    AlertQuery, CreateEnrolment, CreateRuleset, EnrolmentType, EthocaDescriptor, MatchType, Order,
    OrderType, PatchRule, Rule, RuleParameters, RuleType, RulesetOutcome, Transaction, UpdateAlert,
};

/// At most this many orders per `POST /v1/orders/`.
pub const MAX_ORDERS_PER_REQUEST: usize = 100;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `transactions[0].currency`.
    pub field: String,
    /// Machine-readable: `MISSING_FIELD`, `INVALID_CURRENCY`, `INVALID_VALUE`,
    /// `INVALID_COMBINATION`, `TOO_MANY`, `INVALID_DATE_RANGE`.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

pub const MISSING_FIELD: &str = "MISSING_FIELD";
pub const INVALID_CURRENCY: &str = "INVALID_CURRENCY";
pub const INVALID_VALUE: &str = "INVALID_VALUE";
pub const INVALID_COMBINATION: &str = "INVALID_COMBINATION";
pub const TOO_MANY: &str = "TOO_MANY";
pub const INVALID_DATE_RANGE: &str = "INVALID_DATE_RANGE";

/// Every problem found, in field order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// The problems with one field (exact path).
    pub fn for_field(&self, field: &str) -> Vec<&FieldError> {
        self.0.iter().filter(|e| e.field == field).collect()
    }

    pub fn has(&self, field: &str, code: &str) -> bool {
        self.0.iter().any(|e| e.field == field && e.code == code)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

/// Collects problems under a path prefix.
#[derive(Default)]
struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    fn push(&mut self, field: String, code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field,
            code,
            message: message.into(),
        });
    }

    fn missing(&mut self, field: String) {
        self.push(field, MISSING_FIELD, "is required");
    }

    fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }
}

fn path(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// Active ISO 4217 currency codes (list one, 2024-2025 amendments included), funds and
/// precious metals left out. Hand-kept rather than a crate: a short static table that must
/// build for wasm32 (the Worker) and changes a few times a decade.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// An active ISO 4217 alphabetic code, upper case as the API writes it (`usd` is refused: the
/// API matches case-sensitively).
pub fn is_iso_4217(code: &str) -> bool {
    ISO_4217.binary_search(&code).is_ok()
}

fn currency(c: &mut Collector, field: String, value: &Option<String>) {
    match value.as_deref() {
        None => c.missing(field),
        Some(v) if v.trim().is_empty() => c.missing(field),
        Some(v) if !is_iso_4217(v) => c.push(
            field,
            INVALID_CURRENCY,
            format!("{v:?} is not an ISO 4217 currency code (e.g. USD, EUR)"),
        ),
        Some(_) => {}
    }
}

fn non_negative(c: &mut Collector, field: String, value: Option<i64>) {
    match value {
        None => c.missing(field),
        Some(v) if v < 0 => c.push(
            field,
            INVALID_VALUE,
            format!("must be 0 or more cents, not {v}"),
        ),
        Some(_) => {}
    }
}

fn digits(value: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// Orders
// ---------------------------------------------------------------------------------------------

/// A `COMPLETE` order as the orders guide requires it, with at least one transaction (alert
/// matching needs one). Field paths are relative to the order.
pub fn validate_complete_order(order: &Order) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_order(&mut c, "", order);
    c.finish()
}

/// A batch for `POST /v1/orders/`: 1 to 100 orders, each valid, no `reference_id` twice.
/// Paths are `[i].field`.
pub fn validate_order_batch(orders: &[Order]) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if orders.is_empty() {
        c.push(
            String::new(),
            MISSING_FIELD,
            "at least one order is required",
        );
    }
    if orders.len() > MAX_ORDERS_PER_REQUEST {
        c.push(
            String::new(),
            TOO_MANY,
            format!(
                "{} orders; at most {MAX_ORDERS_PER_REQUEST} per request",
                orders.len()
            ),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, order) in orders.iter().enumerate() {
        let prefix = format!("[{i}]");
        check_order(&mut c, &prefix, order);
        if let Some(reference) = order
            .reference_id
            .as_deref()
            .filter(|r| !r.trim().is_empty())
        {
            if !seen.insert(reference) {
                c.push(
                    path(&prefix, "reference_id"),
                    INVALID_VALUE,
                    format!("{reference:?} appears twice in this batch"),
                );
            }
        }
    }
    c.finish()
}

fn check_order(c: &mut Collector, prefix: &str, order: &Order) {
    match &order.order_type {
        None => c.missing(path(prefix, "type")),
        Some(OrderType::Complete) => {}
        Some(other) => c.push(
            path(prefix, "type"),
            INVALID_VALUE,
            format!("must be COMPLETE (a CUSTOM_ORDERS integration), not {other}"),
        ),
    }
    for (field, value) in [
        ("organisation_id", &order.organisation_id),
        ("integration_id", &order.integration_id),
        ("reference_id", &order.reference_id),
        ("order_number", &order.order_number),
    ] {
        if blank(value) {
            c.missing(path(prefix, field));
        }
    }
    if order.order_datetime.is_none() {
        c.missing(path(prefix, "order_datetime"));
    }
    non_negative(
        c,
        path(prefix, "order_subtotal_amount_in_cents"),
        order.order_subtotal_amount_in_cents,
    );
    non_negative(
        c,
        path(prefix, "order_total_amount_in_cents"),
        order.order_total_amount_in_cents,
    );
    currency(c, path(prefix, "order_currency"), &order.order_currency);
    match &order.order_status {
        None => c.missing(path(prefix, "order_status")),
        Some(status) if !status.is_known() => c.push(
            path(prefix, "order_status"),
            INVALID_VALUE,
            format!(
                "{status} is not one of OPEN_PENDING, OPEN_PENDING_RETURN, CLOSED_COMPLETE, \
                 CLOSED_CANCELLED, OTHER"
            ),
        ),
        Some(_) => {}
    }
    if order.transactions.is_empty() {
        c.push(
            path(prefix, "transactions"),
            MISSING_FIELD,
            "at least one transaction is required for alert matching",
        );
    }
    for (i, t) in order.transactions.iter().enumerate() {
        check_transaction(c, &path(prefix, &format!("transactions[{i}]")), t);
    }
}

/// One transaction of a `COMPLETE` order. Paths are relative to the transaction.
pub fn validate_transaction(transaction: &Transaction) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_transaction(&mut c, "", transaction);
    c.finish()
}

fn check_transaction(c: &mut Collector, prefix: &str, t: &Transaction) {
    for (field, value) in [
        ("reference_id", &t.reference_id),
        (
            "payment_method_reference_id",
            &t.payment_method_reference_id,
        ),
    ] {
        if blank(value) {
            c.missing(path(prefix, field));
        }
    }
    non_negative(c, path(prefix, "amount_in_cents"), t.amount_in_cents);
    currency(c, path(prefix, "currency"), &t.currency);
    if t.payment_method_type.is_none() {
        c.missing(path(prefix, "payment_method_type"));
    }
    if t.authorisation_status.is_none() {
        c.missing(path(prefix, "authorisation_status"));
    }
    if t.authorised_at.is_none() {
        c.missing(path(prefix, "authorised_at"));
    }
    if t.is_card() {
        if t.payment_method_card_brand.is_none() {
            c.push(
                path(prefix, "payment_method_card_brand"),
                MISSING_FIELD,
                "is required for card transactions",
            );
        }
        match t.payment_method_card_last_4.as_deref() {
            None | Some("") => c.push(
                path(prefix, "payment_method_card_last_4"),
                MISSING_FIELD,
                "is required for card transactions",
            ),
            Some(v) if !digits(v, 4, 4) => c.push(
                path(prefix, "payment_method_card_last_4"),
                INVALID_VALUE,
                "must be exactly 4 digits",
            ),
            Some(_) => {}
        }
    }
    if let Some(bin) = t.payment_method_card_bin.as_deref() {
        if !digits(bin, 6, 8) {
            c.push(
                path(prefix, "payment_method_card_bin"),
                INVALID_VALUE,
                "must be 6 to 8 digits",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Enrolments
// ---------------------------------------------------------------------------------------------

/// A v2 enrolment: merchants given; Ethoca by descriptors (STARTS_WITH or EXACT_MATCH), RDR by
/// `bin` and `caid` together or at least one ARN. The section of the other type must be absent.
pub fn validate_create_enrolment(enrolment: &CreateEnrolment) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if enrolment.merchant_ids.is_empty() {
        c.push(
            "merchant_ids".into(),
            MISSING_FIELD,
            "at least one merchant id is required",
        );
    }
    for (i, id) in enrolment.merchant_ids.iter().enumerate() {
        if id.trim().is_empty() {
            c.missing(format!("merchant_ids[{i}]"));
        }
    }
    match &enrolment.enrolment_type {
        EnrolmentType::EthocaAlert => {
            if enrolment.verifi_rdr.is_some() {
                c.push(
                    "verifi_rdr".into(),
                    INVALID_COMBINATION,
                    "must be absent for an ETHOCA_ALERT enrolment",
                );
            }
            match &enrolment.ethoca_alert {
                None => c.missing("ethoca_alert".into()),
                Some(ethoca) => {
                    check_descriptors(&mut c, "ethoca_alert.descriptors", &ethoca.descriptors)
                }
            }
        }
        EnrolmentType::VerifiRdr => {
            if enrolment.ethoca_alert.is_some() {
                c.push(
                    "ethoca_alert".into(),
                    INVALID_COMBINATION,
                    "must be absent for a VERIFI_RDR enrolment",
                );
            }
            match &enrolment.verifi_rdr {
                None => c.missing("verifi_rdr".into()),
                Some(rdr) => {
                    let bin = rdr.bin.as_deref().filter(|b| !b.trim().is_empty());
                    let caid = rdr.caid.as_deref().filter(|b| !b.trim().is_empty());
                    let arns: Vec<&String> = rdr.arns.iter().flatten().collect();
                    match (bin, caid) {
                        (Some(_), None) => c.push(
                            "verifi_rdr.caid".into(),
                            INVALID_COMBINATION,
                            "is required together with verifi_rdr.bin",
                        ),
                        (None, Some(_)) => c.push(
                            "verifi_rdr.bin".into(),
                            INVALID_COMBINATION,
                            "is required together with verifi_rdr.caid",
                        ),
                        (None, None) if arns.is_empty() => c.push(
                            "verifi_rdr".into(),
                            MISSING_FIELD,
                            "give bin and caid together, or at least one ARN in arns",
                        ),
                        _ => {}
                    }
                    if let Some(bin) = bin {
                        if !digits(bin, 6, 8) {
                            c.push(
                                "verifi_rdr.bin".into(),
                                INVALID_VALUE,
                                "must be 6 to 8 digits",
                            );
                        }
                    }
                    for (i, arn) in arns.iter().enumerate() {
                        if arn.trim().is_empty() {
                            c.missing(format!("verifi_rdr.arns[{i}]"));
                        }
                    }
                }
            }
        }
        other => c.push(
            "type".into(),
            INVALID_VALUE,
            format!("{other} is not one of ETHOCA_ALERT, VERIFI_RDR"),
        ),
    }
    c.finish()
}

/// Ethoca descriptors on their own (paths `descriptors[i].field`).
pub fn validate_ethoca_descriptors(
    descriptors: &[EthocaDescriptor],
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_descriptors(&mut c, "descriptors", descriptors);
    c.finish()
}

fn check_descriptors(c: &mut Collector, prefix: &str, descriptors: &[EthocaDescriptor]) {
    if descriptors.is_empty() {
        c.push(
            prefix.to_owned(),
            MISSING_FIELD,
            "at least one billing descriptor is required",
        );
    }
    for (i, d) in descriptors.iter().enumerate() {
        let at = format!("{prefix}[{i}]");
        if d.descriptor.trim().is_empty() {
            c.missing(path(&at, "descriptor"));
        }
        check_match_type(c, path(&at, "match_type"), &d.match_type);
    }
}

fn check_match_type(c: &mut Collector, field: String, match_type: &MatchType) {
    if !match_type.is_known() {
        c.push(
            field,
            INVALID_VALUE,
            format!("{match_type} is not one of STARTS_WITH, EXACT_MATCH"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Rulesets
// ---------------------------------------------------------------------------------------------

/// A ruleset for any enrolment type: enrolments given, rules well formed, at most one rule of
/// each type. `rdr` adds the Verifi RDR limits: outcome REFUND or ACCEPT_DISPUTE, AMOUNT rules
/// in USD.
pub fn validate_create_ruleset(ruleset: &CreateRuleset, rdr: bool) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if ruleset.organisation_id.trim().is_empty() {
        c.missing("organisation_id".into());
    }
    if ruleset.enrolment_ids.is_empty() {
        c.push(
            "enrolment_ids".into(),
            MISSING_FIELD,
            "at least one enrolment id is required",
        );
    }
    if rdr {
        check_rdr_outcome(&mut c, &ruleset.outcome);
    } else if !ruleset.outcome.is_known() {
        c.push(
            "outcome".into(),
            INVALID_VALUE,
            format!(
                "{} is not one of REFUND, CANCEL, REFUND_AND_CANCEL, ACCEPT_DISPUTE",
                ruleset.outcome
            ),
        );
    }
    if !ruleset.join_operator.is_known() {
        c.push(
            "join_operator".into(),
            INVALID_VALUE,
            format!("{} is not one of AND, OR", ruleset.join_operator),
        );
    }
    if ruleset.rules.is_empty() {
        c.push(
            "rules".into(),
            MISSING_FIELD,
            "at least one rule is required",
        );
    }
    for kind in [RuleType::Amount, RuleType::Descriptor] {
        let count = ruleset.rules.iter().filter(|r| r.rule_type == kind).count();
        if count > 1 {
            c.push(
                "rules".into(),
                TOO_MANY,
                format!("{count} {kind} rules; at most one per ruleset"),
            );
        }
    }
    for (i, rule) in ruleset.rules.iter().enumerate() {
        check_rule(
            &mut c,
            &format!("rules[{i}]"),
            &rule.rule_type,
            &rule.parameters,
            rdr,
        );
    }
    c.finish()
}

/// One rule (paths `type`, `parameters.*`).
pub fn validate_rule(rule: &Rule, rdr: bool) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    check_rule(&mut c, "", &rule.rule_type, &rule.parameters, rdr);
    c.finish()
}

/// `PATCH /v1/rulesets/{id}/rules/{rule_id}`: `current` is the rule's type today (a patch
/// that changes only the parameters keeps it).
pub fn validate_patch_rule(
    patch: &PatchRule,
    current: &RuleType,
    rdr: bool,
) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if patch.rule_type.is_none() && patch.parameters.is_none() {
        c.push(String::new(), MISSING_FIELD, "give type and/or parameters");
    }
    if let Some(parameters) = &patch.parameters {
        check_rule(
            &mut c,
            "",
            patch.rule_type.as_ref().unwrap_or(current),
            parameters,
            rdr,
        );
    }
    c.finish()
}

fn check_rdr_outcome(c: &mut Collector, outcome: &RulesetOutcome) {
    if !matches!(
        outcome,
        RulesetOutcome::Refund | RulesetOutcome::AcceptDispute
    ) {
        c.push(
            "outcome".into(),
            INVALID_VALUE,
            format!("{outcome} is not allowed for Verifi RDR: use REFUND or ACCEPT_DISPUTE"),
        );
    }
}

fn check_rule(
    c: &mut Collector,
    prefix: &str,
    rule_type: &RuleType,
    p: &RuleParameters,
    rdr: bool,
) {
    let params = path(prefix, "parameters");
    match rule_type {
        RuleType::Amount => {
            match &p.operator {
                None => c.missing(path(&params, "operator")),
                Some(op) if !op.is_known() => c.push(
                    path(&params, "operator"),
                    INVALID_VALUE,
                    format!("{op} is not a known operator"),
                ),
                Some(_) => {}
            }
            non_negative(c, path(&params, "amount_in_cents"), p.amount_in_cents);
            currency(c, path(&params, "currency_code"), &p.currency_code);
            if rdr {
                if let Some(code) = p.currency_code.as_deref().filter(|c| is_iso_4217(c)) {
                    if code != "USD" {
                        c.push(
                            path(&params, "currency_code"),
                            INVALID_CURRENCY,
                            format!("RDR amount rules are in USD, not {code}"),
                        );
                    }
                }
            }
        }
        RuleType::Descriptor => match &p.descriptors {
            None => c.missing(path(&params, "descriptors")),
            Some(list) if list.is_empty() => c.push(
                path(&params, "descriptors"),
                MISSING_FIELD,
                "at least one descriptor is required",
            ),
            Some(list) => {
                for (i, d) in list.iter().enumerate() {
                    let at = format!("{params}.descriptors[{i}]");
                    if d.value.trim().is_empty() {
                        c.missing(path(&at, "value"));
                    }
                    check_match_type(c, path(&at, "match_type"), &d.match_type);
                }
            }
        },
        other => c.push(
            path(prefix, "type"),
            INVALID_VALUE,
            format!("{other} is not one of AMOUNT, DESCRIPTOR"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

/// `GET /v1/alerts` filters: `alert_received_at_gte <= alert_received_at_lte` when both are
/// given, a positive `limit`.
pub fn validate_alert_query(query: &AlertQuery) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if let (Some(gte), Some(lte)) = (query.alert_received_at_gte, query.alert_received_at_lte) {
        if gte > lte {
            c.push(
                "alert_received_at_gte".into(),
                INVALID_DATE_RANGE,
                format!(
                    "{} is after alert_received_at_lte {}",
                    gte.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    lte.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
            );
        }
    }
    if query.limit == Some(0) {
        c.push("limit".into(), INVALID_VALUE, "must be at least 1");
    }
    c.finish()
}

/// `PATCH /v1/alerts/{id}`: an action and/or a note, and a known action.
pub fn validate_update_alert(update: &UpdateAlert) -> Result<(), ValidationErrors> {
    let mut c = Collector::default();
    if update.action.is_none() && blank(&update.note) {
        c.push(String::new(), MISSING_FIELD, "give an action and/or a note");
    }
    if let Some(action) = &update.action {
        if !action.is_known() {
            c.push(
                "action".into(),
                INVALID_VALUE,
                format!("{action} is not one of REFUND, CANCEL, REFUND_AND_CANCEL, ACCEPT_DISPUTE"),
            );
        }
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{
        AlertAction, AmountOperator, DescriptorCriterion, JoinOperator, VerifiRdrDetails,
    };
    use serde_json::json;

    fn order() -> Order {
        serde_json::from_value(json!({
            "type": "COMPLETE",
            "organisation_id": "org_1",
            "integration_id": "int_1",
            "reference_id": "order-1",
            "order_datetime": "2026-02-17T09:59:00Z",
            "order_number": "AF-1",
            "order_subtotal_amount_in_cents": 4900,
            "order_currency": "USD",
            "order_total_amount_in_cents": 4900,
            "order_status": "CLOSED_COMPLETE",
            "transactions": [{
                "reference_id": "txn-1",
                "amount_in_cents": 4900,
                "currency": "USD",
                "payment_method_type": "CARD",
                "authorisation_status": "SETTLED",
                "payment_method_reference_id": "pi_1",
                "authorised_at": "2026-02-17T09:59:05Z",
                "payment_method_card_brand": "VISA",
                "payment_method_card_last_4": "4242"
            }]
        }))
        .unwrap()
    }

    fn fields(e: &ValidationErrors) -> Vec<(&str, &str)> {
        e.errors()
            .iter()
            .map(|f| (f.field.as_str(), f.code))
            .collect()
    }

    #[test]
    fn a_complete_order_from_the_guide_passes() {
        validate_complete_order(&order()).unwrap();
        validate_order_batch(&[order()]).unwrap();
    }

    #[test]
    fn every_missing_order_field_is_named() {
        let empty: Order = serde_json::from_value(json!({})).unwrap();
        let e = validate_complete_order(&empty).unwrap_err();
        for field in [
            "type",
            "organisation_id",
            "integration_id",
            "reference_id",
            "order_datetime",
            "order_number",
            "order_subtotal_amount_in_cents",
            "order_currency",
            "order_total_amount_in_cents",
            "order_status",
            "transactions",
        ] {
            assert!(e.has(field, MISSING_FIELD), "{field} not reported in {e}");
        }
        assert_eq!(e.errors().len(), 11, "{e}");
    }

    #[test]
    fn order_type_and_status_values_are_checked() {
        let mut o = order();
        o.order_type = Some(OrderType::Partial);
        o.order_status = Some("SHIPPED".into());
        let e = validate_complete_order(&o).unwrap_err();
        assert_eq!(
            fields(&e),
            [("type", INVALID_VALUE), ("order_status", INVALID_VALUE)]
        );
        assert!(e.to_string().contains("must be COMPLETE"), "{e}");
        o = order();
        o.order_status = Some("OTHER".into());
        validate_complete_order(&o).unwrap();
    }

    #[test]
    fn currencies_must_be_iso_4217() {
        assert!(is_iso_4217("USD") && is_iso_4217("EUR") && is_iso_4217("JPY"));
        assert!(
            !is_iso_4217("usd") && !is_iso_4217("US") && !is_iso_4217("XXX") && !is_iso_4217("ABC")
        );
        // The table must stay sorted for the binary search.
        assert!(ISO_4217.windows(2).all(|w| w[0] < w[1]));
        let mut o = order();
        o.order_currency = Some("DOLLARS".into());
        o.transactions[0].currency = Some("usd".into());
        let e = validate_complete_order(&o).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("order_currency", INVALID_CURRENCY),
                ("transactions[0].currency", INVALID_CURRENCY)
            ]
        );
        assert!(
            e.to_string().contains("\"DOLLARS\" is not an ISO 4217"),
            "{e}"
        );
    }

    #[test]
    fn transaction_fields_and_card_rules() {
        let mut o = order();
        o.transactions.push(Transaction::default());
        let e = validate_complete_order(&o).unwrap_err();
        for field in [
            "reference_id",
            "payment_method_reference_id",
            "amount_in_cents",
            "currency",
            "payment_method_type",
            "authorisation_status",
            "authorised_at",
        ] {
            assert!(
                e.has(&format!("transactions[1].{field}"), MISSING_FIELD),
                "{field}: {e}"
            );
        }
        // A card needs brand and last 4; a bank transfer does not.
        let mut t = order().transactions[0].clone();
        t.payment_method_card_brand = None;
        t.payment_method_card_last_4 = Some("42a2".into());
        t.payment_method_card_bin = Some("42".into());
        let e = validate_transaction(&t).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("payment_method_card_brand", MISSING_FIELD),
                ("payment_method_card_last_4", INVALID_VALUE),
                ("payment_method_card_bin", INVALID_VALUE)
            ]
        );
        t.payment_method_type = Some("BANK_TRANSFER".into());
        t.payment_method_card_last_4 = None;
        t.payment_method_card_bin = None;
        validate_transaction(&t).unwrap();
        t.amount_in_cents = Some(-1);
        assert!(validate_transaction(&t)
            .unwrap_err()
            .has("amount_in_cents", INVALID_VALUE));
    }

    #[test]
    fn batches_are_bounded_and_reference_ids_unique() {
        let e = validate_order_batch(&[]).unwrap_err();
        assert_eq!(fields(&e), [("", MISSING_FIELD)]);
        let many = vec![order(); 101];
        let e = validate_order_batch(&many).unwrap_err();
        assert!(e.has("", TOO_MANY), "{e}");
        let mut second = order();
        second.order_currency = None;
        let e = validate_order_batch(&[order(), second]).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("[1].order_currency", MISSING_FIELD),
                ("[1].reference_id", INVALID_VALUE)
            ]
        );
    }

    #[test]
    fn ethoca_enrolments_need_descriptors_with_a_match_type() {
        let ok = CreateEnrolment::ethoca(
            vec!["mrch_1".into()],
            vec![EthocaDescriptor::new("ACMEFIT", MatchType::StartsWith)],
        );
        validate_create_enrolment(&ok).unwrap();
        let e = validate_create_enrolment(&CreateEnrolment::ethoca(vec![], vec![])).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("merchant_ids", MISSING_FIELD),
                ("ethoca_alert.descriptors", MISSING_FIELD)
            ]
        );
        let bad = CreateEnrolment::ethoca(
            vec!["mrch_1".into()],
            vec![
                EthocaDescriptor::new(" ", MatchType::ExactMatch),
                EthocaDescriptor::new("ACME", MatchType::Other("CONTAINS".into())),
            ],
        );
        let e = validate_create_enrolment(&bad).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("ethoca_alert.descriptors[0].descriptor", MISSING_FIELD),
                ("ethoca_alert.descriptors[1].match_type", INVALID_VALUE)
            ]
        );
        assert!(
            e.to_string()
                .contains("CONTAINS is not one of STARTS_WITH, EXACT_MATCH"),
            "{e}"
        );
        assert!(validate_ethoca_descriptors(&[])
            .unwrap_err()
            .has("descriptors", MISSING_FIELD));
    }

    #[test]
    fn rdr_enrolments_need_bin_and_caid_together_or_an_arn() {
        let m = || vec!["mrch_1".to_string()];
        validate_create_enrolment(&CreateEnrolment::rdr_bin_caid(m(), "411111", "CAID123"))
            .unwrap();
        validate_create_enrolment(&CreateEnrolment::rdr_arns(
            m(),
            vec!["74027012345678901234567".into()],
        ))
        .unwrap();
        let rdr = |bin: Option<&str>, caid: Option<&str>, arns: Option<Vec<String>>| {
            let mut e = CreateEnrolment::rdr_arns(m(), vec![]);
            e.verifi_rdr = Some(VerifiRdrDetails {
                bin: bin.map(Into::into),
                caid: caid.map(Into::into),
                arns,
            });
            validate_create_enrolment(&e)
        };
        assert_eq!(
            fields(&rdr(Some("411111"), None, None).unwrap_err()),
            [("verifi_rdr.caid", INVALID_COMBINATION)]
        );
        assert_eq!(
            fields(&rdr(None, Some("CAID"), None).unwrap_err()),
            [("verifi_rdr.bin", INVALID_COMBINATION)]
        );
        assert_eq!(
            fields(&rdr(None, None, Some(vec![])).unwrap_err()),
            [("verifi_rdr", MISSING_FIELD)]
        );
        assert_eq!(
            fields(&rdr(Some("41"), Some("CAID"), None).unwrap_err()),
            [("verifi_rdr.bin", INVALID_VALUE)]
        );
        let mut mixed = CreateEnrolment::rdr_bin_caid(m(), "411111", "CAID123");
        mixed.ethoca_alert = Some(Default::default());
        assert!(validate_create_enrolment(&mixed)
            .unwrap_err()
            .has("ethoca_alert", INVALID_COMBINATION));
    }

    fn ruleset(outcome: RulesetOutcome, rules: Vec<Rule>) -> CreateRuleset {
        CreateRuleset {
            organisation_id: "org_1".into(),
            enrolment_ids: vec!["enrl_rdr".into()],
            outcome,
            join_operator: JoinOperator::Or,
            is_enabled: None,
            rules,
        }
    }

    fn descriptor_rule() -> Rule {
        Rule::descriptor(vec![DescriptorCriterion {
            value: "ACME HV".into(),
            match_type: MatchType::StartsWith,
        }])
    }

    #[test]
    fn rdr_rulesets_follow_the_limits() {
        let amount = Rule::amount(AmountOperator::GreaterThan, "USD", 10000);
        validate_create_ruleset(
            &ruleset(
                RulesetOutcome::AcceptDispute,
                vec![amount.clone(), descriptor_rule()],
            ),
            true,
        )
        .unwrap();
        validate_create_ruleset(&ruleset(RulesetOutcome::Refund, vec![amount.clone()]), true)
            .unwrap();

        let e =
            validate_create_ruleset(&ruleset(RulesetOutcome::Cancel, vec![amount.clone()]), true)
                .unwrap_err();
        assert_eq!(fields(&e), [("outcome", INVALID_VALUE)]);
        assert!(
            e.to_string().contains("use REFUND or ACCEPT_DISPUTE"),
            "{e}"
        );
        assert!(validate_create_ruleset(
            &ruleset(RulesetOutcome::RefundAndCancel, vec![amount.clone()]),
            true
        )
        .is_err());
        // CANCEL is fine for an Ethoca ruleset.
        validate_create_ruleset(
            &ruleset(RulesetOutcome::Cancel, vec![amount.clone()]),
            false,
        )
        .unwrap();

        let e = validate_create_ruleset(
            &ruleset(RulesetOutcome::Refund, vec![amount.clone(), amount.clone()]),
            true,
        )
        .unwrap_err();
        assert_eq!(fields(&e), [("rules", TOO_MANY)]);
        let e = validate_create_ruleset(
            &ruleset(
                RulesetOutcome::Refund,
                vec![descriptor_rule(), descriptor_rule()],
            ),
            false,
        )
        .unwrap_err();
        assert_eq!(fields(&e), [("rules", TOO_MANY)]);

        let eur = Rule::amount(AmountOperator::GreaterThan, "EUR", 10000);
        let e = validate_create_ruleset(&ruleset(RulesetOutcome::Refund, vec![eur.clone()]), true)
            .unwrap_err();
        assert_eq!(
            fields(&e),
            [("rules[0].parameters.currency_code", INVALID_CURRENCY)]
        );
        validate_rule(&eur, false).unwrap();

        let e =
            validate_create_ruleset(&ruleset(RulesetOutcome::Refund, vec![]), true).unwrap_err();
        assert_eq!(fields(&e), [("rules", MISSING_FIELD)]);
    }

    #[test]
    fn rules_and_rule_patches_name_their_parameters() {
        let mut amount = Rule::amount(AmountOperator::GreaterThan, "USD", 100);
        amount.parameters.operator = None;
        amount.parameters.amount_in_cents = None;
        let e = validate_rule(&amount, true).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("parameters.operator", MISSING_FIELD),
                ("parameters.amount_in_cents", MISSING_FIELD)
            ]
        );
        let bad_descriptor = Rule::descriptor(vec![DescriptorCriterion {
            value: String::new(),
            match_type: MatchType::Other("FUZZY".into()),
        }]);
        let e = validate_rule(&bad_descriptor, true).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ("parameters.descriptors[0].value", MISSING_FIELD),
                ("parameters.descriptors[0].match_type", INVALID_VALUE)
            ]
        );
        // A patch that changes only parameters is checked against the rule's current type.
        let patch = PatchRule {
            rule_type: None,
            parameters: Some(RuleParameters {
                currency_code: Some("GBP".into()),
                ..Default::default()
            }),
        };
        let e = validate_patch_rule(&patch, &RuleType::Amount, true).unwrap_err();
        assert!(e.has("parameters.currency_code", INVALID_CURRENCY), "{e}");
        assert!(e.has("parameters.operator", MISSING_FIELD), "{e}");
        assert!(validate_patch_rule(&PatchRule::default(), &RuleType::Amount, true).is_err());
    }

    #[test]
    fn alert_query_date_range_and_update() {
        let at = |s: &str| Some(s.parse().unwrap());
        let mut q = AlertQuery {
            alert_received_at_gte: at("2026-02-01T00:00:00Z"),
            alert_received_at_lte: at("2026-02-01T00:00:00Z"),
            ..Default::default()
        };
        validate_alert_query(&q).unwrap();
        q.alert_received_at_gte = at("2026-02-02T00:00:00Z");
        let e = validate_alert_query(&q).unwrap_err();
        assert_eq!(fields(&e), [("alert_received_at_gte", INVALID_DATE_RANGE)]);
        assert!(
            e.to_string().contains(
                "2026-02-02T00:00:00Z is after alert_received_at_lte 2026-02-01T00:00:00Z"
            ),
            "{e}"
        );
        validate_alert_query(&AlertQuery {
            alert_received_at_gte: at("2026-02-02T00:00:00Z"),
            ..Default::default()
        })
        .unwrap();
        assert!(validate_alert_query(&AlertQuery {
            limit: Some(0),
            ..Default::default()
        })
        .unwrap_err()
        .has("limit", INVALID_VALUE));

        validate_update_alert(&UpdateAlert::action(AlertAction::Refund)).unwrap();
        validate_update_alert(&UpdateAlert::note("called the customer")).unwrap();
        assert_eq!(
            fields(&validate_update_alert(&UpdateAlert::default()).unwrap_err()),
            [("", MISSING_FIELD)]
        );
        let e = validate_update_alert(&UpdateAlert::action(AlertAction::Other("VOID".into())))
            .unwrap_err();
        assert_eq!(fields(&e), [("action", INVALID_VALUE)]);
    }
}
