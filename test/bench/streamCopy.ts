import { headers, type MsgHdrs } from '@nats-io/transport-node';
import type { NatsLink } from '../../src/nats/connection.js';

/** Headers that would make the copy act as the original publish did: a duplicate window entry, an expected sequence of the source. */
const PUBLISH_ONLY = /^Nats-(Msg-Id|Expected-)/i;

function kept(source: MsgHdrs | undefined): MsgHdrs | undefined {
  if (!source) return undefined;
  let out: MsgHdrs | undefined;
  for (const key of source.keys()) {
    if (PUBLISH_ONLY.test(key)) continue;
    for (const value of source.values(key)) (out ??= headers()).append(key, value);
  }
  return out;
}

/** What a stream held to copy (its messages but those on the skipped subject) and how many were copied. */
export interface StreamCopied {
  readonly expected: number;
  readonly copied: number;
}

/**
 * Makes every stream of `from` on `to`, with the same settings, and republishes its messages
 * in order, `inFlight` at a time, leaving out those on `skipSubject` and the headers that
 * belong to the original publish (its message id and expectations). Consumers are not
 * copied. Nothing may write to `from` meanwhile. A copy ends at the stream's last sequence,
 * or, should that message expire first (the leases' bucket), once the consumer has delivered
 * everything and nothing came for 3 s; `copied` below `expected` says it lost some.
 */
export async function copyStreams(from: NatsLink, to: NatsLink, opts: { readonly skipSubject: string; readonly inFlight?: number }): Promise<Record<string, StreamCopied>> {
  const inFlight = opts.inFlight ?? 512;
  const out: Record<string, StreamCopied> = {};
  const names: string[] = [];
  for await (const info of from.jsm.streams.list()) names.push(info.config.name);
  for (const name of names) {
    const info = await from.jsm.streams.info(name, { subjects_filter: opts.skipSubject });
    await to.jsm.streams.add(info.config);
    const expected = info.state.messages - (info.state.subjects?.[opts.skipSubject] ?? 0);
    out[name] = { expected, copied: info.state.messages === 0 ? 0 : await copyStream(from, to, name, info.state.last_seq, opts.skipSubject, inFlight) };
  }
  return out;
}

/**
 * Copies one stream's messages up to `last`. A message's own `pending` is no end marker:
 * 2.9.10 gave wrong counts on a stream with many removed messages.
 */
async function copyStream(from: NatsLink, to: NatsLink, name: string, last: number, skipSubject: string, inFlight: number): Promise<number> {
  const consumer = await from.js.consumers.get(name);
  const messages = await consumer.consume({ max_messages: 1000 });
  let seen = Date.now();
  const idle = setInterval(() => {
    if (Date.now() - seen < 3000) return;
    void consumer.info().then(
      (ci) => void (ci.num_pending === 0 && messages.close()),
      () => undefined,
    );
  }, 1000);
  let copied = 0;
  let pending: Promise<unknown>[] = [];
  try {
    for await (const m of messages) {
      seen = Date.now();
      if (m.subject !== skipSubject) {
        const h = kept(m.headers);
        pending.push(to.js.publish(m.subject, m.data, h ? { headers: h } : {}));
        copied++;
        if (pending.length >= inFlight) {
          await Promise.all(pending);
          pending = [];
        }
      }
      if (m.seq >= last) break;
    }
    await Promise.all(pending);
  } finally {
    clearInterval(idle);
    await messages.close().catch(() => undefined);
    await consumer.delete().catch(() => undefined);
  }
  return copied;
}
