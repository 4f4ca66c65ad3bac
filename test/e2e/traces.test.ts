import t from 'tap';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import type { SpanRecord } from '../../src/observe/tracing.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { startCluster, waitReady } from '../helpers/cluster.js';
import { commandUrl, post, startWorkers } from '../helpers/workers.js';

/** Every span the cluster's processes have written to their files so far. */
function spansIn(dir: string): SpanRecord[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SpanRecord),
  );
}

t.test('one trace follows a command across processes: HTTP, forward, actor, append, projector apply and notice', async (t) => {
  const spanDir = join(tempDir(t), 'spans');
  const cluster = await startCluster(t, { CONVERGE_DATA_DIR: tempDir(t), CONVERGE_CLUSTER_WORKERS: '2', CONVERGE_TELEMETRY_SPAN_DIR: spanDir });
  await waitReady(cluster, 60_000);
  const keys: string[] = [];
  for (let i = 0; i < 12; i++) {
    const key = `trace-${i}`;
    keys.push(key);
    const res = await fetch(`${cluster.base}/shops/t${i}/register`, {
      method: 'POST',
      // A new connection each time, so that the commands reach both workers and some are forwarded.
      headers: { 'content-type': 'application/json', 'idempotency-key': key, connection: 'close' },
      body: JSON.stringify({ name: `T${i}`, category: 'c', ownerId: 'o' }),
    });
    t.equal(res.status, 200);
  }

  type Chain = { http: SpanRecord; forward?: SpanRecord; actor: SpanRecord; append: SpanRecord; apply: SpanRecord; notify: SpanRecord };
  const chainOf = (spans: SpanRecord[], key: string): Chain | undefined => {
    const actor = spans.find((s) => s.name === 'actor RegisterShop' && s.attributes['converge.command_id'] === key);
    if (!actor) return undefined;
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const children = (parent: SpanRecord, prefix: string) => spans.find((s) => s.parentSpanId === parent.spanId && s.name.startsWith(prefix));
    const up = byId.get(actor.parentSpanId ?? '');
    const forward = up?.name.startsWith('forward ') ? up : undefined;
    const http = forward ? byId.get(forward.parentSpanId ?? '') : up;
    const append = children(actor, 'append ');
    const apply = append && children(append, 'apply ');
    const notify = append && children(append, 'notify ');
    return http && append && apply && notify ? { http, ...(forward ? { forward } : {}), actor, append, apply, notify } : undefined;
  };
  let chains: Chain[] = [];
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const spans = spansIn(spanDir);
    chains = keys.map((k) => chainOf(spans, k)).filter((c): c is Chain => c !== undefined);
    if (chains.length === keys.length && chains.some((c) => c.forward)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(chains.length, keys.length, 'every command has its whole chain of spans');
  const forwarded = chains.find((c) => c.forward);
  const local = chains.find((c) => !c.forward);
  t.ok(forwarded, 'some command was forwarded to the owner of its partition');
  for (const [what, chain] of [['forwarded', forwarded], ['run where it arrived', local]] as const) {
    if (!chain) continue;
    const all = Object.values(chain) as SpanRecord[];
    t.equal(new Set(all.map((s) => s.traceId)).size, 1, `${what}: one trace id from HTTP to the notice`);
    t.equal(chain.http.name, 'POST /shops/:id/register', `${what}: the root is the HTTP request's server span`);
    t.equal(chain.http.parentSpanId, undefined, `${what}: with no parent`);
    t.equal(chain.append.parentSpanId, chain.actor.spanId, `${what}: the append is the actor's child`);
    t.equal(chain.apply.parentSpanId, chain.append.spanId, `${what}: the projector's apply is the append's child, through the commit's metadata`);
    t.equal(chain.notify.parentSpanId, chain.append.spanId, `${what}: and so is the notice publish`);
    t.equal(chain.apply.role, 'projector', `${what}: apply runs in the projector`);
    t.match(chain.http.role, /^worker-/, `${what}: the request in a worker`);
    t.equal(chain.append.pid, chain.actor.pid, `${what}: the append in the actor's process`);
  }
  if (forwarded?.forward) {
    t.equal(forwarded.forward.parentSpanId, forwarded.http.spanId, 'the forward is the HTTP span\'s child');
    t.equal(forwarded.actor.parentSpanId, forwarded.forward.spanId, 'the owner\'s actor span is the forward\'s child, through the forwarded command');
    t.not(forwarded.actor.pid, forwarded.http.pid, 'and runs in the other worker');
  }
  if (local) t.equal(local.actor.parentSpanId, local.http.spanId, 'a command run where it arrived has its actor span under the HTTP span');
});

t.test('with no telemetry settings nothing is traced: commits carry no trace context', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1);
  const res = await post(commandUrl(worker!), '/shops/plain/register', { name: 'P', category: 'c', ownerId: 'o' });
  t.equal(res.status, 200);
  const link = await connectNats(nats.url, { name: 'test', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const msg = await link.jsm.streams.getMessage('EVENTS', { seq: res.body.position as number });
  t.equal(msg?.header?.get('traceparent') ?? '', '', 'the commit has no traceparent header');
  const stored = msg?.json<{ metadata?: { traceparent?: string; correlationId?: string } }>();
  t.equal(stored?.metadata?.traceparent, undefined, 'nor any in its metadata');
  t.type(stored?.metadata?.correlationId, 'string', 'which it has, with the correlation');
});
