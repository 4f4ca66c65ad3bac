/**
 * What a data subject's key costs to read when it is not in the process's cache, as the
 * `converge-keys` bucket grows. A feed opening an order of a customer past
 * `eventStore.keyCacheSize`, and a worker sealing one, first read the key from the bucket
 * (docs/architecture.md, "Forgetting"). The bench makes keys for a growing number of
 * subjects on a nats-server of its own, and at each size reads random ones through a key
 * store with an empty cache, 16 at a time, reporting the wall time and nats-server's CPU per
 * read.
 *
 *   node dist/test/bench/keyReads.js [--sizes 10000,100000,300000 --reads 2000]
 *
 * Bounded: it stops its nats-server and removes its files at the end.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { launchNatsServer } from '../../src/nats/server.js';
import { getStreamMessage } from '../../src/nats/requests.js';
import { KEYS_BUCKET, kvKeyStore } from '../../src/store/keys.js';
import { printTable, writeResult } from './report.js';

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '10000,100000,300000' }, reads: { type: 'string', default: '2000' } } });
const sizes = values.sizes.split(',').map(Number);
const reads = Number(values.reads);
const log = pino({ level: 'warn' });

/** nats-server's CPU so far, in ms, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'converge-bench-keys-'));
  const nats = await launchNatsServer({ port: 0, storeDir: join(dir, 'nats') });
  const link = await connectNats(nats.url, { name: 'bench', timeoutMs: 10_000, log });
  try {
    const maker = await kvKeyStore(link, { replicas: 1, cacheSize: 1 });
    const rows: Array<{ keys: number; megabytes: number; wallUs: number; serverCpuUs: number; bySeq: { wallUs: number; serverCpuUs: number }; byFirst: { wallUs: number; serverCpuUs: number } }> = [];
    let made = 0;
    for (const size of sizes) {
      const started = performance.now();
      while (made < size) {
        const batch = Array.from({ length: Math.min(64, size - made) }, (_, k) => made + k);
        await Promise.all(batch.map((i) => maker.keyFor(`customer-${i}`)));
        made += batch.length;
      }
      console.error(`${size} keys made (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      const info = await link.jsm.streams.info(`KV_${KEYS_BUCKET}`);
      // Let the writes settle before timing the reads.
      await new Promise((r) => setTimeout(r, 3000));
      // A store of its own, whose cache starts empty and holds no more than a read's batch.
      const reader = await kvKeyStore(link, { replicas: 1, cacheSize: 1 });
      const ids = Array.from({ length: reads }, () => reader.keyId(`customer-${Math.floor(Math.random() * made)}`));
      const cpu = cpuMs(nats.pid);
      const t0 = performance.now();
      for (let i = 0; i < reads; i += 16) {
        const found = await Promise.all(ids.slice(i, i + 16).map((id) => reader.get(id)));
        if (found.some((k) => !k)) throw new Error('a key made is not found');
      }
      const wallUs = ((performance.now() - t0) * 1000) / reads;
      const serverCpuUs = ((cpuMs(nats.pid) - cpu) * 1000) / reads;
      // The same number of reads of the bucket's messages by sequence.
      const { first_seq: first, last_seq: last } = info.state;
      const seqCpu = cpuMs(nats.pid);
      const t1 = performance.now();
      for (let i = 0; i < reads; i += 16) {
        const found = await Promise.all(Array.from({ length: 16 }, () => getStreamMessage(link.requests, `KV_${KEYS_BUCKET}`, { seq: first + Math.floor(Math.random() * (last - first + 1)) }, 10_000)));
        if (found.some((m) => !m)) throw new Error('a message of the bucket is not found');
      }
      const bySeq = { wallUs: ((performance.now() - t1) * 1000) / reads, serverCpuUs: ((cpuMs(nats.pid) - seqCpu) * 1000) / reads };
      // The same keys by key id again, as the first message on the key's subject from the bucket's first sequence.
      const firstCpu = cpuMs(nats.pid);
      const t2 = performance.now();
      for (let i = 0; i < reads; i += 16) {
        const found = await Promise.all(ids.slice(i, i + 16).map((id) => getStreamMessage(link.requests, `KV_${KEYS_BUCKET}`, { seq: 1, next_by_subj: `$KV.${KEYS_BUCKET}.${id}` }, 10_000)));
        if (found.some((m) => !m)) throw new Error('a key made is not found from the first sequence');
      }
      const byFirst = { wallUs: ((performance.now() - t2) * 1000) / reads, serverCpuUs: ((cpuMs(nats.pid) - firstCpu) * 1000) / reads };
      rows.push({ keys: size, megabytes: Math.round(info.state.bytes / 1e6), wallUs, serverCpuUs, bySeq, byFirst });
    }
    printTable(
      `reads of a key not in the cache, ${reads} at each size, 16 in flight: wall time and nats-server CPU per read`,
      rows.flatMap((r) => [
        [`${r.keys.toLocaleString('en-US')} keys (${r.megabytes} MB), by key id`, `${r.wallUs.toFixed(0)} µs, nats-server ${r.serverCpuUs.toFixed(0)} µs`],
        [`${r.keys.toLocaleString('en-US')} keys (${r.megabytes} MB), by sequence`, `${r.bySeq.wallUs.toFixed(0)} µs, nats-server ${r.bySeq.serverCpuUs.toFixed(0)} µs`],
        [`${r.keys.toLocaleString('en-US')} keys (${r.megabytes} MB), by key id from the first sequence`, `${r.byFirst.wallUs.toFixed(0)} µs, nats-server ${r.byFirst.serverCpuUs.toFixed(0)} µs`],
      ] as const),
    );
    writeResult('keyReads', { reads, rows });
  } finally {
    await link.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
