//! `cbs operator-key create --operator <name>`: mints an operator API key for the ops API and
//! stores only its SHA-256 in `<TABLE_PREFIX>-operators`. The key is printed once, on stdout;
//! it cannot be shown again.
//!
//! Environment: TABLE_PREFIX (and the AWS variables).

use shared::adapters::dynamo::operators::DynamoOperatorKeys;
use shared::clock::{Clock, SystemClock};
use shared::config::TableNames;
use shared::ports::operator_keys::{hash_key, mint_key, OperatorKeys, OperatorRecord};

#[derive(clap::Subcommand)]
pub enum OperatorKeyCommand {
    /// Mint a key for one operator; prints the key (only time it is shown).
    Create {
        /// Who holds the key; recorded against every action they take.
        #[arg(long)]
        operator: String,
    },
}

pub async fn run(cmd: OperatorKeyCommand) -> anyhow::Result<()> {
    match cmd {
        OperatorKeyCommand::Create { operator } => {
            let operator = operator.trim().to_owned();
            anyhow::ensure!(!operator.is_empty(), "--operator must not be empty");
            let tables = TableNames::from_env()?;
            let store = DynamoOperatorKeys::from_env(&tables).await;
            let key = mint_key();
            store
                .insert(&OperatorRecord {
                    key_hash: hash_key(&key),
                    operator: operator.clone(),
                    created_at: SystemClock.now().to_rfc3339(),
                    revoked: false,
                })
                .await?;
            eprintln!(
                "operator key for {operator} stored in {}; keep it safe, it is not shown again:",
                tables.operators()
            );
            // The one place a secret is printed on purpose: it goes to the person who asked.
            println!("{}", key.expose());
            Ok(())
        }
    }
}
