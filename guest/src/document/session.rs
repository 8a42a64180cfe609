//! A stored session: any JSON object with a `sessionId` and an `expiresAt`, kept member
//! for member as it was given (same names, same order, same values), so that a framework's
//! session reads back as exactly the JSON it wrote.
//!
//! The original `SessionData`'s members are optional; where present they must have the
//! original's types (see [`crate::document::model`]), `userContext.userId` indexes the
//! session by user, and `security` holds what `touch` records. Text is parsed strictly:
//! duplicate member names, nesting deeper than [`MAX_DEPTH`] and anything but an object at
//! the top are `invalid-input`, never a trap, whatever the input.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use zeroize::Zeroize;

use crate::document::id;
use crate::document::strict::Strict;
use crate::error::StoreError;

/// The deepest nesting of arrays and objects a session may hold, the top-level object
/// counting as 1: what the previous release's parser accepted, so every session it stored
/// reads. Deeper documents are `invalid-input`: parsing stops at this depth, so no input
/// can exhaust the stack.
pub const MAX_DEPTH: usize = 127;

/// A session document that passed validation. Compare with `==` for equality of every
/// member (member order aside, as in JSON); when the store first wrote it is not part of
/// the document and not compared.
#[derive(Debug, Clone)]
pub struct Session {
    members: Map<String, Value>,
    /// `sessionId`, kept beside the members because every path needs it.
    id: String,
    /// `expiresAt`, likewise.
    expires_at: u64,
    /// When the store first wrote a session of this id that has no `createdAt`: where a
    /// store's maximum lifetime counts from. Kept in the sealed record, never in the
    /// document.
    first_written: Option<u64>,
}

impl PartialEq for Session {
    fn eq(&self, other: &Session) -> bool {
        self.members == other.members
    }
}

impl Session {
    /// Parses and validates the JSON text of a session.
    ///
    /// Errors: `invalid-input` for text that is not one JSON object, has duplicate member
    /// names, nests deeper than [`MAX_DEPTH`], lacks `sessionId` or a non-negative integer
    /// `expiresAt`, or gives an original member the wrong type; `invalid-id` for a
    /// `sessionId` that breaks the id rule.
    pub fn parse(text: &[u8]) -> Result<Session, StoreError> {
        let mut parser = serde_json::Deserializer::from_slice(text);
        let value = Strict { depth: 1 }
            .deserialize(&mut parser)
            .and_then(|value| parser.end().map(|()| value))
            .map_err(|e| StoreError::InvalidInput(format!("not a session document: {e}")))?;
        Session::from_value(value)
    }

    /// Validates a JSON value as a session; errors as [`Session::parse`] (duplicates
    /// cannot occur in a [`Value`]; depth is checked).
    pub fn from_value(value: Value) -> Result<Session, StoreError> {
        let Value::Object(members) = value else {
            return Err(invalid("a session must be a JSON object"));
        };
        if depth_exceeds(&members, MAX_DEPTH) {
            return Err(invalid(format!(
                "a session may nest arrays and objects at most {MAX_DEPTH} deep"
            )));
        }
        Session::from_members(members)
    }

    fn from_members(members: Map<String, Value>) -> Result<Session, StoreError> {
        let id = match members.get("sessionId") {
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(invalid("sessionId must be a string")),
            None => return Err(invalid("a session needs a sessionId")),
        };
        id::validate(&id)?;
        let expires_at = match members.get("expiresAt") {
            Some(value) => time(value, "expiresAt")?,
            None => return Err(invalid("a session needs an expiresAt (ms since the epoch)")),
        };
        check_original(&members)?;
        Ok(Session {
            members,
            id,
            expires_at,
            first_written: None,
        })
    }

    /// When the store first wrote this session, if it has no `createdAt` (see
    /// [`Session::origin`]).
    pub fn first_written(&self) -> Option<u64> {
        self.first_written
    }

    /// Records when the store first wrote this session.
    pub fn set_first_written(&mut self, at: Option<u64>) {
        self.first_written = at;
    }

    /// Where a maximum lifetime counts from: `createdAt`, or else when the store first
    /// wrote the session.
    pub fn origin(&self) -> Option<u64> {
        self.created_at().or(self.first_written)
    }

