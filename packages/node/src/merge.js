// Three-way merge of JSON sessions: what one request changed, applied over what others
// wrote meanwhile. express-session saves a request's whole session object; two requests
// of one session in flight at once (a page and its XHRs) each read it, change one member
// and save, and with a whole-object write the last save silently drops the other's change.

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** Whether two JSON values are equal, member for member. */
export function same(a, b) {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => same(item, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && same(a[key], b[key]));
}

/** Sets `key` as an own member, even `__proto__` (which plain assignment would obey). */
function put(object, key, value) {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * `theirs` (the session as stored now) with the changes from `base` (as this request read
 * it) to `mine` (as it is saving it): members `mine` added, changed or removed are taken
 * from `mine`; members it left alone keep `theirs`' value. Objects both sides changed merge
 * member by member; any other member both changed is `mine`'s (the later save wins).
 */
export function mergeChanges(base, mine, theirs) {
  if (!isObject(base) || !isObject(mine) || !isObject(theirs)) return same(base, mine) ? theirs : mine;
  const merged = {};
  for (const [key, value] of Object.entries(theirs)) {
    // A member this request removed stays removed.
    if (Object.hasOwn(base, key) && !Object.hasOwn(mine, key)) continue;
    put(merged, key, value);
  }
  for (const [key, value] of Object.entries(mine)) {
    if (!Object.hasOwn(base, key)) put(merged, key, value);
    else if (same(base[key], value)) continue;
    else if (Object.hasOwn(theirs, key)) put(merged, key, mergeChanges(base[key], value, theirs[key]));
    else put(merged, key, value);
  }
  return merged;
}
