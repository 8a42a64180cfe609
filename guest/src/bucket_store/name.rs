//! The name of a shared store's bucket, as users write it: the key prefix a Redis user
//! knows (`sess:` is connect-redis's), checked once and reduced to the one name every
//! host and the component agree on.

use crate::error::StoreError;

/// The longest prefix accepted, in characters.
const MAX_LEN: usize = 64;

/// The bucket `prefix` names: 1 to 64 characters of `[A-Za-z0-9_.:-]`, its trailing
/// colons taken off (they are the separator Redis users write, as in `sess:`; the host
/// puts its own in front of every key), so `sess:` and `sess` are one bucket. No glob or
/// brace character can reach a key or a `SCAN` pattern.
///
/// Errors: `invalid-input` for anything else, naming the prefix (never a directory).
pub fn bucket_name(prefix: &str) -> Result<&str, StoreError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':');
    let name = prefix.trim_end_matches(':');
    if name.is_empty() || prefix.len() > MAX_LEN || !prefix.bytes().all(allowed) {
        return Err(StoreError::InvalidInput(format!(
            "the redis prefix {prefix:?} must be 1 to {MAX_LEN} characters of [A-Za-z0-9_.:-], \
             not only colons"
        )));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_colon_is_the_separator_not_the_name() {
        for (prefix, name) in [
            ("sess:", "sess"),
            ("sess", "sess"),
            ("sess::", "sess"),
            ("app:prod", "app:prod"),
            ("app:prod:", "app:prod"),
            ("session-vault", "session-vault"),
            ("a.b_c-1", "a.b_c-1"),
        ] {
            assert_eq!(bucket_name(prefix).unwrap(), name, "{prefix}");
            // Reducing twice changes nothing: every host agrees whichever it is given.
            assert_eq!(bucket_name(name).unwrap(), name, "{prefix}");
        }
    }

    #[test]
    fn glob_brace_space_and_empty_prefixes_are_refused() {
        let long = "x".repeat(MAX_LEN + 1);
        for bad in [
            "", ":", "::", "a*", "a?", "a[b]", "a{b", "a}b", "a b", "a\\b", "é", &long,
        ] {
            match bucket_name(bad) {
                Err(StoreError::InvalidInput(message)) => {
                    assert!(message.contains("redis prefix"), "{message}");
                    assert!(!message.contains("director"), "{message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert_eq!(bucket_name(&"x".repeat(MAX_LEN)).unwrap().len(), MAX_LEN);
    }
}
