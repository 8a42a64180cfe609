// The sessions a store read lately, as JSON text, kept on the caller's thread so that
// reading one again (a server validating the same session on every request) is answered
// there, without a call to the component's thread and back.
//
// It is exact, not a guess, because this process is the store's only writer (the
// directory's lock) and every change goes through the store's own calls, which pass
// through here first:
//   - a call that may change a session forgets it before it is sent, and until it is
//     answered every read of that session goes to the thread (calls run in the order
//     made, so the read sees the change); a touch does not forget, and its answer moves
//     the kept expiry where it moved the stored one (or forgets a session it did not find);
//   - a read answered by the thread is kept only if no call that may change that session
//     was sent after it (the answer would be older than that call);
//   - a call that may change any session (clear, revokeUser, key rotation, an import, a
//     failure of the store) forgets them all;
//   - a session is served only before its expiry, by the store's clock, and never after
//     a time this cache has seen it expired at (a clock stepping back does not bring back
//     what the store may have removed meanwhile).
// Only documents whose expiry is their `expiresAt` and whom a touch leaves as they are
// are kept: none with `security` (a touch stamps it), and none at all in a store with an
// idle timeout or a maximum lifetime (their expiry is not in the document).
//
// Bounded by `limit` (text length in UTF-16 units plus a fixed overhead a session); the
// least recently used go first. The texts are JavaScript strings, which cannot be
// overwritten: a forgotten one leaves memory when the garbage collector takes it, as any
// session a caller was given.

/** What an entry costs beyond its text: the id, the entry and the map's slot. */
const ENTRY_OVERHEAD = 256;

export class ReadCache {
  #limit;
  #held = 0;
  /** id → { text, expiresAt, bytes }, least recently used first. */
  #entries = new Map();
  /** The calls this cache has seen sent, numbered in order. */
  #sent = 0;
  /** id → the number of the latest call that may change it, while it is unanswered. */
  #changing = new Map();
  /** The number of the latest call that may have changed any session. */
  #changedAll = 0;
  /** The latest time a read asked at: what expired then stays expired. */
  #latest = 0;

  /** @param limit the most bytes kept (0: nothing is) */
  constructor(limit) {
    this.#limit = limit;
  }

  /**
   * Live session `id` at `now` (ms), if kept and nothing that may change it is under
   * way: `{ text, expiresAt }`, its JSON text as read and its expiry now (a touch since
   * may have moved it from the text's). An expired one is forgotten.
   */
  entry(id, now) {
    if (now > this.#latest) this.#latest = now;
    const entry = this.#entries.get(id);
    if (entry === undefined || this.#changing.has(id)) return undefined;
    if (this.#latest >= entry.expiresAt) {
      this.forget(id);
      return undefined;
    }
    // Used now: last out.
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    return entry;
  }

  /** A read is being sent: its ticket for `keep`. */
  reading() {
    return ++this.#sent;
  }

  /**
   * The read with `ticket` found `doc` (whose JSON text is `text`) under `id`: kept if no
   * call that may change it was sent since, and if it is a document this cache can keep.
   */
  keep(id, text, doc, ticket) {
    if (ticket <= this.#changedAll || ticket <= (this.#changing.get(id) ?? 0)) return;
    if (doc === null || typeof doc !== "object" || doc.security !== undefined) return;
    const expiresAt = doc.expiresAt;
    if (typeof expiresAt !== "number" || expiresAt <= this.#latest) return;
    const bytes = text.length + ENTRY_OVERHEAD;
    if (bytes > this.#limit) return;
    this.forget(id);
    this.#entries.set(id, { text, expiresAt, bytes });
    this.#held += bytes;
    for (const [oldest, entry] of this.#entries) {
      if (this.#held <= this.#limit) break;
      this.#entries.delete(oldest);
      this.#held -= entry.bytes;
    }
  }

  /** A call that may change `id` is being sent; returns its number, for `answered`. */
  changing(id) {
    this.forget(id);
    return this.#mark(id);
  }

  /**
   * A touch of `id` is being sent: the session stays kept, but is not served until the
   * touch is answered (`touched`). Returns its number, for `touched` and `answered`.
   */
  touching(id) {
    return this.#mark(id);
  }

  /**
   * The touch `number` of `id` is answered: `found`, the store's expiry of it is now
   * `until` (unless another change was sent since); else it is gone.
   */
  touched(id, number, found, until) {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    if (found && this.#changing.get(id) === number) entry.expiresAt = until;
    else this.forget(id);
  }

  /** The call `number` that may have changed `id` is answered (or failed). */
  answered(id, number) {
    if (this.#changing.get(id) === number) this.#changing.delete(id);
  }

  /** A call that may change any session is being sent (or something failed): all go. */
  changingAll() {
    this.#entries.clear();
    this.#held = 0;
    this.#changedAll = ++this.#sent;
  }

  /** `id` is gone, or not as kept. */
  forget(id) {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    this.#held -= entry.bytes;
  }

  #mark(id) {
    const number = ++this.#sent;
    this.#changing.set(id, number);
    return number;
  }
}
