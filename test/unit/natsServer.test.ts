import t from 'tap';
import { join } from 'node:path';
import { loadConfig } from '../../src/host/config.js';
import { supportsSyncAlways } from '../../src/nats/server.js';

const dir = join(import.meta.dirname, '../../config');

t.test('sync_interval always is used from nats-server 2.10 on, never on 2.9', async (t) => {
  t.notOk(supportsSyncAlways('2.9.10'), '2.9.10 rejects the key');
  t.notOk(supportsSyncAlways('2.9.25'));
  t.ok(supportsSyncAlways('2.10.0'));
  t.ok(supportsSyncAlways('2.11.4-beta.1'));
  t.ok(supportsSyncAlways('3.0.0'));
});

t.test('nats.embeddedSync defaults to the server default and takes CONVERGE_NATS_EMBEDDED_SYNC', async (t) => {
  t.equal(loadConfig({ dir, env: {} }).nats.embeddedSync, 'default');
  t.equal(loadConfig({ dir, env: { CONVERGE_NATS_EMBEDDED_SYNC: 'always' } }).nats.embeddedSync, 'always');
  t.throws(() => loadConfig({ dir, env: { CONVERGE_NATS_EMBEDDED_SYNC: 'sometimes' } }), { message: /nats.embeddedSync/ });
});
