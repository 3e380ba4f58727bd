//! `POST /v2/enrolments/`: Ethoca by descriptors, Verifi RDR by BIN + CAID or ARNs.

use super::{
    digits, path, Collector, ValidationErrors, INVALID_COMBINATION, INVALID_VALUE, MISSING_FIELD,
};
use crate::models::{CreateEnrolment, EnrolmentType, EthocaDescriptor, MatchType};

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

pub(super) fn check_match_type(c: &mut Collector, field: String, match_type: &MatchType) {
    if !match_type.is_known() {
        c.push(
            field,
            INVALID_VALUE,
            format!("{match_type} is not one of STARTS_WITH, EXACT_MATCH"),
        );
    }
}
