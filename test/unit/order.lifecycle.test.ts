import t from 'tap';
import type { OrderCommand } from '../../actors/order/order.commands.js';
import { canTransition, orderStatuses, type OrderStatus } from '../../actors/order/order.lifecycle.js';

const allowed: Record<OrderStatus, readonly OrderCommand['type'][]> = {
  none: ['PlaceOrder'],
  placed: ['AcceptOrder', 'RejectOrder', 'CancelOrder'],
  accepted: ['DeliverOrder', 'CancelOrder'],
  delivered: [],
  rejected: [],
  cancelled: [],
};
const commandTypes: readonly Parameters<typeof canTransition>[1][] = ['PlaceOrder', 'AcceptOrder', 'RejectOrder', 'DeliverOrder', 'CancelOrder'];

t.test('each status allows exactly its lifecycle commands', async (t) => {
  for (const status of orderStatuses) {
    for (const type of commandTypes) {
      const expected = allowed[status].includes(type);
      t.equal(canTransition(status, type), expected, `${type} ${expected ? 'is' : 'is not'} allowed when ${status}`);
    }
  }
});

t.test('delivered, rejected and cancelled orders are final', async (t) => {
  for (const status of ['delivered', 'rejected', 'cancelled'] as const) {
    t.notOk(commandTypes.some((type) => canTransition(status, type)), `${status} allows nothing`);
  }
});

t.test('asking the lifecycle has no effect on later answers', async (t) => {
  t.ok(canTransition('placed', 'AcceptOrder'));
  t.ok(canTransition('placed', 'AcceptOrder'), 'the same answer twice: nothing was started or moved');
  t.notOk(canTransition('placed', 'DeliverOrder'));
});
