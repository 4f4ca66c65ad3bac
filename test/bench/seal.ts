/**
 * Sealing personal fields, in one process: `sealCommit` of an order's commit (its
 * `customerId` sealed) over 1,000 customers whose keys are cached, as a worker seals each
 * order command's commit before its append (docs/architecture.md, "Forgetting"). Reports
 * the CPU per commit for each round.
 *
 *   node dist/test/bench/seal.js [--commits 50000 --rounds 5]
 *
 * In-process and bounded; it starts nothing else.
 */
import { parseArgs } from 'node:util';
import { order } from '../../actors/order/order.decider.js';
import type { Commit } from '../../src/core/eventStore.js';
import type { PersonalDecl } from '../../src/core/personal.js';
import { memoryKeyStore } from '../../src/store/keys.js';
import { sealCommit } from '../../src/store/shredded.js';
import { median, printTable, writeResult } from './report.js';

const { values } = parseArgs({ options: { commits: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '5' } } });
const commits = Number(values.commits);
const rounds = Number(values.rounds);
const keys = memoryKeyStore();
const decl = order.personal as PersonalDecl;
const at = new Date().toISOString();
const commitOf = (i: number): Commit => ({
  commandId: `c-${i}`,
  commandType: 'PlaceOrder',
  aggregate: 'order',
  id: `o-${i}`,
  version: 1,
  events: [{ type: 'OrderPlaced', data: { shopId: 's-1', customerId: `cust-${i % 1000}`, lines: [{ menuId: 'm1', name: 'Kimbap', price: 4000, quantity: 1 }], total: 4000, deliveryFee: 0 }, at }],
});

// Every customer's key made and cached first, as in a worker that has run a while.
for (let i = 0; i < 1000; i++) await sealCommit(commitOf(i), decl, keys);
const perCommit: number[] = [];
for (let r = 0; r < rounds; r++) {
  const started = process.cpuUsage();
  for (let i = 0; i < commits; i++) await sealCommit(commitOf(i), decl, keys);
  const used = process.cpuUsage(started);
  perCommit.push((used.user + used.system) / commits);
}
printTable('sealing an order commit (CPU per commit, by round)', [
  ...perCommit.map((us, r) => [`round ${r + 1}`, `${us.toFixed(1)} µs`] as const),
  ['median', `${median(perCommit).toFixed(1)} µs`],
]);
writeResult('seal', { commits, rounds, perCommitUs: perCommit });
