//! A string that must never reach a log line or an error message (API keys, webhook secrets,
//! AWS secret keys). `Debug` and `Display` print a fixed placeholder.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value: the name makes every use easy to find in review.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("cbs_live_abcdef");
        assert!(!format!("{secret:?}").contains("abcdef"));
        assert!(!format!("{secret}").contains("abcdef"));
        assert_eq!(secret.expose(), "cbs_live_abcdef");
    }
}
