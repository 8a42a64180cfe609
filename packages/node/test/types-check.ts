// Type-checked (never run) by scripts/test.mjs in the scratch project, against the installed
// package's declarations: the original's users' code compiles unchanged.
import {
  type ISessionStore,
  type SessionData,
  NotFoundError,
  SessionVaultError,
  SessionVaultStore,
  SessionVaultStore as FileSessionStore,
} from "session-vault";

const store: ISessionStore = new FileSessionStore({
  storageDir: "./sessions",
  encryptionKey: "a passphrase of at least 32 characters",
});

export async function validate(s: ISessionStore, id: string): Promise<SessionData | null> {
  const session = await s.get(id);
  if (!session) return null;
  await s.update(id, {
    security: { ...session.security, lastAccessedAt: Date.now(), accessCount: session.security.accessCount + 1 },
  });
  const count: number = await s.getSessionCount();
  const mine: SessionData[] = await s.getUserSessions(session.userContext.userId);
  return count > 0 && mine.length > 0 ? session : null;
}

export async function ours(): Promise<number> {
  const vault = new SessionVaultStore({ storageDir: "./s", rawKey: new Uint8Array(32), durability: "relaxed" });
  await vault.ready;
  const touched = await vault.touch("id");
  const report = await vault.check();
  const imported = await vault.importLegacy("./old");
  try {
    await vault.update("nobody", {});
  } catch (e) {
    if (e instanceof NotFoundError && e.code === "not-found") return 0;
    if (e instanceof SessionVaultError) return report.live + imported.imported.length;
  }
  await vault.close();
  return touched?.security.accessCount ?? (await store.cleanup());
}

export const removal = (s: SessionVaultStore) =>
  s.update("id", { userContext: { email: null }, security: { accessCount: 3 } });
// @ts-expect-error a secret is required
export const noSecret = new SessionVaultStore({ storageDir: "x" });
// @ts-expect-error a session needs its token and the rest
export const incomplete: SessionData = { sessionId: "x" };
// @ts-expect-error the durability modes are named
export const wrong = new SessionVaultStore({ storageDir: "x", encryptionKey: "k", durability: "sometimes" });
