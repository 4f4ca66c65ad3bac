import { defineApp } from '@converge-es/converge';
import { coupon } from './coupon.decider.js';
import { couponExpiry } from './couponExpiry.process.js';
import { couponsByShop } from './couponsByShop.projection.js';
import { couponRoutes } from './couponsByShop.routes.js';

/** A shop's coupons on converge: one aggregate, one view, its query routes, and the process that expires coupons. */
export const couponsApp = defineApp({
  aggregates: [coupon],
  projections: [couponsByShop],
  routes: [couponRoutes],
  processes: [couponExpiry],
});
