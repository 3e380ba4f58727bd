//! Finding the stack `cbs` works on without hand-set variables.
//!
//! `bin/dev` (the dev-stack binary) writes every variable the commands read into an env file,
//! `$CBS_CACHE/dev.env` (default `~/.cache/chargeback-platform/dev.env`), and prints its path.
//! `cbs` reads that file at start-up (or the file `CBS_ENV_FILE` names): a variable already set
//! in the environment wins, so a cloud stack is still chosen by exporting its variables. When a
//! variable is missing anyway, the error says where it comes from.

use std::path::PathBuf;

/// Where the env file is looked for.
pub fn env_file_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CBS_ENV_FILE").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("CBS_CACHE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/chargeback-platform")
        });
    cache.join("dev.env")
}

/// `KEY=value` lines (`#` comments, blank lines, an optional `export `); values may be quoted.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Loads the env file, if there is one, without overriding what is set. Returns its path when
/// it was read.
pub fn load() -> Option<PathBuf> {
    let path = env_file_path();
    let text = std::fs::read_to_string(&path).ok()?;
    for (k, v) in parse(&text) {
        if std::env::var_os(&k).is_none_or(|cur| cur.is_empty()) {
            // Single-threaded here: called first thing in main, before the runtime starts work.
            unsafe { std::env::set_var(&k, &v) };
        }
    }
    Some(path)
}

/// Where a variable comes from, for the error when it is missing.
pub fn origin(var: &str) -> &'static str {
    match var {
        "TABLE_PREFIX" | "STACK_MODE" => {
            "the stack: `cbs-test`/`TEST` or `cbs-live`/`LIVE` in the cloud (infra/bin/deploy), the dev stack's prefix locally"
        }
        "EDGE_QUEUE_URL" | "EDGE_DLQ_URL" => {
            "the stack outputs EdgeQueueUrl / EdgeDeadLetterQueueUrl (`aws cloudformation describe-stacks`), or the dev stack"
        }
        "CBS_API_BASE_URL" => "https://api.chargebackstop.com, or the local sandbox's URL",
        "CBS_API_KEY" | "CBS_API_KEY_SECRET_ID" | "CBS_API_KEY_SECRET_ARN" => {
            "the partner API key: CBS_API_KEY_SECRET_ID names its Secrets Manager secret (cbs/<env>/api-key) in the cloud"
        }
        "AWS_ENDPOINT_URL" => "the emulator locally; unset for real AWS",
        _ => "the stack's configuration (README \"Configuration\")",
    }
}

/// Rewrites a "variable X is not set" error into one that says where X comes from.
pub fn explain(err: anyhow::Error, loaded: Option<&PathBuf>) -> anyhow::Error {
    let missing = err
        .chain()
        .find_map(|e| e.downcast_ref::<shared::config::ConfigError>())
        .and_then(|e| match e {
            shared::config::ConfigError::Missing(name) => Some(*name),
            _ => None,
        });
    let Some(name) = missing else {
        return err;
    };
    let file = match loaded {
        Some(p) => format!("{} was read but does not set it", p.display()),
        None => format!(
            "no env file at {} (bin/dev writes it; CBS_ENV_FILE names another)",
            env_file_path().display()
        ),
    };
    anyhow::anyhow!(
        "{name} is not set: it comes from {}. {file}; or export {name} yourself.",
        origin(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_parse_with_comments_quotes_and_export() {
        let vars = parse(
            "# dev stack\nexport TABLE_PREFIX=cbs-dev\nCBS_API_KEY='cbs_test_x'\n\nA=\"b c\"\n",
        );
        assert_eq!(
            vars,
            vec![
                ("TABLE_PREFIX".into(), "cbs-dev".into()),
                ("CBS_API_KEY".into(), "cbs_test_x".into()),
                ("A".into(), "b c".into())
            ]
        );
    }

    #[test]
    fn a_missing_variable_says_where_it_comes_from() {
        let e = anyhow::Error::new(shared::config::ConfigError::Missing("EDGE_DLQ_URL"));
        let msg = explain(e, None).to_string();
        assert!(msg.contains("EDGE_DLQ_URL is not set"), "{msg}");
        assert!(msg.contains("EdgeDeadLetterQueueUrl"), "{msg}");
        assert!(msg.contains("bin/dev writes it"), "{msg}");
    }
}
