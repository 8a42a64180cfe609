// wasi:filesystem for the component, on Node's synchronous fs calls. The preview2 shim's
// own implementation hands every read, write, stat, open and close to a worker thread
// and blocks on it (about 50 µs a call, most of a `get`); a store's calls are synchronous
// anyway, so these make the same system calls directly on this thread.
//
// Only what the component uses is here (open, read, write, stat, sync, set-size, directory
// listing, mkdir, rmdir, rename, unlink); the rest answers `unsupported`. Paths stay inside
// their preopen: an absolute path or one that climbs out with `..` is `not-permitted`, and
// so is any directory on the way that is a symbolic link, so a link planted in the store
// directory cannot send the store elsewhere. The last component is never followed
// either (O_NOFOLLOW, lstat), whatever the component asks.

import {
  closeSync,
  constants,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  writeSync,
} from "node:fs";

const dispose = Symbol.dispose ?? Symbol.for("dispose");

const codes = {
  EACCES: "access",
  EAGAIN: "would-block",
  EBADF: "bad-descriptor",
  EBUSY: "busy",
  EDQUOT: "quota",
  EEXIST: "exist",
  EFBIG: "file-too-large",
  EINVAL: "invalid",
  EIO: "io",
  EISDIR: "is-directory",
  ELOOP: "loop",
  EMLINK: "too-many-links",
  ENAMETOOLONG: "name-too-long",
  ENOENT: "no-entry",
  ENOSPC: "insufficient-space",
  ENOTDIR: "not-directory",
  ENOTSUP: "unsupported",
  EOPNOTSUPP: "unsupported",
  ENOMEM: "insufficient-memory",
  EINTR: "interrupted",
  ETXTBSY: "text-file-busy",
  EOVERFLOW: "overflow",
  ENXIO: "no-such-device",
  ENODEV: "no-such-device",
  ENOTEMPTY: "not-empty",
  EPERM: "not-permitted",
  EROFS: "read-only",
  EXDEV: "cross-device",
};

/** Runs `f`, turning a Node fs error into the WASI error code the component expects. */
function fs(f) {
  try {
    return f();
  } catch (e) {
    if (typeof e === "string") throw e;
    throw codes[e?.code] ?? "io";
  }
}

function typeOf(stats) {
  if (stats.isFile()) return "regular-file";
  if (stats.isDirectory()) return "directory";
  if (stats.isSymbolicLink()) return "symbolic-link";
  if (stats.isFIFO()) return "fifo";
  if (stats.isSocket()) return "socket";
  if (stats.isCharacterDevice()) return "character-device";
  if (stats.isBlockDevice()) return "block-device";
  return "unknown";
}

const time = (ns) => ({ seconds: ns / 1_000_000_000n, nanoseconds: Number(ns % 1_000_000_000n) });

function stat(stats) {
  return {
    type: typeOf(stats),
    linkCount: stats.nlink,
    size: stats.size,
    dataAccessTimestamp: time(stats.atimeNs),
    dataModificationTimestamp: time(stats.mtimeNs),
    statusChangeTimestamp: time(stats.ctimeNs),
  };
}

class DirectoryEntryStream {
  #entries;
  #next = 0;
  constructor(entries) {
    this.#entries = entries;
  }
  readDirectoryEntry() {
    const entry = this.#entries[this.#next++];
    return entry === undefined ? undefined : { name: entry.name, type: typeOf(entry) };
  }
  [dispose]() {
    this.#entries = [];
  }
}

class Descriptor {
  /** The host path this descriptor names. */
  #path;
  /** Its file descriptor; opened on demand for a preopen (only to sync it). */
  #fd;
  #directory;
  /** Under a read-only preopen: nothing is created, written, renamed or removed. */
  #readOnly;

  static create(path, fd, directory, readOnly) {
    const descriptor = new Descriptor();
    descriptor.#path = path;
    descriptor.#fd = fd;
    descriptor.#directory = directory;
    descriptor.#readOnly = readOnly;
    return descriptor;
  }

  #writable() {
    if (this.#readOnly) throw "read-only";
  }

  /** The host path of `subpath` under this directory, refusing any way out of it. */
  #resolve(subpath) {
    if (!this.#directory) throw "not-directory";
    if (subpath.startsWith("/") || subpath.includes("\\")) throw "not-permitted";
    const segments = subpath.split("/").filter((s) => s !== "" && s !== ".");
    if (segments.length === 0) return this.#path;
    if (segments.includes("..")) throw "not-permitted";
    let path = this.#path;
    for (const [i, segment] of segments.entries()) {
      path = `${path}/${segment}`;
      if (i < segments.length - 1) {
        // A directory on the way must be one, not a link to somewhere else.
        const stats = fs(() => lstatSync(path, { throwIfNoEntry: false }));
        if (stats === undefined) throw "no-entry";
        if (stats.isSymbolicLink()) throw "not-permitted";
        if (!stats.isDirectory()) throw "not-directory";
      }
    }
    return path;
  }

