//! The property test of free-form sessions through every front: random JSON objects
//! (any Unicode, escapes, integers to 2^53 and past, floats, null, deep arrays and
//! objects, members in any order) read back as exactly the text written.

use serde_json::{Map, Number, Value, json};

use super::{MINUTE, open, reopen};
use crate::front::{Front, Setup, T0};

/// SplitMix64: a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    " ",
    "\"",
    "\\",
    "/",
    "\n",
    "\t",
    "\u{0}",
    "\u{1f}",
    "\u{7f}",
    "é",
    "ß",
    "Ω",
    "中",
    "😀",
    "\u{2028}",
    "\u{fffd}",
    "\u{10ffff}",
    "{",
    "]",
    ":",
    ",",
];

fn string(rng: &mut Rng) -> String {
    (0..rng.below(12))
        .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
        .collect()
}

fn number(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 => json!(rng.below(1 << 53)),
        1 => json!(-(rng.below(1 << 53) as i64)),
        2 => json!(rng.next()),
        3 => {
            let float = f64::from_bits(rng.next());
            Number::from_f64(float).map_or(json!(0.5), Value::Number)
        }
        _ => json!((rng.below(2_000_000) as f64 - 1_000_000.0) / 1024.0),
    }
}

fn value(rng: &mut Rng, depth: u32) -> Value {
    let leaf = depth >= 6 || rng.below(3) == 0;
    match rng.below(if leaf { 4 } else { 6 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => number(rng),
        3 => Value::String(string(rng)),
        4 => Value::Array((0..rng.below(5)).map(|_| value(rng, depth + 1)).collect()),
        _ => Value::Object(object(rng, depth + 1)),
    }
}

fn object(rng: &mut Rng, depth: u32) -> Map<String, Value> {
    let mut members = Map::new();
    for _ in 0..rng.below(6) {
        members.insert(string(rng), value(rng, depth));
    }
    members
}

/// A random session `id`: random members with `sessionId` and `expiresAt` among them.
fn session(rng: &mut Rng, id: &str) -> String {
    let mut members: Vec<(String, Value)> = object(rng, 1)
        .into_iter()
        .filter(|(name, _)| !["sessionId", "expiresAt"].contains(&name.as_str()))
        .collect();
    for (name, value) in [
        ("sessionId", json!(id)),
        ("expiresAt", json!(T0 + 60 * MINUTE)),
    ] {
        let at = rng.below(members.len() as u64 + 1) as usize;
        members.insert(at, (name.to_owned(), value));
    }
    Value::Object(members.into_iter().collect()).to_string()
}

pub fn arbitrary_json_objects_round_trip_exactly<F: Front>() {
    let setup = Setup::new();
    let mut front: F = open(&setup);
    let cases = if F::REOPENS { 12 } else { 60 };
    let mut rng = Rng(29);
    let mut written = Vec::new();
    for i in 0..cases {
        let id = format!("j{i}");
        let text = session(&mut rng, &id);
        match i % 2 {
            0 => front.set_text(&text),
            _ => front.create_text(&text),
        }
        .unwrap_or_else(|e| panic!("{e}: {text}"));
        let found = front.get(&id).unwrap().expect("just written");
        assert_eq!(found.to_string(), text, "read back as written");
        written.push((id, text));
    }
    let mut front = reopen(front, &setup);
    for (id, text) in &written {
        assert_eq!(
            front.get(id).unwrap().unwrap().to_string(),
            *text,
            "after reopen"
        );
    }
}