    /// The session's id (`sessionId`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the session expires (`expiresAt`), in ms since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Moves the expiry (`expiresAt`).
    pub fn set_expires_at(&mut self, at: u64) {
        self.expires_at = at;
        self.members.insert("expiresAt".into(), Value::from(at));
    }

    /// When the session was created (`createdAt`), if it says.
    pub fn created_at(&self) -> Option<u64> {
        self.members.get("createdAt").and_then(Value::as_u64)
    }

    /// The user the session belongs to (`userContext.userId`), if any.
    pub fn user(&self) -> Option<&str> {
        self.members.get("userContext")?.get("userId")?.as_str()
    }

    /// `security.lastAccessedAt` and `security.accessCount`, if the session has a
    /// `security` member: where `touch` records accesses.
    pub fn access(&self) -> Option<(u64, u64)> {
        let security = self.members.get("security")?;
        Some((
            security.get("lastAccessedAt")?.as_u64()?,
            security.get("accessCount")?.as_u64()?,
        ))
    }

    /// Sets `security.lastAccessedAt` and `security.accessCount`; does nothing to a
    /// session without `security` (access tracking is never added to a document that
    /// did not ask for it by holding one).
    pub fn set_access(&mut self, last_accessed_at: u64, access_count: u64) {
        if let Some(Value::Object(security)) = self.members.get_mut("security") {
            security.insert("lastAccessedAt".into(), Value::from(last_accessed_at));
            security.insert("accessCount".into(), Value::from(access_count));
        }
    }

    /// The session's members, in their order.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }

    /// The session's members, to change; [`Session::from_value`] validates the result.
    pub fn into_members(mut self) -> Map<String, Value> {
        std::mem::take(&mut self.members)
    }

    /// The session as compact JSON text.
    pub fn to_vec(&self) -> Vec<u8> {
        // A map of strings to values always serializes.
        serde_json::to_vec(&self.members).unwrap_or_default()
    }

    /// The session as a [`Value`].
    pub fn to_value(&self) -> Value {
        Value::Object(self.members.clone())
    }

    /// Overwrites every string the session holds, member names included, with zeros and
    /// empties it, so that a copy kept in memory (the store's cache) leaves no plaintext
    /// behind when dropped. Numbers and booleans carry no credential and are not wiped.
    pub fn wipe(&mut self) {
        self.id.zeroize();
        wipe_members(&mut self.members);
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_vec()))
    }
}

impl Serialize for Session {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.members.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Session, D::Error> {
        let value = Strict { depth: 1 }.deserialize(deserializer)?;
        Session::from_value(value).map_err(de::Error::custom)
    }
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidInput(message.into())
}

/// A time member: a non-negative integer of milliseconds.
fn time(value: &Value, name: &str) -> Result<u64, StoreError> {
    value
        .as_u64()
        .ok_or_else(|| invalid(format!("{name} must be a non-negative integer (ms)")))
}

/// The original's members, where present, with the original's types.
fn check_original(members: &Map<String, Value>) -> Result<(), StoreError> {
    use Kind::{Integer, OptionalString, OptionalStrings, Str, Strings};
    if let Some(value) = members.get("sessionToken") {
        check(value, Str, "sessionToken")?;
    }
    if let Some(value) = members.get("createdAt") {
        time(value, "createdAt")?;
    }
    check_object(
        members,
        "userContext",
        &[
            ("userId", Str),
            ("email", OptionalString),
            ("name", OptionalString),
            ("tenantId", OptionalString),
            ("roles", OptionalStrings),
        ],
    )?;
    check_object(
        members,
        "tokenMetadata",
        &[
            ("accessToken", Str),
            ("refreshToken", OptionalString),
            ("idToken", OptionalString),
            ("expiresAt", Integer),
            ("scopes", Strings),
        ],
    )?;
    check_object(
        members,
        "security",
        &[
            ("ipAddress", Str),
            ("userAgent", Str),
            ("createdAt", Integer),
            ("lastAccessedAt", Integer),
            ("accessCount", Integer),
            ("fingerprint", OptionalString),
        ],
    )?;
    Ok(())
}

/// What an original member must be.
#[derive(Clone, Copy)]
enum Kind {
    /// A string (required).
    Str,
    /// A non-negative integer (required).
    Integer,
    /// A list of strings (required).
    Strings,
    /// A string, `null` or absent.
    OptionalString,
    /// A list of strings, `null` or absent.
    OptionalStrings,
}