  #fileDescriptor() {
    if (this.#fd === undefined) {
      this.#fd = fs(() => openSync(this.#path, constants.O_RDONLY | constants.O_DIRECTORY));
    }
    return this.#fd;
  }

  openAt(pathFlags, path, openFlags, descriptorFlags) {
    const full = this.#resolve(path);
    if (openFlags.create || openFlags.truncate || descriptorFlags.write) this.#writable();
    let flags = 0;
    if (openFlags.create) flags |= constants.O_CREAT;
    if (openFlags.directory) flags |= constants.O_DIRECTORY;
    if (openFlags.exclusive) flags |= constants.O_EXCL;
    if (openFlags.truncate) flags |= constants.O_TRUNC;
    if (descriptorFlags.read && descriptorFlags.write) flags |= constants.O_RDWR;
    else if (descriptorFlags.write) flags |= constants.O_WRONLY;
    else flags |= constants.O_RDONLY;
    // Never followed, whatever the component asks: a link could point out of the preopen.
    flags |= constants.O_NOFOLLOW;
    if (descriptorFlags.fileIntegritySync || descriptorFlags.dataIntegritySync) throw "unsupported";
    if (descriptorFlags.requestedWriteSync || descriptorFlags.mutateDirectory) throw "unsupported";
    const fd = fs(() => openSync(full, flags, 0o600));
    const directory = fs(() => fstatSync(fd)).isDirectory();
    if (directory && descriptorFlags.write) {
      closeSync(fd);
      throw "is-directory";
    }
    return Descriptor.create(full, fd, directory, this.#readOnly);
  }

  read(length, offset) {
    if (this.#directory) throw "is-directory";
    const buffer = Buffer.allocUnsafe(Number(length));
    const n = fs(() => readSync(this.#fd, buffer, 0, buffer.length, Number(offset)));
    return [new Uint8Array(buffer.buffer, buffer.byteOffset, n), n < buffer.length];
  }

  write(buffer, offset) {
    if (this.#directory) throw "is-directory";
    this.#writable();
    return BigInt(fs(() => writeSync(this.#fd, buffer, 0, buffer.length, Number(offset))));
  }

  setSize(size) {
    this.#writable();
    fs(() => ftruncateSync(this.#fd, Number(size)));
  }

  sync() {
    fs(() => fsyncSync(this.#fileDescriptor()));
  }

  syncData() {
    fs(() => fdatasyncSync(this.#fileDescriptor()));
  }

  getType() {
    return this.#directory ? "directory" : typeOf(fs(() => fstatSync(this.#fd)));
  }

  stat() {
    return stat(fs(() => fstatSync(this.#fileDescriptor(), { bigint: true })));
  }

  statAt(pathFlags, path) {
    const full = this.#resolve(path);
    // Not followed either (see openAt).
    return stat(fs(() => lstatSync(full, { bigint: true })));
  }

  readDirectory() {
    if (!this.#directory) throw "not-directory";
    return new DirectoryEntryStream(fs(() => readdirSync(this.#path, { withFileTypes: true })));
  }

  createDirectoryAt(path) {
    this.#writable();
    const full = this.#resolve(path);
    fs(() => mkdirSync(full, 0o700));
  }

  removeDirectoryAt(path) {
    this.#writable();
    const full = this.#resolve(path);
    fs(() => rmdirSync(full));
  }

  renameAt(oldPath, newDescriptor, newPath) {
    this.#writable();
    newDescriptor.#writable();
    const from = this.#resolve(oldPath);
    const to = newDescriptor.#resolve(newPath);
    fs(() => renameSync(from, to));
  }

  unlinkFileAt(path) {
    this.#writable();
    const full = this.#resolve(path);
    fs(() => unlinkSync(full));
  }

  isSameObject(other) {
    return other === this;
  }

  [dispose]() {
    if (this.#fd !== undefined) {
      const fd = this.#fd;
      this.#fd = undefined;
      try {
        closeSync(fd);
      } catch {
        // Closed already.
      }
    }
  }
}

// What the component does not use.
for (const name of [
  "readViaStream",
  "writeViaStream",
  "appendViaStream",
  "advise",
  "getFlags",
  "setTimes",
  "setTimesAt",
  "linkAt",
  "readlinkAt",
  "symlinkAt",
  "metadataHash",
  "metadataHashAt",
]) {
  Descriptor.prototype[name] = () => {
    throw "unsupported";
  };
}

/**
 * The wasi:filesystem imports for `preopens` ({ guestPath: hostPath, or { path, readOnly } });
 * each host path is resolved once here (the store directory itself may be reached through
 * a link).
 */
export function filesystem(preopens, realpath) {
  const entries = Object.entries(preopens).map(([guest, host]) => {
    const { path, readOnly = false } = typeof host === "string" ? { path: host } : host;
    return [Descriptor.create(realpath(path), undefined, true, readOnly), guest];
  });
  return {
    types: {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode: () => undefined,
    },
    preopens: { getDirectories: () => [...entries] },
    /** Closes what the preopens opened themselves (a directory opened to sync it). */
    close() {
      for (const [descriptor] of entries) descriptor[dispose]();
    },
  };
}
