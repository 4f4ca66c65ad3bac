import type { NatsLink } from '../src/nats/connection.js';

/**
 * Publishes for `seconds` 200-byte messages, shaped like a commit, with `inFlight`
 * publishes outstanding from one client, to a scratch file-backed stream: the store's own
 * limit, which commands over HTTP are measured against. Returns messages per second.
 */
export async function rawPublish(link: NatsLink, seconds: number, inFlight: number): Promise<number> {
  const stream = `BENCH_${Date.now().toString(36)}`;
  await link.jsm.streams.add({ name: stream, subjects: [`${stream}.>`], storage: 'file' as never });
  const payload = JSON.stringify({ commandId: 'x'.repeat(36), aggregate: 'shop', id: 'bench', version: 1, events: [{ type: 'MenuPriceChanged', data: { menuId: 'm1', price: 4500 }, at: new Date().toISOString() }] });
  const until = Date.now() + seconds * 1000;
  let sent = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: inFlight }, async (_, lane) => {
        for (let i = 0; Date.now() < until; i++) {
          await link.js.publish(`${stream}.${lane}.${i % 100}`, payload);
          sent++;
        }
      }),
    );
    return sent / ((performance.now() - started) / 1000);
  } finally {
    await link.jsm.streams.delete(stream);
  }
}
