// Between JavaScript objects and the WIT: a session travels as its JSON text (the
// component validates it); a patch as the WIT `session-patch`, every value checked as the
// Rust CLI's JSON parser checks it, so a bad patch is `invalid-input` with a message that
// names the field, never a silently coerced value.

import { InvalidInputError } from "./errors.js";

const U64_MAX = (1n << 64n) - 1n;

// Each level's fields in the store's order: "string" (required), "string?" (optional),
// "time" (u64 milliseconds), "list" (of strings, required), "list?", or a nested level.
// Other members travel as extras (JSON text), as the CLI keeps them.
const schema = {
  session: [
    ["sessionId", "string"],
    ["sessionToken", "string"],
    ["userContext", "userContext"],
    ["tokenMetadata", "tokenMetadata"],
    ["security", "security"],
    ["expiresAt", "time"],
    ["createdAt", "time"],
  ],
  userContext: [
    ["userId", "string"],
    ["email", "string?"],
    ["name", "string?"],
    ["tenantId", "string?"],
    ["roles", "list?"],
  ],
  tokenMetadata: [
    ["accessToken", "string"],
    ["refreshToken", "string?"],
    ["idToken", "string?"],
    ["expiresAt", "time"],
    ["scopes", "list"],
  ],
  security: [
    ["ipAddress", "string"],
    ["userAgent", "string"],
    ["createdAt", "time"],
    ["lastAccessedAt", "time"],
    ["accessCount", "time"],
    ["fingerprint", "string?"],
  ],
};
const fields = Object.fromEntries(
  Object.entries(schema).map(([level, list]) => [level, new Map(list)]),
);

function invalid(message) {
  return new InvalidInputError("invalid-input", message);
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A u64 of milliseconds from a JSON number (or a bigint). */
export function time(value, where = "expiresAt") {
  if (typeof value === "bigint") {
    if (value < 0n || value > U64_MAX) throw invalid(`${where}: ${value} is not a u64`);
    return value;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw invalid(`${where}: expected a whole number of milliseconds (u64), got ${show(value)}`);
  }
  const big = BigInt(value);
  if (big > U64_MAX) throw invalid(`${where}: ${value} is out of range for a u64`);
  return big;
}

function string(value, where) {
  if (typeof value !== "string") throw invalid(`${where}: expected a string, got ${show(value)}`);
  // A lone surrogate would reach the store as U+FFFD: two different ids or users the same.
  if (!value.isWellFormed()) throw invalid(`${where}: not well-formed UTF-16 (a lone surrogate)`);
  return value;
}

function list(value, where) {
  if (!Array.isArray(value)) throw invalid(`${where}: expected an array of strings, got ${show(value)}`);
  return value.map((item, i) => string(item, `${where}[${i}]`));
}

function show(value) {
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return `${value}n`;
  const text = JSON.stringify(value);
  return text === undefined ? typeof value : text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** An extra member as the WIT `extra-field`: its value as JSON text. */
function extra(name, value, where) {
  let text;
  try {
    text = JSON.stringify(value, (_, v) => {
      if (typeof v === "bigint") throw invalid(`${where}.${name}: a bigint is not JSON`);
      return v;
    });
  } catch (e) {
    if (e instanceof InvalidInputError) throw e;
    throw invalid(`${where}.${name}: not JSON (${e.message})`);
  }
  return text === undefined ? undefined : { name, value: text };
}

/**
 * A session object as the JSON text the WIT `session` carries, written as JSON.stringify
 * writes it (the original store's own serializer: `toJSON` is honoured, `undefined`
 * members are left out). The component checks the rest (`sessionId`, `expiresAt`, the
 * original members' types) and refuses what breaks its rules as `invalid-input`.
 */
export function toText(doc) {
  if (!isObject(doc)) throw invalid(`session: expected an object, got ${show(doc)}`);
  try {
    return JSON.stringify(doc, (key, v) => {
      if (typeof v !== "bigint") return v;
      // Times may be given as bigints, as before; JSON has no bigint beyond 2^53.
      if (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
      throw invalid(`session.${key}: ${v}n is beyond what JSON carries exactly (2^53)`);
    });
  } catch (e) {
    if (e instanceof InvalidInputError) throw e;
    throw invalid(`session: not JSON (${e.message})`);
  }
}

/** The JSON text of a session the component returned, as an object. */
export function fromText(text) {
  return JSON.parse(text);
}

const NONE = { tag: "none" };

/**
 * The original's `update(id, updates)` as the WIT `session-patch`: top-level members
 * replace, `userContext`, `tokenMetadata` and `security` merge member by member. An
 * optional member set to `null` or `undefined` is removed (the original stored the
 * `null`, or dropped the member); a required one cannot be.
 */
export function toPatch(updates) {
  if (!isObject(updates)) throw invalid(`updates: expected an object, got ${show(updates)}`);
  const patch = { extra: [] };
  for (const [name, value] of Object.entries(updates)) {
    const kind = fields.session.get(name);
    const at = `updates.${name}`;
    if (kind === undefined) {
      const field = extra(name, value, "updates");
      if (field) patch.extra.push(field);
    } else if (value === undefined || (value === null && kind in schema)) {
      // No change: the original's spread kept a nested object given as null (its
      // `updates.userContext ? … : existing` test), as the CLI's patch does.
      continue;
    } else if (value === null) {
      throw invalid(`${at}: a required field cannot be removed`);
    } else if (kind === "time") patch[name] = time(value, at);
    else if (kind === "string") patch[name] = string(value, at);
    else patch[name] = levelPatch(value, kind, at);
  }
  return patch;
}

function levelPatch(value, level, where) {
  if (!isObject(value)) throw invalid(`${where}: expected an object, got ${show(value)}`);
  const patch = { extra: [] };
  // Every optional member is an option<option<T>>: none keeps, some(none) removes.
  for (const [name, kind] of schema[level]) {
    if (kind.endsWith("?")) patch[name] = NONE;
  }
  for (const [name, member] of Object.entries(value)) {
    const kind = fields[level].get(name);
    const at = `${where}.${name}`;
    if (kind === undefined) {
      const field = extra(name, member, where);
      if (field) patch.extra.push(field);
    } else if (kind.endsWith("?")) {
      patch[name] =
        member === undefined || member === null
          ? { tag: "some", val: undefined }
          : { tag: "some", val: kind === "list?" ? list(member, at) : string(member, at) };
    } else if (member === undefined) {
      continue;
    } else if (member === null) {
      throw invalid(`${at}: a required field cannot be removed`);
    } else if (kind === "time") patch[name] = time(member, at);
    else if (kind === "string") patch[name] = string(member, at);
    else patch[name] = list(member, at);
  }
  return patch;
}

/** Anything the component returns, with its bigints as numbers. */
export function plain(value) {
  const text = JSON.stringify(value, (_, v) => (typeof v === "bigint" ? Number(v) : v));
  return text === undefined ? undefined : JSON.parse(text);
}
