import { JetStreamApiCodes } from '@nats-io/jetstream';
import { createInbox, headers, type MsgHdrs, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** No one subscribes to the subject: the request ran nowhere. */
export class NoRespondersError extends Error {
  constructor(subject: string) {
    super(`no responders on ${subject}`);
    this.name = 'NoRespondersError';
  }
}

/** No reply within the timeout: the request may or may not have run. */
export class RequestTimeoutError extends Error {
  constructor(subject: string, timeoutMs: number) {
    super(`no reply on ${subject} within ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** Request-reply on one NATS connection, for the command path's hot requests. */
export interface Requester {
  /**
   * With `share`, a request the same as one made earlier in this turn of the loop (same
   * subject, data and timeout, no headers) is that one: it has not been published yet, so
   * its answer is as recent as a request of its own would be. For reads only.
   */
  request(subject: string, data: string | Uint8Array, opts: { timeoutMs: number; headers?: MsgHdrs; share?: boolean }): Promise<Msg>;
  /** Fails what is pending and stops listening. */
  close(): void;
}

interface Pending {
  readonly subject: string;
  readonly timeoutMs: number;
  readonly deadline: number;
  resolve(msg: Msg): void;
  reject(err: Error): void;
}

/**
 * Request-reply over one wildcard inbox subscription, as nats.js's own `request` does,
 * without its costs per request: nats.js creates an error (and its stack) after every
 * answered request and a timer for each, which showed as ~3% of a worker's CPU. Here one
 * sweep a `sweepMs` fails the requests past their deadline, so a timeout fires up to
 * `sweepMs` late.
 *
 * The requests made in one turn of the event loop go to the socket in one write. nats.js
 * writes what was published once the current task's microtasks have run, and every HTTP
 * request is a task of its own, so each command's append was a write of its own: 65 µs of
 * a worker's CPU per command in the kernel's loopback send (docs/architecture.md,
 * "Event store"). Requests wait for `setImmediate`, after the loop has read every socket
 * that was ready, and are published together.
 */
export function createRequester(nc: NatsConnection, opts: { sweepMs?: number } = {}): Requester {
  const prefix = createInbox();
  const start = prefix.length + 1;
  const pending = new Map<string, Pending>();
  let next = 0;
  let sub: Subscription | undefined = nc.subscribe(`${prefix}.*`, {
    callback: (err, msg) => {
      if (err) return;
      const token = msg.subject.slice(start);
      const p = pending.get(token);
      if (!p) return;
      pending.delete(token);
      if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(new NoRespondersError(p.subject));
      else p.resolve(msg);
    },
  });
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [token, p] of pending) {
      if (p.deadline > now) continue;
      pending.delete(token);
      p.reject(new RequestTimeoutError(p.subject, p.timeoutMs));
    }
  }, opts.sweepMs ?? 50);
  sweep.unref();
  // Requests of this turn of the loop, published together in the next check phase.
  let queued: { token: string; subject: string; data: string | Uint8Array; headers?: MsgHdrs }[] = [];
  /** The shareable requests among them, by subject, data and timeout. */
  const shared = new Map<string, { readonly token: string; readonly answer: Promise<Msg> }>();
  const publishQueued = () => {
    const batch = queued;
    queued = [];
    shared.clear();
    for (const q of batch) {
      const p = pending.get(q.token);
      if (!p) continue;
      try {
        nc.publish(q.subject, q.data, q.headers ? { reply: `${prefix}.${q.token}`, headers: q.headers } : { reply: `${prefix}.${q.token}` });
      } catch (err) {
        pending.delete(q.token);
        p.reject(err as Error);
      }
    }
  };
  return {
    request(subject, data, { timeoutMs, headers, share }) {
      if (!sub) return Promise.reject(new Error('the requester is closed'));
      const key = share && !headers && typeof data === 'string' ? `${timeoutMs} ${subject} ${data}` : undefined;
      const same = key === undefined ? undefined : shared.get(key);
      // Unless the sweep failed it already, in a turn the loop was held past its deadline.
      if (same && pending.has(same.token)) return same.answer;
      const token = (next++).toString(36);
      const answer = new Promise<Msg>((resolve, reject) => {
        pending.set(token, { subject, timeoutMs, deadline: performance.now() + timeoutMs, resolve, reject });
        if (queued.length === 0) setImmediate(publishQueued);
        queued.push(headers ? { token, subject, data, headers } : { token, subject, data });
      });
      if (key !== undefined) shared.set(key, { token, answer });
      return answer;
    },
    close() {
      clearInterval(sweep);
      sub?.unsubscribe();
      sub = undefined;
      queued = [];
      shared.clear();
      for (const p of pending.values()) p.reject(new Error('the connection is closing'));
      pending.clear();
    },
  };
}

/** JetStream refused a publish: `code` is its API error code (10071: wrong last sequence). */
export class PublishRefusedError extends Error {
  constructor(
    readonly code: number | undefined,
    description: string,
  ) {
    super(description);
    this.name = 'PublishRefusedError';
  }
}

/**
 * A JetStream publish with its ack, over the requester: the stored sequence, and whether
 * the stream took it for a duplicate of `msgId`. With `expectedLastSubjectSequence` the
 * stream stores it only if the subject's last message is at that sequence (0: none yet).
 * A refusal rejects with `PublishRefusedError`.
 */
export async function publishAcked(
  requests: Requester,
  subject: string,
  data: string | Uint8Array,
  opts: { msgId: string; timeoutMs: number; headers?: MsgHdrs; expectedLastSubjectSequence?: number },
): Promise<{ seq: number; duplicate: boolean }> {
  const h = opts.headers ?? headers();
  h.set('Nats-Msg-Id', opts.msgId);
  if (opts.expectedLastSubjectSequence !== undefined) h.set('Nats-Expected-Last-Subject-Sequence', String(opts.expectedLastSubjectSequence));
  const reply = await requests.request(subject, data, { timeoutMs: opts.timeoutMs, headers: h });
  const ack = reply.json<{ seq?: number; duplicate?: boolean; error?: { code: number; err_code?: number; description?: string } }>();
  if (ack.error) throw new PublishRefusedError(ack.error.err_code, ack.error.description ?? `JetStream refused the publish (${ack.error.code})`);
  if (typeof ack.seq !== 'number') throw new PublishRefusedError(undefined, 'JetStream answered the publish without a sequence');
  return { seq: ack.seq, duplicate: ack.duplicate === true };
}

/** A message of a stream as STREAM.MSG.GET answers it. */
export interface StreamMessage {
  readonly subject: string;
  readonly seq: number;
  readonly time: Date;
  /** Decoded when first read: most lookups want only `seq`. */
  readonly data: Uint8Array;
  json<T>(): T;
}

/** JetStream refused an API request: `code` is its API error code, `status` the HTTP-like one (as nats.js's `JetStreamApiError` has them). */
export class JetStreamRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    description: string,
  ) {
    super(description);
    this.name = 'JetStreamRequestError';
  }
}

/**
 * A stream's message by STREAM.MSG.GET (from the stream's leader, as nats.js's
 * `jsm.streams.getMessage` asks), over the requester; undefined when there is none.
 * nats.js's own request builds two errors, and their stacks, for every lookup that finds
 * nothing, and the first command of every new aggregate makes such lookups
 * (docs/architecture.md, "Event store"). The same lookup made again in the same turn of
 * the loop shares the first one's request.
 */
export async function getStreamMessage(
  requests: Requester,
  stream: string,
  query: { last_by_subj: string } | { seq: number; next_by_subj?: string },
  timeoutMs: number,
): Promise<StreamMessage | undefined> {
  // New aggregates whose lookups answered together all ask for the archive's head next.
  const reply = await requests.request(`$JS.API.STREAM.MSG.GET.${stream}`, JSON.stringify(query), { timeoutMs, share: true });
  const answer = reply.json<{ message?: { subject: string; seq: number; time: string; data?: string }; error?: { code: number; err_code?: number; description?: string } }>();
  if (answer.error) {
    if (answer.error.err_code === JetStreamApiCodes.NoMessageFound) return undefined;
    throw new JetStreamRequestError(answer.error.code, answer.error.err_code, answer.error.description ?? `JetStream refused the request (${answer.error.code})`);
  }
  const m = answer.message;
  if (!m) throw new JetStreamRequestError(500, undefined, 'JetStream answered STREAM.MSG.GET without a message');
  let data: Buffer | undefined;
  const bytes = () => (data ??= Buffer.from(m.data ?? '', 'base64'));
  return {
    subject: m.subject,
    seq: m.seq,
    time: new Date(m.time),
    get data() {
      return bytes();
    },
    json: <T>() => JSON.parse(bytes().toString('utf8')) as T,
  };
}
