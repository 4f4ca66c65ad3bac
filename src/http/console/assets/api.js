// The console's client of the admin API. The token travels only in the Authorization
// header, never in a URL, and is kept in sessionStorage (gone when the tab closes).

const TOKEN_KEY = 'converge.adminToken';

/** Thrown for a 401, so the page can ask for a token. */
export class Unauthorized extends Error {}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? '',
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

function headers(extra = {}) {
  const t = token.get();
  return t ? { ...extra, authorization: `Bearer ${t}` } : extra;
}

/** Calls an admin route; resolves with `{ status, body }`, rejects with `Unauthorized` on 401. */
export async function call(method, path, body) {
  const init = body === undefined
    ? { method, headers: headers() }
    : { method, headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) };
  const res = await fetch(path, init);
  if (res.status === 401) throw new Unauthorized('the admin token is missing or wrong');
  const text = await res.text();
  let parsed = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { error: 'not_json', message: text };
  }
  return { status: res.status, ok: res.ok, body: parsed };
}

/**
 * Reads the server-sent events of `GET /admin/events` with fetch, so that the token goes
 * in a header (EventSource cannot send one), and calls `onStatus` with each status. Resolves
 * when the stream ends (the server closed it) and rejects on a network fault or a 401.
 */
export async function followStatus(onStatus, signal) {
  const res = await fetch('/admin/events', { headers: headers({ accept: 'text/event-stream' }), signal });
  if (res.status === 401) throw new Unauthorized('the admin token is missing or wrong');
  if (!res.ok || !res.body) throw new Error(`GET /admin/events answered ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) onStatus(JSON.parse(data));
    }
  }
}
