import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'converge:metrics-request';
const REPLY = 'converge:metrics-reply';

interface MetricsRequest {
  readonly type: typeof REQUEST;
  readonly id: number;
}
interface MetricsReply {
  readonly type: typeof REPLY;
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

/** The metrics text `/metrics` answers with, and its content type. */
export interface MetricsText {
  readonly contentType: string;
  readonly text: string;
}

/**
 * In the cluster primary: answers a child's request for the cluster's metrics with
 * `AggregatorRegistry.clusterMetrics()`, which asks every worker and the projector for its
 * registry over IPC and sums them (gauges as each declares: the default process metrics
 * average, take the first, or leave out what cannot be summed).
 */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isRequest(message)) return;
    const send = (reply: Omit<MetricsReply, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: REPLY, id: message.id, ...reply } satisfies MetricsReply);
    };
    aggregator.clusterMetrics().then(
      (text) => send({ text }),
      (err: unknown) => send({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/**
 * What a process's `/metrics` answers. Under the cluster primary, the whole cluster's
 * metrics: the process hands its registry to prom-client's cluster support (so that the
 * primary can collect it) and asks the primary for the sum, whichever port the scrape
 * came to. A process on its own (a test, an embedding) answers its own registry.
 * Rejects when the primary does not answer within `timeoutMs`.
 */
export function clusterMetricsReader(registry: Registry, timeoutMs: number): () => Promise<MetricsText> {
  const contentType = registry.contentType;
  if (!cluster.isWorker || !process.send) return async () => ({ contentType, text: await registry.metrics() });
  AggregatorRegistry.setRegistries([registry]);
  // Constructed in a worker, it installs the listener that answers the primary's collection requests.
  new AggregatorRegistry();
  let next = 0;
  const waiting = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();
  process.on('message', (message: unknown) => {
    if (!isReply(message)) return;
    const w = waiting.get(message.id);
    if (!w) return;
    waiting.delete(message.id);
    if (message.text !== undefined) w.resolve(message.text);
    else w.reject(new Error(message.error ?? 'the cluster primary sent no metrics'));
  });
  return () =>
    new Promise<MetricsText>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the cluster primary did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, {
        resolve: (text) => (clearTimeout(timer), resolve({ contentType, text })),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
      process.send!({ type: REQUEST, id } satisfies MetricsRequest);
    });
}

function isRequest(m: unknown): m is MetricsRequest {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === REQUEST && typeof (m as { id?: unknown }).id === 'number';
}

function isReply(m: unknown): m is MetricsReply {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === REPLY && typeof (m as { id?: unknown }).id === 'number';
}
