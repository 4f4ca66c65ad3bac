/**
 * `npm run cluster:local`: the scale-out topology on one machine, to try it. Three
 * nats-servers clustered on loopback, two converge hosts sharing the partitions through
 * leases, and a read replica, each on its own ports and data directory, with R3 streams.
 * Ctrl-C (or `--duration`) stops them all, hosts first. See docs/architecture.md, "Deployment".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { launchNatsServer, loopbackClusterArgs, type NatsServerProcess } from '../src/nats/server.js';

const MAIN = join(import.meta.dirname, '../main.js');

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: 'data/cluster-local' },
    'base-port': { type: 'string', default: '18000' },
    duration: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run cluster:local -- [--data-dir data/cluster-local] [--base-port 18000] [--duration <seconds>]

Starts on 127.0.0.1:
  3 nats-servers (clients on base+1..3, routes on base+11..13), one NATS cluster
  host-a and host-b (command, query, admin on base+80..82 and base+90..92)
  a read replica (query, admin on base+71..72)
and stops them on Ctrl-C, or after --duration seconds.`);
  process.exit(0);
}

const dataDir = resolve(values['data-dir']);
const base = Number(values['base-port']);
if (!Number.isInteger(base) || base < 1024 || base > 65_000) fail(`--base-port must be an integer from 1024 to 65000 (got ${values['base-port']})`);
const duration = values.duration === undefined ? undefined : Number(values.duration);
if (duration !== undefined && !(duration > 0)) fail(`--duration must be a number of seconds above 0 (got ${values.duration})`);

const natsPorts = [base + 1, base + 2, base + 3];
const routePorts = [base + 11, base + 12, base + 13];
const hosts = [
  { name: 'host-a', role: 'all', ports: [base + 80, base + 81, base + 82] },
  { name: 'host-b', role: 'all', ports: [base + 90, base + 91, base + 92] },
  // A read replica has no command API; its command port is never opened.
  { name: 'replica', role: 'read-replica', ports: [base + 70, base + 71, base + 72] },
] as const;
const natsUrl = natsPorts.map((p) => `nats://127.0.0.1:${p}`).join(',');

function fail(message: string): never {
  console.error(`cluster:local: ${message}`);
  process.exit(1);
}

function say(message: string): void {
  console.log(`[cluster:local] ${message}`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** Copies a child's output to ours, each line prefixed with its name. */
function prefixed(name: string, child: ChildProcess): void {
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream?.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line) console.log(`[${name}] ${line}`);
    });
  }
}

async function ready(url: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

const servers: NatsServerProcess[] = [];
const children: { name: string; proc: ChildProcess; exited: Promise<void> }[] = [];
let stopping: Promise<void> | undefined;

function stop(why: string): Promise<void> {
  return (stopping ??= (async () => {
    say(`stopping (${why}): converge hosts first, then the nats-servers`);
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGTERM');
    const forced = setTimeout(() => children.forEach((c) => c.proc.kill('SIGKILL')), 30_000);
    await Promise.all(children.map((c) => c.exited));
    clearTimeout(forced);
    await Promise.all(servers.map((s) => s.stop()));
    say('stopped');
  })());
}

process.on('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)));
process.on('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));

const wanted = [...natsPorts, ...routePorts, ...hosts.flatMap((h) => (h.role === 'all' ? h.ports : h.ports.slice(1)))];
const taken = [];
for (const p of wanted) if (!(await portFree(p))) taken.push(p);
if (taken.length > 0) fail(`port(s) ${taken.join(', ')} on 127.0.0.1 are in use: stop what uses them, or choose other ports with --base-port`);

say(`starting 3 nats-servers clustered on loopback (clients ${natsPorts.join(', ')}), stores in ${join(dataDir, 'nats-*')}`);
try {
  for (let i = 0; i < 3; i++) {
    servers.push(
      await launchNatsServer({
        port: natsPorts[i]!,
        storeDir: join(dataDir, `nats-${i + 1}`),
        extraArgs: loopbackClusterArgs('converge-local', i, routePorts),
      }),
    );
  }
} catch (err) {
  await Promise.all(servers.map((s) => s.stop()));
  fail(`a nats-server did not start: ${(err as Error).message}`);
}

for (const host of hosts) {
  const dir = join(dataDir, host.name);
  mkdirSync(dir, { recursive: true });
  const proc = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      CONVERGE_NATS_URL: natsUrl,
      CONVERGE_NATS_REPLICAS: '3',
      CONVERGE_DATA_DIR: dir,
      CONVERGE_CLUSTER_HOST_ID: host.name,
      CONVERGE_CLUSTER_ROLE: host.role,
      CONVERGE_CLUSTER_WORKERS: '1',
      CONVERGE_HTTP_COMMAND_PORT: String(host.ports[0]),
      CONVERGE_HTTP_QUERY_PORT: String(host.ports[1]),
      CONVERGE_HTTP_ADMIN_PORT: String(host.ports[2]),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prefixed(host.name, proc);
  const exited = new Promise<void>((done) => proc.once('exit', () => done()));
  children.push({ name: host.name, proc, exited });
  void exited.then(() => {
    if (!stopping) void stop(`${host.name} exited with code ${proc.exitCode}`).then(() => process.exit(1));
  });
}

const url = (port: number) => `http://127.0.0.1:${port}`;
const up = await Promise.all(hosts.map((h) => ready(`${url(h.ports[1])}/ready`, 120_000)));
if (!up.every(Boolean)) {
  await stop(`not ready after 120 s: ${hosts.filter((_, i) => !up[i]).map((h) => h.name).join(', ')}`);
  process.exit(1);
}

const [a, b, replica] = hosts;
say(`ready. NATS cluster converge-local: ${natsUrl}
  host-a   commands ${url(a.ports[0])}  queries ${url(a.ports[1])}  console ${url(a.ports[2])}/
  host-b   commands ${url(b.ports[0])}  queries ${url(b.ports[1])}  console ${url(b.ports[2])}/
  replica  queries ${url(replica.ports[1])}  console ${url(replica.ports[2])}/

  Try: curl -X POST ${url(a.ports[0])}/shops/s1/register -H 'content-type: application/json' -d '{"name":"Kimchi","category":"korean","ownerId":"o1"}'
       curl ${url(replica.ports[1])}/shops/s1
  Each host owns a share of the 64 partitions (leases in the converge-leases KV bucket);
  a command sent to either host runs on its owner. Ctrl-C stops everything.`);

if (duration !== undefined) setTimeout(() => void stop(`--duration ${duration} s elapsed`).then(() => process.exit(0)), duration * 1000);
