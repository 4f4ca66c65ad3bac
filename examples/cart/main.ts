import { loadConfig, runConverge } from '@converge-es/converge';
import { cartApp } from './app.js';
import { catalogue, fixedPriceList } from './priceList.js';
import { loggedReceipts } from './receipts.js';

// `npm run example:cart`: the carts on converge as a cluster, with the embedded nats-server.
// The primary forks this same file for its workers and projector; each builds its own price
// list. Its data goes to `data/cart` unless CONVERGE_DATA_DIR says otherwise.
runConverge(cartApp, {
  services: { prices: fixedPriceList(catalogue), receipts: loggedReceipts() },
  config: loadConfig({ settings: cartApp.settings, env: { CONVERGE_DATA_DIR: 'data/cart', ...process.env } }),
});
