//! Unit tests of every validation rule.

use super::*;
use crate::models::{
    AlertAction, AmountOperator, DescriptorCriterion, JoinOperator, VerifiRdrDetails,
};
use crate::models::{
    AlertQuery, CreateEnrolment, CreateRuleset, EthocaDescriptor, MatchType, Order, OrderType,
    PatchRule, Rule, RuleParameters, RuleType, RulesetOutcome, Transaction, UpdateAlert,
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
    validate_create_enrolment(&CreateEnrolment::rdr_bin_caid(m(), "411111", "CAID123")).unwrap();
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
    validate_create_ruleset(&ruleset(RulesetOutcome::Refund, vec![amount.clone()]), true).unwrap();

    let e = validate_create_ruleset(&ruleset(RulesetOutcome::Cancel, vec![amount.clone()]), true)
        .unwrap_err();
    assert_eq!(fields(&e), [("outcome", INVALID_VALUE)]);
    assert!(
        e.to_string()
            .contains("use REFUND, ACCEPT_DISPUTE or REFUND_AND_CANCEL"),
        "{e}"
    );
    // The Orders guide: REFUND_AND_CANCEL is accepted for RDR, published as REFUND.
    validate_create_ruleset(
        &ruleset(RulesetOutcome::RefundAndCancel, vec![amount.clone()]),
        true,
    )
    .unwrap();
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

    let e = validate_create_ruleset(&ruleset(RulesetOutcome::Refund, vec![]), true).unwrap_err();
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
        e.to_string()
            .contains("2026-02-02T00:00:00Z is after alert_received_at_lte 2026-02-01T00:00:00Z"),
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
    let e =
        validate_update_alert(&UpdateAlert::action(AlertAction::Other("VOID".into()))).unwrap_err();
    assert_eq!(fields(&e), [("action", INVALID_VALUE)]);
}
