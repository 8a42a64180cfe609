//! Where the CLI takes the store's secret from: never from an argument.

use std::path::Path;

use anyhow::Context;
use session_vault::Secret;

use super::exit::Usage;

/// The environment variable holding the secret.
pub const ENV: &str = "SESSION_VAULT_SECRET";
/// The prefix that marks a raw key: `hex:` followed by 64 hex digits.
pub const RAW_PREFIX: &str = "hex:";

/// The environment variable holding the legacy store's secret for `import-legacy`.
pub const LEGACY_ENV: &str = "SESSION_VAULT_LEGACY_SECRET";

/// The environment variable holding the new secret for `key add`.
pub const NEW_ENV: &str = "SESSION_VAULT_NEW_SECRET";

/// Reads the new secret for `key add` from `file` if given, else from
/// `SESSION_VAULT_NEW_SECRET`; the same forms as the store's secret.
pub fn load_new(file: Option<&Path>) -> anyhow::Result<Secret> {
    parse(text(file, NEW_ENV)?)
}

/// Reads the secret from `file` if given, else from `SESSION_VAULT_SECRET`.
pub fn load(file: Option<&Path>) -> anyhow::Result<Secret> {
    parse(text(file, ENV)?)
}

/// Reads the legacy store's secret (always a passphrase) from `file` if given, else
/// from `SESSION_VAULT_LEGACY_SECRET`.
pub fn load_legacy(file: Option<&Path>) -> anyhow::Result<String> {
    text(file, LEGACY_ENV)
}

fn text(file: Option<&Path>, env: &str) -> anyhow::Result<String> {
    Ok(match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the secret file {}", path.display()))?;
            strip_newline(text)
        }
        None => std::env::var(env).map_err(|e| {
            Usage(format!(
                "no secret: set {env} or pass the file option ({env}: {e})"
            ))
        })?,
    })
}

/// `hex:<64 hex digits>` is a raw key; anything else is a passphrase.
pub fn parse(text: String) -> anyhow::Result<Secret> {
    match text.strip_prefix(RAW_PREFIX) {
        Some(hex_key) => {
            let key = hex::decode(hex_key.trim())
                .map_err(|e| Usage(format!("the raw key after {RAW_PREFIX:?} is not hex: {e}")))?;
            if key.len() != 32 {
                return Err(Usage(format!(
                    "the raw key after {RAW_PREFIX:?} is {} bytes; it must be 32 (64 hex digits)",
                    key.len()
                ))
                .into());
            }
            Ok(Secret::RawKey(key))
        }
        None => Ok(Secret::Passphrase(text)),
    }
}

fn strip_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_prefix_selects_a_raw_key() {
        let secret = parse(format!("hex:{}", "ab".repeat(32))).unwrap();
        assert!(matches!(secret, Secret::RawKey(ref k) if k == &vec![0xab; 32]));
        assert!(parse("hex:abcd".into()).is_err());
        assert!(parse("hex:zz".into()).is_err());
        assert!(matches!(
            parse("plain words".into()).unwrap(),
            Secret::Passphrase(_)
        ));
    }

    #[test]
    fn one_trailing_newline_is_dropped_from_files() {
        assert_eq!(strip_newline("abc\n".into()), "abc");
        assert_eq!(strip_newline("abc\r\n".into()), "abc");
        assert_eq!(strip_newline("abc\n\n".into()), "abc\n");
        assert_eq!(strip_newline(" abc ".into()), " abc ");
    }
}
