import { defineApp } from '@converge-es/converge';
import { cart } from './cart.decider.js';
import { cartExpiry } from './cartExpiry.process.js';
import { cartRoutes } from './cart.routes.js';
import { cartDetails } from './cartDetails.projection.js';
import { clientSummary } from './clientSummary.projection.js';
import { receipts } from './receipts.reactor.js';
import { cartSettings } from './settings.js';

/**
 * Shopping carts on converge: one aggregate priced by a server-side price list, two views
 * and their routes, a receipt sent for each confirmed cart, and carts left open expiring.
 */
export const cartApp = defineApp({
  aggregates: [cart],
  projections: [cartDetails, clientSummary],
  routes: cartRoutes,
  reactors: [receipts],
  processes: [cartExpiry],
  settings: cartSettings,
});
