import Fastify from 'fastify';
import { createConverge } from '@converge-es/converge';
import { cartApp } from './app.js';
import { catalogue, fixedPriceList } from './priceList.js';
import { loggedReceipts } from './receipts.js';

/**
 * The carts inside a Fastify app of the team's own: converge runs in this process (on the
 * NATS server at `NATS_URL`, or in memory without one), and its routes are mounted under
 * `/api` beside the app's own. `node dist/examples/cart/server.js`, then
 * `curl -X POST localhost:3000/api/carts/<uuid> -H 'content-type: application/json' -d '{"clientId":"c1"}'`.
 */
export async function startServer(port = Number(process.env['PORT'] ?? 3000)) {
  const converge = await createConverge(cartApp, {
    services: { prices: fixedPriceList(catalogue), receipts: loggedReceipts() },
    config: { nats: { url: process.env['NATS_URL'] ?? '' }, dataDir: process.env['CONVERGE_DATA_DIR'] ?? 'data/cart-server', logLevel: 'warn' },
  });
  const app = Fastify();
  app.get('/catalogue', async () => catalogue);
  await app.register(converge.commandRoutes, { prefix: '/api' });
  await app.register(converge.queryRoutes, { prefix: '/api' });
  app.addHook('onClose', () => converge.stop());
  await app.listen({ host: '127.0.0.1', port });
  return app;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await startServer();
  const stop = () => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
