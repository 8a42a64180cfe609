//! Paged listing of every live session (`list`, `list-ids`): in id order, with the last
//! id of a page as the cursor of the next. A cursor is a position, not a snapshot: a
//! session live throughout a listing is on exactly one page, whatever is written or
//! removed meanwhile (ids only grow along the pages), and one created or removed meanwhile
//! may or may not be.

use crate::document::id;
use crate::document::session::Session;
use crate::error::StoreError;

/// The most sessions one page holds.
pub const MAX_PAGE: u32 = 1000;

/// One page of ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdPage {
    /// Live sessions' ids, in id order (byte order).
    pub ids: Vec<String>,
    /// Where the next page starts (pass it as `after`); `None` if this page is the last.
    pub next: Option<String>,
}

/// One page of sessions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPage {
    /// Live sessions, in id order (byte order).
    pub sessions: Vec<Session>,
    /// Where the next page starts (pass it as `after`); `None` if this page is the last.
    pub next: Option<String>,
}

/// Checks a page request: `limit` from 1 to [`MAX_PAGE`] (`invalid-input` otherwise) and
/// a cursor that is an id (`invalid-id` otherwise); the limit as a count.
pub(crate) fn request(after: Option<&str>, limit: u32) -> Result<usize, StoreError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(StoreError::InvalidInput(format!(
            "a page holds 1 to {MAX_PAGE} sessions, not {limit}"
        )));
    }
    if let Some(after) = after {
        id::validate(after)?;
    }
    Ok(usize::try_from(limit).unwrap_or(usize::MAX))
}

/// The cursor after a page of `ids` that `more` live sessions follow.
pub(crate) fn next(ids: &[String], more: bool) -> Option<String> {
    more.then(|| ids.last().cloned()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_checked() {
        assert_eq!(request(None, 1).ok(), Some(1));
        assert_eq!(request(Some("abc"), MAX_PAGE).ok(), Some(1000));
        assert!(matches!(request(None, 0), Err(StoreError::InvalidInput(_))));
        assert!(matches!(
            request(None, MAX_PAGE + 1),
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            request(Some("../x"), 5),
            Err(StoreError::InvalidId(_))
        ));
        assert_eq!(next(&["a".into(), "b".into()], true), Some("b".into()));
        assert_eq!(next(&["a".into()], false), None);
    }
}
