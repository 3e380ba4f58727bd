//! `cbs onboard --file customer.json`: runs (or resumes) the onboarding flow for one customer,
//! exactly as `POST /api/onboarding` does (`shared::domain::onboarding`). Prints the stored
//! customer record (every id ChargebackStop returned) as JSON. Re-running the same file after a
//! failure resumes where it stopped and creates nothing twice.
//!
//! Environment: TABLE_PREFIX, STACK_MODE, CBS_API_BASE_URL, CBS_API_KEY (and the AWS variables).

use anyhow::Context;
use shared::adapters::dynamo::customers::DynamoCustomerStore;
use shared::client::RetryPolicy;
use shared::clock::SystemClock;
use shared::config::PartnerEnv;
use shared::domain::onboarding::{refuse_key_of_other_mode, CustomerSpec, Onboarding};
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct OnboardArgs {
    /// The customer spec (JSON, the body of POST /api/onboarding); `-` reads stdin.
    #[arg(long, short)]
    pub file: PathBuf,
}

pub async fn run(args: OnboardArgs) -> anyhow::Result<()> {
    let raw = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("read {}", args.file.display()))?
    };
    // serde_path_to_error would name the field too; serde_json's line/column is enough for a file.
    let spec: CustomerSpec = serde_json::from_str(&raw)
        .with_context(|| format!("{} is not a valid customer spec", args.file.display()))?;

    let partner = PartnerEnv::from_env()?;
    if let Some(key) = partner.api_key() {
        refuse_key_of_other_mode(partner.mode, &key)?;
    }
    let api = partner.client(RetryPolicy::default())?;
    let store = DynamoCustomerStore::from_env(&partner.tables).await;
    let flow = Onboarding {
        api: &api,
        store: &store,
        clock: &SystemClock,
        mode: partner.mode,
    };
    let mut record = flow.run(&spec).await?;
    record.run_token = None;
    println!("{}", serde_json::to_string_pretty(&record)?);
    Ok(())
}
