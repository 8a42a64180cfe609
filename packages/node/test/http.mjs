// What the adapter tests share: express apps listening on 127.0.0.1, and a browser that
// keeps its session cookie. Servers left open by a failing test are closed by
// `closeServers()` (each test file's `after`), so a failure never hangs the run.

const servers = [];

/** Listens with express app `app` on 127.0.0.1 on a free port: `{ base, close }`. */
export async function listen(app) {
  const server = await new Promise((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  servers.push(server);
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((resolve) => {
        // Keep-alive connections would hold `close` open.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Closes every server `listen` opened that is still listening. */
export function closeServers() {
  for (const server of servers) {
    server.closeAllConnections();
    if (server.listening) server.close();
  }
}

/** A browser: keeps the session cookie between requests; `request` reads the JSON answer. */
export function browser(base) {
  let cookie;
  return {
    get cookie() {
      return cookie;
    },
    set cookie(value) {
      cookie = value;
    },
    async request(method, url, body) {
      const response = await fetch(base + url, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(cookie ? { cookie } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const set = response.headers.get("set-cookie");
      if (set) cookie = set.split(";")[0];
      return { status: response.status, body: await response.json() };
    },
    withBase(next) {
      base = next;
    },
  };
}

/**
 * A gate for a request held in flight: the route calls `entered()` once it has its
 * session and awaits `released`; the test awaits `inside`, then calls `release()`.
 */
export function inFlightGate() {
  let entered;
  let release;
  const inside = new Promise((resolve) => (entered = resolve));
  const released = new Promise((resolve) => (release = resolve));
  return { entered, released, inside, release };
}