impl Kind {
    fn required(self) -> bool {
        matches!(self, Kind::Str | Kind::Integer | Kind::Strings)
    }
}

fn check(value: &Value, kind: Kind, name: &str) -> Result<(), StoreError> {
    let strings = |v: &Value| {
        v.as_array()
            .is_some_and(|items| items.iter().all(Value::is_string))
    };
    let fits = match kind {
        Kind::Str => value.is_string(),
        Kind::Integer => value.is_u64(),
        Kind::Strings => strings(value),
        Kind::OptionalString => value.is_string() || value.is_null(),
        Kind::OptionalStrings => strings(value) || value.is_null(),
    };
    if fits {
        return Ok(());
    }
    let expected = match kind {
        Kind::Str => "a string",
        Kind::Integer => "a non-negative integer",
        Kind::Strings => "a list of strings",
        Kind::OptionalString => "a string or null",
        Kind::OptionalStrings => "a list of strings or null",
    };
    Err(invalid(format!("{name} must be {expected}")))
}

/// An original object member (`userContext`, ...), if present: an object whose named
/// members have their kinds; other members are the caller's own.
fn check_object(
    members: &Map<String, Value>,
    object: &str,
    fields: &[(&str, Kind)],
) -> Result<(), StoreError> {
    let Some(value) = members.get(object) else {
        return Ok(());
    };
    let Value::Object(inner) = value else {
        return Err(invalid(format!("{object} must be an object")));
    };
    for &(name, kind) in fields {
        match inner.get(name) {
            Some(value) => check(value, kind, &format!("{object}.{name}"))?,
            None if kind.required() => {
                return Err(invalid(format!("{object} needs {name}")));
            }
            None => {}
        }
    }
    Ok(())
}

