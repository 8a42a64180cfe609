//! The names of the files in `log/`: `<16 hex>.seg` and `<16 hex>.hint`.

/// The subdirectory that holds the segments.
pub const LOG_DIR: &str = "log";
const SEGMENT_EXT: &str = ".seg";
pub(super) const HINT_EXT: &str = ".hint";

pub(super) fn segment_path(number: u64) -> String {
    format!("{LOG_DIR}/{number:016x}{SEGMENT_EXT}")
}

pub(super) fn hint_path(number: u64) -> String {
    format!("{LOG_DIR}/{number:016x}{HINT_EXT}")
}

/// The number of a segment file name, if it is one: 16 lowercase hex digits + `.seg`.
pub(super) fn segment_number(name: &str) -> Option<u64> {
    numbered(name, SEGMENT_EXT)
}

/// The number of a hint file name, if it is one: 16 lowercase hex digits + `.hint`.
pub(super) fn hint_number(name: &str) -> Option<u64> {
    numbered(name, HINT_EXT)
}

pub(super) fn numbered(name: &str, ext: &str) -> Option<u64> {
    let digits = name.strip_suffix(ext)?;
    if digits.len() != 16
        || !digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_recognised_exactly() {
        assert_eq!(hint_number("0000000000000001.hint"), Some(1));
        assert_eq!(segment_number("0000000000000001.hint"), None);
        assert_eq!(segment_number("0000000000000001.seg"), Some(1));
        assert_eq!(segment_number("000000000000000A.seg"), None);
        assert_eq!(segment_number("1.seg"), None);
        assert_eq!(segment_number("0000000000000001.seg.tmp"), None);
    }
}
