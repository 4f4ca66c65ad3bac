import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from '../helpers/nats.js';
import { processesUsing } from '../helpers/processes.js';

t.setTimeout(240_000);

const SCRIPT = join(import.meta.dirname, '../../dist/scripts/clusterLocal.js');

t.test('cluster:local starts 3 clustered nats-servers, two hosts and a read replica, serves commands through either host, and stops everything', async (t) => {
  const dataDir = tempDir(t);
  // A port range of its own, below Linux's ephemeral ports (32768 and up by default), which
  // the other tests' servers and connections take: 20,000–32,599.
  const base = 20_000 + 100 * Math.floor(Math.random() * 126);
  const proc = spawn(process.execPath, [SCRIPT, '--data-dir', dataDir, '--base-port', String(base), '--duration', '25'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((done) => proc.once('exit', (code) => done(code)));
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    for (const p of processesUsing(dataDir)) process.kill(p.pid, 'SIGKILL');
  });
  const deadline = Date.now() + 150_000;
  while (!out.includes('ready. NATS cluster') && proc.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  t.match(out, /ready\. NATS cluster converge-local/, 'it says when everything is ready');

  const url = (port: number) => `http://127.0.0.1:${base + port}`;
  const post = (port: number, path: string, body: object) =>
    fetch(`${url(port)}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const registered = await post(80, '/shops/local-1/register', { name: 'Kimchi', category: 'korean', ownerId: 'o1' });
  t.equal(registered.status, 200, 'host-a accepts a command');
  const renamed = await post(90, '/shops/local-1/rename', { name: 'Kimchi Two' });
  t.equal(renamed.status, 200, 'host-b accepts the next command for the same shop');
  const { position } = (await renamed.json()) as { position: number };
  // A replica that has just started may still be catching up: it answers 503/504 (retry later) until then.
  let onReplica: { status: number; body: { name?: string; error?: string } } = { status: 0, body: {} };
  for (const until = Date.now() + 20_000; Date.now() < until; ) {
    const res = await fetch(`${url(71)}/shops/local-1?waitMs=10000`, { headers: { 'x-min-position': String(position) } });
    onReplica = { status: res.status, body: (await res.json()) as { name?: string; error?: string } };
    if (onReplica.status !== 503 && onReplica.status !== 504) break;
  }
  t.same([onReplica.status, onReplica.body.name], [200, 'Kimchi Two'], `the read replica serves the result (${JSON.stringify(onReplica.body)})`);

  t.equal(await exited, 0, 'it stops by itself after --duration, with exit code 0');
  t.match(out, /\[cluster:local\] stopped/, 'saying so');
  t.same(processesUsing(dataDir), [], 'and leaves no process behind');
});
