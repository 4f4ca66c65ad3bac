import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { NatsAuth } from './auth.js';
import { createRequester, type Requester } from './requests.js';
import { isStorageFull, probeWhileRefused, PROBE_STREAM, writeRefusals, type WriteRefusals } from './writeRefusals.js';

/** A NATS connection that reconnects forever and knows, synchronously, whether it is up. */
export interface NatsLink {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Request-reply for the command path (appends, forwarded commands); see `createRequester`. */
  readonly requests: Requester;
  /** How long a request on this connection waits for its answer (`nats.requestTimeoutMs`). */
  readonly requestTimeoutMs: number;
  /** False while disconnected, so callers can fail fast instead of waiting for a timeout. */
  isConnected(): boolean;
  /** Whether nats-server refuses this process's writes for full storage, from their answers. */
  readonly writes: WriteRefusals;
  /** Calls `listener` after each reconnect; answers a function that removes it. */
  onReconnect(listener: () => void): () => void;
  close(): Promise<void>;
}

/** The connection options for `auth`; empty strings count as not given. */
export function authOptions(auth: NatsAuth = {}): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  if (auth.user) Object.assign(out, { user: auth.user, pass: auth.password ?? '' });
  if (auth.token) out.token = auth.token;
  // Read at each (re)connect, so a rotated creds file is picked up.
  if (auth.credsFile) out.authenticator = credsAuthenticator(() => readFileSync(auth.credsFile!));
  const tls = auth.tls ?? {};
  if (tls.caFile || tls.certFile) {
    out.tls = { ...(tls.caFile ? { caFile: tls.caFile } : {}), ...(tls.certFile ? { certFile: tls.certFile } : {}), ...(tls.keyFile ? { keyFile: tls.keyFile } : {}) };
  }
  return out;
}

/**
 * The servers in `nats.url`: several servers of one NATS cluster are comma-separated, and
 * the client tries each and reconnects to whichever is up.
 */
export function natsServers(url: string): string[] {
  return url.split(',').map((s) => s.trim()).filter(Boolean);
}

/**
 * Connects to NATS, retrying until `url` answers. After that the client reconnects
 * on its own for as long as the process lives; subscriptions are restored with it.
 */
export async function connectNats(url: string, opts: { name: string; timeoutMs: number; log: Logger; auth?: NatsAuth }): Promise<NatsLink> {
  const nc = await connect({
    ...authOptions(opts.auth),
    servers: natsServers(url),
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    waitOnFirstConnect: true,
    pingInterval: 5000,
    timeout: opts.timeoutMs,
    // Capturing a stack for every request costs ~6% of a worker's CPU under load.
    noAsyncTraces: true,
  });
  let connected = true;
  const reconnectListeners = new Set<() => void>();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        connected = false;
        opts.log.warn({ server: s.server }, 'nats disconnected');
      } else if (s.type === 'reconnect') {
        connected = true;
        opts.log.info({ server: s.server }, 'nats reconnected');
        for (const listener of reconnectListeners) listener();
      }
    }
  })();
  const js = jetstream(nc, { timeout: opts.timeoutMs });
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: opts.timeoutMs });
  } catch (err) {
    // JetStream is not there (yet: a new cluster elects its meta leader first); leave no connection behind.
    await nc.close();
    throw err;
  }
  const requests = createRequester(nc);
  const writes = writeRefusals();
  const stopProbing = probeWhileRefused(writes, async () => {
    const subject = `converge.probe.${opts.name.replace(/[^A-Za-z0-9_-]/g, '_')}.${process.pid}`;
    const publish = () => js.publish(subject, '', { timeout: opts.timeoutMs });
    try {
      await publish();
    } catch (err) {
      if (isStorageFull(err)) throw err;
      // No stream yet (the client says JetStream is not enabled when nothing takes the subject): made here, kept small.
      await jsm.streams
        .add({ name: PROBE_STREAM, subjects: ['converge.probe.>'], max_msgs_per_subject: 1, max_age: 3_600_000_000_000, num_replicas: 1 })
        .catch((e: unknown) => {
          // Another process made it first.
          if (!/already in use/i.test(String((e as Error).message))) throw e;
        });
      await publish();
    }
  });
  return {
    nc,
    js,
    jsm,
    requests,
    requestTimeoutMs: opts.timeoutMs,
    writes,
    isConnected: () => connected && !nc.isClosed(),
    onReconnect: (listener) => {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
    close: async () => {
      stopProbing();
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
      requests.close();
    },
  };
}
