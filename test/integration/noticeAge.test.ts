import t from 'tap';
import { pino } from 'pino';
import { createConverge } from '../../src/index.js';
import { connectNats } from '../../src/nats/connection.js';
import { shopPlatform } from '../../app.js';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { startTestNats, tempDir } from '../helpers/nats.js';

// The notifier leaves out a commit older than `notices.maxAgeMs` (docs/architecture.md,
// "Notices"): `NOTIFY` would drop its notice at once, and a notifier that starts over after
// its views were lost would otherwise announce every archived aggregate again.

const DAY_MS = 86_400_000;
const log = pino({ level: 'silent' });

t.test('a commit older than notices.maxAgeMs gets no notice; a recent one does', async (t) => {
  const nats = await startTestNats(t);
  const converge = await createConverge(shopPlatform, { config: { nats: { url: nats.url }, dataDir: tempDir(t), logLevel: 'silent' }, logger: log });
  t.teardown(() => converge.stop());
  const shop = (id: string, at: string) => ({
    commandId: `register-${id}`,
    commandType: 'RegisterShop',
    aggregate: 'shop',
    id,
    version: 1,
    events: [{ type: 'ShopRegistered', data: { name: id, category: 'korean', ownerId: 'o1', minOrderAmount: 0, deliveryFee: 0 }, at }],
  });
  // Appended as an import or a rebuild meets them: one of eight days ago, past the default 7 days.
  await converge.store.append(shop('old', new Date(Date.now() - 8 * DAY_MS).toISOString()), 0);
  const { position } = await converge.store.append(shop('new', new Date().toISOString()), 0);
  for (let i = 0; i < 200 && (converge.status().notifier?.position ?? 0) < position; i++) await new Promise((r) => setTimeout(r, 25));
  t.equal(converge.status().notifier?.position, position, 'the notifier went past both commits');
  const link = await connectNats(nats.url, { name: 'test', timeoutMs: 5000, log });
  t.teardown(() => link.close());
  const subjects = (await link.jsm.streams.info('NOTIFY', { subjects_filter: '>' })).state.subjects ?? {};
  t.same(Object.keys(subjects).sort(), ['notify.shop.new'], 'only the recent commit was announced');
  t.ok(converge.views.stored(shopDisplay, 'old'), 'the views took the old commit all the same');
});
