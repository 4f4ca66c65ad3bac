import t from 'tap';
import { verifyInvariant } from '../../chaos/report.js';

t.test("a view that differs from its rebuild fails the verdict, which names its first differences and the documents' keys", async (t) => {
  const caughtUp = { ok: true, projections: [{ name: 'orderHistory', position: 1044, state: 'live' }], waitedMs: 10 };
  const differences = [{ key: 'order-0-7-31', kind: 'missing', expected: { status: 'placed' } }];
  const verdict = verifyInvariant(caughtUp, 1044, {
    status: 200,
    body: { ok: false, streamLastPosition: 1044, projections: [{ name: 'orderHistory', position: 1044, documents: 1043, checked: 1043, differenceCount: 1, differences, indexDifferences: 0 }], checkpoints: { ok: true, problems: [] } },
  });
  t.equal(verdict.ok, false);
  t.match(verdict.detail, 'orderHistory: 1043/1043 checked, 1 differences, index 0 (first: {"key":"order-0-7-31","kind":"missing","expected":{"status":"placed"}})');
  const same = verifyInvariant(caughtUp, 1044, { status: 200, body: { ok: true, projections: [{ name: 'orderHistory', position: 1044, documents: 1, checked: 1, differenceCount: 0, differences: [], indexDifferences: 0 }] } });
  t.equal(same.ok, true);
  t.notMatch(same.detail, 'first:', 'nothing listed when nothing differs');
});
