//! TEST or LIVE, as every record that belongs to one stack keeps it. Below `config` (which reads
//! it from the environment and re-exports it) so the records need nothing above them.

/// TEST or LIVE: each stack is one mode and refuses the other's ids and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum StackMode {
    Test,
    Live,
}

impl std::str::FromStr for StackMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TEST" => Ok(StackMode::Test),
            "LIVE" => Ok(StackMode::Live),
            other => Err(format!("expected TEST or LIVE, got {other:?}")),
        }
    }
}
