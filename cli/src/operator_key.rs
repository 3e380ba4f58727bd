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
    /// Every key: its hash prefix (the id to revoke by), holder, creation, revoked or not.
    List,
    /// Revoke keys: one by its hash prefix (from `list`), or every key of an operator.
    Revoke {
        /// The first characters of the key's hash, as `list` shows them (unique).
        #[arg(
            long,
            conflicts_with = "operator",
            required_unless_present = "operator"
        )]
        id: Option<String>,
        /// Every key of this operator.
        #[arg(long)]
        operator: Option<String>,
    },
}

/// How many characters of a hash `list` shows (and `revoke --id` takes).
const ID_CHARS: usize = 12;

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
        OperatorKeyCommand::List => {
            let tables = TableNames::from_env()?;
            let store = DynamoOperatorKeys::from_env(&tables).await;
            let mut keys = store.list().await?;
            keys.sort_by(|a, b| a.created_at.cmp(&b.created_at));
            println!("{:<14} {:<32} {:<34} state", "id", "operator", "created");
            for k in keys {
                println!(
                    "{:<14} {:<32} {:<34} {}",
                    &k.key_hash[..ID_CHARS.min(k.key_hash.len())],
                    k.operator,
                    k.created_at,
                    if k.revoked { "revoked" } else { "active" }
                );
            }
            Ok(())
        }
        OperatorKeyCommand::Revoke { id, operator } => {
            let tables = TableNames::from_env()?;
            let store = DynamoOperatorKeys::from_env(&tables).await;
            let keys = store.list().await?;
            let chosen: Vec<_> = match (&id, &operator) {
                (Some(id), _) => {
                    anyhow::ensure!(
                        id.len() >= 6,
                        "--id needs at least 6 characters of the hash"
                    );
                    keys.iter()
                        .filter(|k| k.key_hash.starts_with(id.as_str()))
                        .collect()
                }
                (None, Some(op)) => keys.iter().filter(|k| &k.operator == op).collect(),
                (None, None) => anyhow::bail!("say which key: --id or --operator"),
            };
            anyhow::ensure!(!chosen.is_empty(), "no operator key matches");
            anyhow::ensure!(
                id.is_none() || chosen.len() == 1,
                "--id matches {} keys; give more characters",
                chosen.len()
            );
            for k in chosen {
                store.revoke(&k.key_hash).await?;
                println!(
                    "revoked {} ({})",
                    &k.key_hash[..ID_CHARS.min(k.key_hash.len())],
                    k.operator
                );
            }
            Ok(())
        }
    }
}
