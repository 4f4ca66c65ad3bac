/**
 * The floor under converge's command path: the same three components, used the plain way,
 * with nothing of converge between them. `commands.js` runs it beside the cluster in each
 * run, so what converge adds to a command is measured rather than guessed.
 *
 *   node dist/test/bench/floor.js --role api  --nats <url> --stream <name> [--port <p>]
 *   node dist/test/bench/floor.js --role fold --nats <url> --stream <name> --dir <lmdb dir>
 *   node dist/test/bench/floor.js --role http --nats <url> --stream <name> [--port <p>]
 *
 * - `api`: a Fastify route `POST /shops/:id/change-menu-price` that checks its body against
 *   a JSON schema, publishes one event to JetStream with the shop's last sequence expected
 *   (one command per shop at a time, as an actor runs them), and answers the stored position.
 * - `fold`: an ordered consumer of the stream that folds each event into the shop's
 *   document in LMDB (without a flush, as converge's views by default) with its checkpoint.
 * - `http`: the `api` route answering a count without publishing: the HTTP exchange alone.
 *
 * What converge does beyond it per command: the actor and its decider, the commit's
 * envelope and metadata, the notice, the lookup of an aggregate it has not seen, the
 * status and metrics, and the checks of a command API (docs/architecture.md).
 */
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { open } from 'lmdb';
import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';

const { values } = parseArgs({
  options: { role: { type: 'string' }, nats: { type: 'string' }, stream: { type: 'string' }, port: { type: 'string', default: '0' }, dir: { type: 'string' } },
});

// A stream of its own for each run, so its sequences and its fold start from nothing.
const stream = values.stream!;
const subject = (shop: string) => `${stream}.${shop}`;
const nc = await connect({ servers: values.nats!, name: `floor-${values.role}` });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] }).catch(async () => jsm.streams.info(stream));
const js = jetstream(nc);

if (values.role === 'api' || values.role === 'http') {
  let answered = 0;
  const last = new Map<string, number>();
  const queues = new Map<string, Promise<unknown>>();
  /** One command per shop at a time, each after the one before it. */
  const serial = <T>(id: string, run: () => Promise<T>): Promise<T> => {
    const next = (queues.get(id) ?? Promise.resolve()).then(run, run);
    const settled = next.catch(() => undefined);
    queues.set(id, settled);
    void settled.then(() => queues.get(id) === settled && queues.delete(id));
    return next;
  };
  const app = Fastify({ logger: false });
  app.post<{ Params: { id: string }; Body: { menuId: string; price: number } }>(
    '/shops/:id/change-menu-price',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 128 } }, required: ['id'] },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['menuId', 'price'],
          properties: { menuId: { type: 'string', minLength: 1, maxLength: 128 }, price: { type: 'integer', minimum: 0 } },
        },
      },
    },
    async (req) => {
      const { id } = req.params;
      if (values.role === 'http') return { position: ++answered };
      return serial(id, async () => {
        const event = { type: 'MenuPriceChanged', shopId: id, menuId: req.body.menuId, price: req.body.price, at: Date.now() };
        const ack = await js.publish(subject(id), JSON.stringify(event), { expect: { lastSubjectSequence: last.get(id) ?? 0 } });
        last.set(id, ack.seq);
        return { position: ack.seq };
      });
    },
  );
  await app.listen({ host: '127.0.0.1', port: Number(values.port) });
  process.send?.({ port: (app.server.address() as { port: number }).port });
  process.once('SIGTERM', () => void app.close().then(() => nc.drain()).then(() => process.exit(0)));
} else if (values.role === 'fold') {
  const env = open({ path: values.dir!, overlappingSync: false, noSync: true, noMetaSync: true, maxDbs: 4 });
  const docs = env.openDB<{ menus: Record<string, number>; position: number }, string>({ name: 'shops' });
  const meta = env.openDB<number, string>({ name: 'meta' });
  const after = meta.get('checkpoint') ?? 0;
  const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 });
  const messages = await consumer.consume({ max_messages: 1000 });
  process.send?.({ ready: true });
  process.once('SIGTERM', () => void messages.close().then(() => env.close()).then(() => nc.close()).then(() => process.exit(0)));
  for await (const m of messages) {
    const e = m.json<{ shopId: string; menuId: string; price: number }>();
    const doc = docs.get(e.shopId) ?? { menus: {}, position: 0 };
    doc.menus[e.menuId] = e.price;
    doc.position = m.seq;
    // Puts of one turn share one transaction, committed off the main thread.
    void docs.put(e.shopId, doc);
    void meta.put('checkpoint', m.seq);
  }
} else {
  throw new Error(`--role api, fold or http, not ${values.role}`);
}
