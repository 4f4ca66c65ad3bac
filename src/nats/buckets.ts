import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import { JetStreamApiError, type StreamInfo } from '@nats-io/jetstream';
import type { NatsLink } from './connection.js';

/** How many times a creation nats-server refused is tried, and how long apart. */
const CREATE_TRIES = 4;
const CREATE_RETRY_MS = 50;

/** Makes a bucket, or opens it when it exists; the default is the KV client's own. */
export type MakeBucket = (name: string, opts: Partial<KvOptions>) => Promise<KV>;

/**
 * Opens KV bucket `name`, making it with `opts` when missing, and sets its copies to
 * `opts.replicas` when it was made with another count. Answers the bucket, its stream's info, and whether its copies were set.
 *
 * The processes of a host open the same buckets at the same moment when they start. The KV
 * client makes a bucket by asking whether its stream exists, then adding it; when two add it at
 * once, nats-server 2.9 can refuse the second with "subjects overlap with an existing stream",
 * the first one's. So a creation nats-server refused is tried again: it then finds the stream
 * and opens it. A refusal that lasts (a stream of another name holding the bucket's subjects)
 * is thrown after the last try, and any other error (a timeout) at once (docs/architecture.md,
 * "Verified facts").
 */
export async function openBucket(
  link: NatsLink,
  name: string,
  opts: Partial<KvOptions> & { readonly replicas: number },
  make: MakeBucket = (n, o) => new Kvm(link.js).create(n, o),
): Promise<{ kv: KV; info: StreamInfo; rescaled: boolean }> {
  const kv = await refusalsRetried(() => make(name, opts));
  const stream = `KV_${name}`;
  const info = await link.jsm.streams.info(stream);
  if ((info.config.num_replicas || 1) === opts.replicas) return { kv, info, rescaled: false };
  return { kv, info: await link.jsm.streams.update(stream, { ...info.config, num_replicas: opts.replicas }), rescaled: true };
}

async function refusalsRetried<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tried = 1; ; tried++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || tried >= CREATE_TRIES) throw err;
      await new Promise((resolve) => setTimeout(resolve, CREATE_RETRY_MS * tried));
    }
  }
}
