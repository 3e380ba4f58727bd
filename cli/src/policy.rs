//! `cbs policy test --organisation X [--policy FILE] [--since DATE]`: a dry run of a decision
//! policy (the file, or the organisation's stored policy) over the organisation's stored
//! alerts (`shared::domain::matching::dry_run`). Each alert is matched and its evidence read
//! as process-events would now, writing nothing and sending nothing; printed with what the
//! policy would decide (action or PERSON, the rule, the evidence) next to what was decided,
//! then a summary (agree / would differ / not decided, per rule).
//!
//! Exit codes: 0 done; 1 the stores could not be read; 2 bad input (unknown organisation,
//! invalid policy file, bad date); 3 with `--fail-on-difference`, some alert would be decided
//! otherwise.

use crate::policy_stores::Stores;
use crate::recovery_wiring::parse_time;
use anyhow::Context;
use shared::clock::{Clock, SystemClock};
use shared::domain::alert_policy::{policy_of_records, AlertPolicy};
use shared::domain::matching::dry_run::{
    organisation_known, policy_dry_run_with_progress, summarise, DryRunLine, DryRunSummary,
};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Dry run: what a policy would decide for stored alerts, against what was decided.
    Test(TestArgs),
}

#[derive(clap::Args)]
pub struct TestArgs {
    #[arg(long)]
    pub organisation: String,
    /// A policy JSON file (the customer record's `decision_policy` format); default: the
    /// organisation's stored policy (or DEFAULT_ALERT_POLICY), as process-events would use.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Alerts received at or after (2026-11-24, 2026-11-24T10:00:00Z, or an age: 30d).
    #[arg(long)]
    pub since: Option<String>,
    /// Alerts read at most (newest received first).
    #[arg(long, default_value_t = 5000)]
    pub limit: i32,
    /// One JSON document (policy, lines, summary) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit 3 when the policy would decide any alert otherwise than it was decided.
    #[arg(long)]
    pub fail_on_difference: bool,
}

/// Bad input: printed, exit code 2 (like clap's own usage errors).
pub fn refuse(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

/// Reads and validates a policy file: every problem the validation finds, by field.
pub fn policy_from_file(path: &PathBuf) -> Result<AlertPolicy, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read policy file {}: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("policy file {} is not JSON: {e}", path.display()))?;
    AlertPolicy::from_json(&value).map_err(|invalid| {
        let mut out = format!(
            "policy file {} is invalid ({} problem(s)):",
            path.display(),
            invalid.0.len()
        );
        for p in &invalid.0 {
            out.push_str(&format!("\n  {}: {}", p.field, p.message));
        }
        out
    })
}

pub async fn run(cmd: PolicyCommand) -> anyhow::Result<()> {
    let PolicyCommand::Test(args) = cmd;
    let since = args
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .unwrap_or_else(|e| refuse(format!("--since: {e}")));
    if args.limit < 1 {
        refuse("--limit must be at least 1");
    }
    let file_policy = args
        .policy
        .as_ref()
        .map(|p| policy_from_file(p).unwrap_or_else(|e| refuse(e)));
    let stores = Stores::from_env().await?;
    let org = args.organisation.as_str();
    if !organisation_known(&*stores.customers, &*stores.alerts, org)
        .await
        .context("reading the customers and alerts tables")?
    {
        refuse(format!(
            "unknown organisation {org}: no customer onboarded for it and no alert stored"
        ));
    }
    let (policy, source) = match file_policy {
        Some(p) => (
            p,
            format!("file {}", args.policy.as_ref().unwrap().display()),
        ),
        None => {
            let default = AlertPolicy::default_from_env()?;
            let records = stores.customers.by_organisation(org).await?;
            let (policy, problems) = policy_of_records(org, &records, &default);
            for p in &problems {
                eprintln!(
                    "policy test: warning: {}; the default policy applies, as in process-events",
                    p.notification(String::new()).subject
                );
            }
            let source =
                if records.iter().any(|r| r.decision_policy.is_some()) && problems.is_empty() {
                    "the organisation's stored policy".to_string()
                } else {
                    "the default policy (DEFAULT_ALERT_POLICY)".to_string()
                };
            (policy, source)
        }
    };
    eprintln!(
        "policy test: policy {:?} ({source}), organisation {org}",
        policy.name
    );
    let mut last = std::time::Instant::now();
    let mut report = |done: usize, of: usize| {
        if last.elapsed() >= std::time::Duration::from_secs(2) || done % 100 == 0 {
            eprintln!("policy test: {done} of at most {of} alerts evaluated");
            last = std::time::Instant::now();
        }
    };
    let lines = policy_dry_run_with_progress(
        &*stores.alerts,
        &*stores.index,
        &policy,
        org,
        since,
        args.limit,
        SystemClock.now(),
        &mut report,
    )
    .await
    .context("dry run stopped: reading the alerts or transactions table failed")?;
    let summary = summarise(&lines);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "organisation_id": org, "policy": policy.name, "policy_source": source,
                "lines": lines, "summary": summary,
            }))?
        );
    } else {
        print!("{}", render(&lines, &summary));
    }
    if args.fail_on_difference && summary.total.would_differ > 0 {
        std::process::exit(3);
    }
    Ok(())
}

/// The text report: one block per alert, then the summary.
pub fn render(lines: &[DryRunLine], summary: &DryRunSummary) -> String {
    let mut out = String::new();
    for l in lines {
        let verdict = if !l.compared() {
            "not decided"
        } else if l.same {
            "agree"
        } else {
            "WOULD DIFFER"
        };
        out.push_str(&format!(
            "{}  received {}  {}  {}\n",
            l.alert_id,
            l.received_at.as_deref().unwrap_or("-"),
            l.amount,
            l.matched
        ));
        out.push_str(&format!("  would:    {}  by {}\n", l.would, l.rule));
        if !l.evidence.is_empty() {
            out.push_str(&format!("  evidence: {}\n", l.evidence.join("; ")));
        }
        out.push_str(&format!(
            "  decided:  {}{}  [{verdict}]\n",
            l.decided,
            l.decided_rule
                .as_deref()
                .map(|r| format!("  by {r}"))
                .unwrap_or_default()
        ));
    }
    let t = &summary.total;
    out.push_str(&format!(
        "\n{} alert(s): {} agree, {} would differ, {} not decided\n",
        t.alerts, t.agree, t.would_differ, t.not_decided
    ));
    for (rule, t) in &summary.by_rule {
        out.push_str(&format!(
            "  {rule}: {} alert(s), {} agree, {} would differ, {} not decided\n",
            t.alerts, t.agree, t.would_differ, t.not_decided
        ));
    }
    for (change, n) in &summary.changes {
        out.push_str(&format!("  decided {change}: {n}\n"));
    }
    out
}
