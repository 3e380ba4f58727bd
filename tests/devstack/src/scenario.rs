//! The short scenario `bin/dev` runs once the stack is up, and the first whole-flow test:
//! ChargebackStop raises an Ethoca alert, its signed webhook goes Worker -> SQS -> process-events
//! -> DynamoDB, an operator refunds it through the ops API, and ChargebackStop shows it
//! RESOLVED / REFUNDED; the resulting `alert.updated` webhook brings our copy up to date.

use crate::{Customer, Stack};
use reqwest::Method;
use serde_json::{json, Value};

/// What the scenario saw, for printing and asserting.
#[derive(Debug, Clone)]
pub struct OperatorRefund {
    pub alert_id: String,
    /// Our stored alert once the webhook was processed (ACTION_REQUIRED).
    pub stored_before: Value,
    /// The ops API's answer to the action.
    pub action_response: Value,
    /// ChargebackStop's alert afterwards.
    pub cbs_after: Value,
    /// Our stored alert after the `alert.updated` webhook came back.
    pub stored_after: Value,
}

pub fn status(v: &Value) -> &str {
    v["status"].as_str().unwrap_or("")
}

/// Runs the scenario, calling `step` with a line for a person after each stage.
pub async fn operator_refunds_an_ethoca_alert(
    stack: &Stack,
    customer: &Customer,
    mut step: impl FnMut(&str),
) -> anyhow::Result<OperatorRefund> {
    let alert = stack
        .simulate_alert(
            &customer.organisation_id,
            &customer.ethoca_enrolment_id,
            4900,
        )
        .await?;
    let alert_id = alert["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("simulated alert without id: {alert}"))?
        .to_string();
    step(&format!(
        "ChargebackStop raised Ethoca alert {alert_id} ({}), webhook on its way",
        status(&alert)
    ));

    let stored_before = stack
        .wait_stored_alert(&alert_id, "the alert in the alerts table", |a| {
            status(a) == "ACTION_REQUIRED"
        })
        .await?;
    step(&format!(
        "stored by process-events, waiting for an operator (deadline {})",
        stored_before["action_required_deadline"]
            .as_str()
            .unwrap_or("?")
    ));

    let (code, action_response) = stack
        .ops(
            Method::POST,
            &format!("api/alerts/{alert_id}/action"),
            Some(json!({ "action": "REFUND", "note": "refunded by the devstack scenario" })),
        )
        .await?;
    anyhow::ensure!(
        code.is_success(),
        "operator action refused: {code} {action_response}"
    );
    step("operator chose REFUND in the ops API");

    let cbs_after = stack
        .eventually("ChargebackStop to show the alert RESOLVED", || async {
            stack
                .cbs_alert(&alert_id)
                .await
                .ok()
                .filter(|a| status(a) == "RESOLVED")
        })
        .await?;
    step(&format!(
        "ChargebackStop shows it {} / {}",
        status(&cbs_after),
        cbs_after["transaction_refund_outcome"]
            .as_str()
            .unwrap_or("?")
    ));

    let stored_after = stack
        .wait_stored_alert(&alert_id, "our copy to be RESOLVED", |a| {
            status(a) == "RESOLVED"
        })
        .await?;
    step("the alert.updated webhook brought our copy to RESOLVED");
    Ok(OperatorRefund {
        alert_id,
        stored_before,
        action_response,
        cbs_after,
        stored_after,
    })
}
