import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
const nc = await connect({ servers: process.argv[2] });
console.log('version', nc.info?.version);
const jsm = await jetstreamManager(nc);
if (process.argv[3] === 'create') {
  await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] });
  const js = jetstream(nc);
  for (let i = 0; i < 5; i++) await js.publish('events.a.' + i, 'x');
}
try { console.log(JSON.stringify((await jsm.streams.info('EVENTS')).state)); } catch (e) { console.log('info err', e.message); }
await nc.close();