/// Whether any array or object in `members` (itself at depth 1) lies deeper than `limit`.
/// Iterative, so a deep value cannot exhaust the stack.
fn depth_exceeds(members: &Map<String, Value>, limit: usize) -> bool {
    let mut pending: Vec<(&Value, usize)> = members.values().map(|v| (v, 2)).collect();
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(members) => Box::new(members.values()),
            _ => continue,
        };
        if depth > limit {
            return true;
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

/// Zeroes the member names and every string inside `members`, leaving it empty.
fn wipe_members(members: &mut Map<String, Value>) {
    for (mut name, mut value) in std::mem::take(members) {
        name.zeroize();
        wipe_value(&mut value);
    }
}

fn wipe_value(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_value),
        Value::Object(members) => wipe_members(members),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Session, StoreError> {
        Session::parse(text.as_bytes())
    }

    fn reason(text: &str) -> String {
        match parse(text) {
            Err(StoreError::InvalidInput(reason)) => reason,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_framework_document_round_trips_byte_for_byte() {
        let text = r#"{"cookie":{"originalMaxAge":86400000,"expires":"2030-01-02T00:00:00.000Z","httpOnly":true,"path":"/"},"user":"zoë ✓ 😀","n":[1,-2,2.5,9007199254740992,null,{"a":[]}],"sessionId":"abc","expiresAt":1893542400000}"#;
        let session = parse(text).unwrap();
        assert_eq!(String::from_utf8(session.to_vec()).unwrap(), text);
        assert_eq!(session.id(), "abc");
        assert_eq!(session.expires_at(), 1_893_542_400_000);
        assert_eq!(session.user(), None);
        assert_eq!(session.access(), None);
        assert_eq!(session.created_at(), None);
    }

    #[test]
    fn original_members_keep_their_types() {
        let base = r#"{"sessionId":"a","expiresAt":5,"#;
        assert_eq!(
            parse(&format!(
                r#"{base}"userContext":{{"userId":"u","email":null}}}}"#
            ))
            .unwrap()
            .user(),
            Some("u")
        );
        for (bad, expected) in [
            (r#""userContext":{"email":"e"}"#, "userContext needs userId"),
            (
                r#""userContext":{"userId":7}"#,
                "userContext.userId must be a string",
            ),
            (r#""userContext":[]"#, "userContext must be an object"),
            (r#""sessionToken":1"#, "sessionToken must be a string"),
            (
                r#""createdAt":-1"#,
                "createdAt must be a non-negative integer (ms)",
            ),
            (
                r#""tokenMetadata":{"accessToken":"a","expiresAt":1,"scopes":[1]}"#,
                "tokenMetadata.scopes must be a list of strings",
            ),
            (
                r#""security":{"ipAddress":"i","userAgent":"u","createdAt":1,"lastAccessedAt":1.5,"accessCount":0}"#,
                "security.lastAccessedAt must be a non-negative integer",
            ),
        ] {
            assert_eq!(reason(&format!("{base}{bad}}}")), expected, "{bad}");
        }
    }

    #[test]
    fn bad_documents_are_invalid_input_with_a_reason() {
        for (text, expected) in [
            ("[1]", "a session must be a JSON object"),
            (r#"{"expiresAt":1}"#, "a session needs a sessionId"),
            (
                r#"{"sessionId":"a"}"#,
                "a session needs an expiresAt (ms since the epoch)",
            ),
            (
                r#"{"sessionId":"a","expiresAt":1.5}"#,
                "expiresAt must be a non-negative integer (ms)",
            ),
            (
                r#"{"sessionId":"a","expiresAt":"1"}"#,
                "expiresAt must be a non-negative integer (ms)",
            ),
            (
                r#"{"sessionId":1,"expiresAt":1}"#,
                "sessionId must be a string",
            ),
        ] {
            assert_eq!(reason(text), expected, "{text}");
        }
        for text in [
            r#"{"sessionId":"a","expiresAt":1,"x":1,"x":2}"#,
            r#"{"sessionId":"a","expiresAt":1} {}"#,
            r#"{"sessionId":"a","#,
            "",
        ] {
            assert!(reason(text).starts_with("not a session document"), "{text}");
        }
        assert!(
            reason(r#"{"sessionId":"a","expiresAt":1,"x":1,"x":2}"#)
                .contains("\"x\" appears twice")
        );
        assert!(matches!(
            parse(r#"{"sessionId":"a b","expiresAt":1}"#),
            Err(StoreError::InvalidId(_))
        ));
    }

    #[test]
    fn nesting_stops_at_the_limit_without_recursing_further() {
        let nested = |depth: usize| {
            format!(
                r#"{{"sessionId":"a","expiresAt":1,"x":{}{}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        assert!(parse(&nested(MAX_DEPTH)).is_ok());
        for depth in [MAX_DEPTH + 1, 100_000] {
            let reason = reason(&nested(depth));
            assert!(
                reason.starts_with("not a session document") && reason.contains("recursion limit"),
                "{reason}"
            );
        }
        let mut deep = Value::Null;
        for _ in 0..MAX_DEPTH {
            deep = Value::Array(vec![deep]);
        }
        let mut members = Map::new();
        members.insert("sessionId".into(), "a".into());
        members.insert("expiresAt".into(), 1.into());
        members.insert("x".into(), deep);
        assert!(matches!(
            Session::from_value(Value::Object(members)),
            Err(StoreError::InvalidInput(_))
        ));
    }

    #[test]
    fn touch_fields_change_only_a_document_with_security() {
        let mut plain = parse(r#"{"sessionId":"a","expiresAt":1}"#).unwrap();
        plain.set_access(9, 9);
        assert_eq!(plain.to_string(), r#"{"sessionId":"a","expiresAt":1}"#);
        plain.set_expires_at(7);
        assert_eq!(plain.to_string(), r#"{"sessionId":"a","expiresAt":7}"#);
        let mut tracked = parse(r#"{"sessionId":"a","expiresAt":1,"security":{"ipAddress":"i","userAgent":"u","createdAt":1,"lastAccessedAt":1,"accessCount":0,"z":0}}"#).unwrap();
        tracked.set_access(9, 3);
        assert_eq!(tracked.access(), Some((9, 3)));
        assert!(
            tracked
                .to_string()
                .contains(r#""lastAccessedAt":9,"accessCount":3,"z":0"#)
        );
    }

    #[test]
    fn wipe_empties_every_string() {
        let mut session =
            parse(r#"{"sessionId":"secret-id","expiresAt":1,"t":{"k":["tok"]}}"#).unwrap();
        session.wipe();
        assert!(session.members().is_empty());
        assert!(session.id().bytes().all(|b| b == 0));
    }
}
