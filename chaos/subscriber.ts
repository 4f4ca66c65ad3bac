import { connect, type NatsConnection } from '@nats-io/transport-node';
import { subscriberInbox } from '../src/nats/credentials.js';
import { jetstream } from '@nats-io/jetstream';
import { follow, fullImport, syncOnce, type Copy, type Notice } from '../examples/subscriber.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The chaos run's subscribing system: a local copy of the shops, kept as examples/subscriber.ts keeps one. */
export interface ChaosSubscriber {
  readonly copy: Copy;
  /** Failed syncs and consumer errors, for the report. */
  readonly errors: string[];
  stop(): Promise<void>;
}

/**
 * Registers the system `name` on the admin API (every notice from the start), takes a full
 * import, then follows its `NOTIFY` and `REPLAY` consumers. A follow that ends or fails is
 * started again after a second, so NATS restarts are survived as a real subscriber would.
 */
export async function startSubscriber(name: string, natsUrl: string, queryUrl: string, adminUrl: string, auth?: { user: string; password: string }): Promise<ChaosSubscriber> {
  const errors: string[] = [];
  const note = (what: string, err: unknown) => errors.length < 50 && errors.push(`${new Date().toISOString()} ${what}: ${err instanceof Error ? err.message : String(err)}`);
  const res = await fetch(`${adminUrl}/admin/subscribers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, from: 'all' }),
  });
  if (res.status !== 201 && res.status !== 409) throw new Error(`POST /admin/subscribers answered ${res.status}: ${await res.text()}`);
  const copy: Copy = new Map();
  const nc: NatsConnection = await connect({
    servers: natsUrl,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    name: `chaos-${name}`,
    ...(auth ? { user: auth.user, pass: auth.password, inboxPrefix: subscriberInbox(auth.user) } : {}),
  });
  await fullImport(queryUrl, copy);
  const stop = new AbortController();
  const handle = async (notices: Notice[]) => {
    try {
      await syncOnce(queryUrl, copy, notices);
    } catch (err) {
      note('sync', err);
      throw err;
    }
  };
  const loops = ['NOTIFY', 'REPLAY'].map(async (stream) => {
    while (!stop.signal.aborted) {
      try {
        await follow(await jetstream(nc).consumers.get(stream, name), handle, stop.signal);
      } catch (err) {
        note(`follow ${stream}`, err);
      }
      if (!stop.signal.aborted) await sleep(1000);
    }
  });
  return {
    copy,
    errors,
    stop: async () => {
      stop.abort();
      await Promise.race([Promise.all(loops), sleep(3000)]);
      await nc.close().catch(() => undefined);
    },
  };
}
