"""The session-vault component from Python, through the `wasmtime` package (PyPI).

    python3 main.py --dir STORE [--component FILE] demo
    python3 main.py --dir STORE [--component FILE] get ID
    python3 main.py --dir STORE [--component FILE] create < session.json

The secret comes from SESSION_VAULT_SECRET (a passphrase, or `hex:` + 64 hex digits for a
raw key), as for the CLI. Documents are the JSON the CLI reads and prints.
"""

import argparse
import json
import os
import pathlib
import sys

import wasmtime
from wasmtime import component as wc

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_COMPONENT = HERE / "../../target/guest/wasm32-wasip2/release/session_vault_guest.wasm"
INTERFACE = "session-vault:store/sessions@0.3.0"

# A session travels as its JSON text (the WIT `session`): any JSON object with a
# `sessionId` and an `expiresAt`, read back exactly as written.


def to_text(doc):
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def from_text(text):
    return json.loads(text)


class StoreError(Exception):
    """A store error: `case` is the WIT error case (`invalid-id`, `wrong-key`, ...)."""

    def __init__(self, case, detail):
        super().__init__(f"{case}: {detail}" if detail is not None else case)
        self.case = case


class Vault:
    """One open store in one component instance."""

    def __init__(self, component_path, directory, secret):
        engine = wasmtime.Engine()
        component = wc.Component.from_file(engine, str(component_path))
        linker = wc.Linker(engine)
        linker.add_wasip2()
        self.store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.preopen_dir(str(directory), "/store")
        self.store.set_wasi(wasi)
        self.instance = linker.instantiate(self.store, component)
        self.interface = self.instance.get_export_index(self.store, INTERFACE)
        config = wc.Record()
        # `secret` is a variant whose cases have distinct Python types (str, bytes),
        # so the package takes the payload alone.
        raw = secret.removeprefix("hex:") if secret.startswith("hex:") else None
        config.secret = bytes.fromhex(raw) if raw is not None and len(raw) == 64 else secret
        config.directory = "/store"
        setattr(config, "max-session-bytes", None)
        setattr(config, "idle-timeout", None)
        setattr(config, "max-lifetime", None)
        config.durability = None
        config.backend = None
        config.erase = None
        config.bucket = None
        setattr(config, "cache-bytes", None)
        self.handle = self.call("[static]store.open", config)

    def call(self, name, *args):
        func = self.instance.get_func(
            self.store, self.instance.get_export_index(self.store, name, self.interface))
        result = func(self.store, *args)
        # `result<T, error>` comes back as T, or as the `error` variant.
        if isinstance(result, wc.Variant):
            raise StoreError(result.tag, result.payload)
        return result

    def method(self, name, *args):
        return self.call(f"[method]store.{name}", self.handle, *args)

    def create(self, doc):
        self.method("create", to_text(doc))

    def get(self, session_id):
        found = self.method("get", session_id)
        return None if found is None else from_text(found)

    def touch(self, session_id):
        found = self.method("touch", session_id, None)
        return None if found is None else from_text(found)

    def user_sessions(self, user):
        return [from_text(r) for r in self.method("user-sessions", user)]

    def count(self):
        return self.method("count")

    def delete(self, session_id):
        return self.method("delete", session_id)


def demo(vault):
    import time
    now = int(time.time() * 1000)
    doc = {
        "sessionId": "py-1", "sessionToken": "token-py-1",
        "userContext": {"userId": "carol", "email": "carol@example.org", "roles": ["reader"]},
        "tokenMetadata": {"accessToken": "at", "expiresAt": now + 3_600_000, "scopes": ["openid"]},
        "security": {"ipAddress": "10.0.0.2", "userAgent": "python", "createdAt": now,
                     "lastAccessedAt": now, "accessCount": 1},
        "expiresAt": now + 86_400_000, "createdAt": now, "origin": {"runtime": "wasmtime-py"},
    }
    vault.create(doc)
    print("create py-1: ok")
    print("get py-1:", json.dumps(vault.get("py-1")))
    print("touch py-1 -> accessCount:", vault.touch("py-1")["security"]["accessCount"])
    print("user-sessions carol:", [d["sessionId"] for d in vault.user_sessions("carol")])
    print("count:", vault.count())
    try:
        vault.get("../etc/passwd")
    except StoreError as e:
        print("get ../etc/passwd: error", e.case)
    try:
        vault.create(doc)
    except StoreError as e:
        print("create py-1 again: error", e.case)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--component", default=str(DEFAULT_COMPONENT))
    parser.add_argument("command", choices=["demo", "get", "create"])
    parser.add_argument("id", nargs="?")
    args = parser.parse_args()
    secret = os.environ.get("SESSION_VAULT_SECRET")
    if not secret:
        sys.exit("main.py: set SESSION_VAULT_SECRET")
    vault = Vault(args.component, args.dir, secret)
    if args.command == "demo":
        demo(vault)
    elif args.command == "get":
        print(json.dumps(vault.get(args.id)))
    else:
        vault.create(json.load(sys.stdin))


if __name__ == "__main__":
    try:
        main()
    except StoreError as e:
        sys.exit(f"main.py: error[{e.case}]: {e}")
