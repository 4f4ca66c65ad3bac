import cluster, { type Worker } from 'node:cluster';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { envName, type Config } from './config.js';
import { startEmbeddedNats, type EmbeddedNats } from '../nats/embedded.js';
import { serverVersionAt } from '../nats/server.js';
import { serveClusterMetrics } from '../observe/cluster.js';
import { replicatedAppendsAreSafe } from '../store/eventStream.js';
import { launchScript, natsAuthOf } from './config.js';
import { listenForWorkers, type Listeners } from './handoff.js';
import { viewsPath } from './paths.js';
import { recoverViews } from '../read/viewsDurability.js';

const MAX_BACKOFF_MS = 5000;
/** How often the primary checks who its parent is: a system call, and well inside any drain deadline. */
const PARENT_POLL_MS = 500;
/** A worker that lived this long is healthy again: its next crash restarts it at once. */
const STABLE_AFTER_MS = 10_000;

/**
 * The cluster primary: launches the embedded nats-server when no URL is configured,
 * forks `workers` workers and the host's projector, restarts a crashed child with
 * backoff, and on SIGTERM/SIGINT lets every child drain before it stops NATS and exits.
 * Started by a package manager's script, it drains as well when what started it is gone.
 */
export async function runPrimary(config: Config, log: Logger): Promise<void> {
  privateDataDir(config.dataDir, log);
  let nats: EmbeddedNats | undefined;
  let url = config.nats.url;
  if (!url) {
    nats = await startEmbeddedNats({
      dataDir: config.dataDir,
      port: config.nats.embeddedPort,
      sync: config.nats.embeddedSync,
      auth: config.nats.embeddedAuth,
      log,
      onFatal: (err) => {
        log.fatal({ err }, `converge: ${err.message}; stopping`);
        exitCode = 1;
        void shutdown('nats-server cannot start');
      },
    });
    url = nats.url;
    process.on('exit', () => nats?.kill());
  }
  // The embedded server's own user for converge's processes; otherwise what the config says.
  const converge = nats?.credentials?.converge;
  const auth = converge ? { user: converge.user, password: converge.password } : natsAuthOf(config);
  const natsVersion = serverVersionAt(url, config.nats.requestTimeoutMs, auth);
  if (config.nats.replicas > 1) {
    const version = await natsVersion;
    if (version !== undefined && !replicatedAppendsAreSafe(version)) {
      log.warn(
        { natsVersion: version },
        `nats-server ${version} can store two appends with the same expected sequence on a replicated stream (nats-server#4320, fixed in 2.9.21), so appends are fenced by their position instead: a retried command is recognised by the actor's recent commits only, not by the store's duplicate window`,
      );
    }
  }
  if (config.http.tokens.length === 0 && config.http.readerTokens.length === 0) {
    log.warn(
      { host: config.http.host },
      `no http.tokens are set, so the command, query and admin APIs on ${config.http.host} are open to anyone who can reach them; set ${envName(['http', 'tokens'])} to require a bearer token`,
    );
  }

  const slots: { worker: Worker; startedAt: number; crashes: number }[] = [];
  let stopping = false;
  let exitCode = 0;

  // Before any child opens them: views an operating-system crash left unflushed are removed and rebuilt.
  recoverViews(viewsPath(config), log);

  // The workers' ports, held here so that a crashed worker's replacement finds its connections waiting.
  const { host, commandPort, queryPort, adminPort } = config.http;
  let listeners: Listeners;
  try {
    listeners = await listenForWorkers(host, { ...(config.cluster.role === 'read-replica' ? {} : { command: commandPort }), query: queryPort }, log);
  } catch (err) {
    log.fatal({ err, host, commandPort, queryPort }, `converge: cannot listen on ${host} (${(err as Error).message}); stopping`);
    await nats?.stop();
    process.exit(1);
  }

  // Slots 0..workers-1 are workers; the last slot is the projector.
  const projectorSlot = config.cluster.workers;
  const fork = (index: number, crashes: number) => {
    const worker = cluster.fork({
      [envName(['nats', 'url'])]: url,
      ...(converge ? { [envName(['nats', 'user'])]: converge.user, [envName(['nats', 'password'])]: converge.password } : {}),
      [envName(['cluster', 'workerIndex'])]: String(index),
      [envName(['cluster', 'workers'])]: String(config.cluster.workers),
      // Resolved before the embedded server gave the children a nats.url.
      [envName(['cluster', 'ownership'])]: config.cluster.ownership,
      [envName(['cluster', 'process'])]: index === projectorSlot ? 'projector' : 'worker',
    });
    if (index !== projectorSlot) listeners.attach(worker);
    slots[index] = { worker, startedAt: Date.now(), crashes };
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      const slot = slots[index]!;
      const stable = Date.now() - slot.startedAt > STABLE_AFTER_MS;
      const next = stable ? 0 : slot.crashes + 1;
      const delay = next === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 100 * 2 ** (next - 1));
      const role = index === projectorSlot ? 'projector' : `worker ${index}`;
      log.warn({ child: role, pid: worker.process.pid, code, signal, restartInMs: delay }, `${role} exited; restarting`);
      setTimeout(() => !stopping && fork(index, next), delay);
    });
  };
  // Any child's `/metrics` asks here for the sum of every child's registry.
  serveClusterMetrics();
  for (let i = 0; i <= projectorSlot; i++) fork(i, 0);
  // Logged when the version is known, without holding up the signal handlers below.
  void natsVersion.then((version) => {
    log.info(
      { workers: config.cluster.workers, role: config.cluster.role, hostId: config.cluster.hostId, nats: url, natsVersion: version ?? 'unknown: not reachable yet' },
      `converge started: commands on http://${host}:${listeners.ports.command ?? commandPort}, queries on http://${host}:${listeners.ports.query}, admin on http://${host}:${adminPort}; nats-server ${version ?? '(version unknown: not reachable yet)'} at ${url}`,
    );
    // The log is JSON for machines; a person starting converge gets the addresses in one plain line.
    const natsNote = nats ? ` (embedded, store ${nats.storeDir}; the URL is also in ${join(resolve(config.dataDir), 'run', 'nats.url')})` : '';
    const commands = config.cluster.role === 'read-replica' ? 'read replica, no commands' : `commands http://${host}:${listeners.ports.command}`;
    process.stderr.write(`converge: ${commands}  queries http://${host}:${listeners.ports.query}  admin http://${host}:${adminPort}  NATS ${url}${natsNote}\n`);
  });

  const shutdown = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, `shutting down (${reason}): draining`);
    // No new connections; the workers finish the requests they have.
    await listeners.close();
    const exits = slots.map(
      ({ worker }) => new Promise<void>((done) => (worker.isDead() ? done() : worker.once('exit', () => done()))),
    );
    for (const { worker } of slots) if (!worker.isDead()) worker.process.kill('SIGTERM');
    const deadline = setTimeout(() => {
      log.warn('workers did not exit in time; killing them');
      for (const { worker } of slots) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, config.cluster.shutdownTimeoutMs + 2000);
    await Promise.all(exits);
    clearTimeout(deadline);
    await nats?.stop();
    log.info('stopped');
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  watchLauncher(launchScript(), (why) => {
    log.warn(`${why}: draining as on SIGTERM, so that no converge process outlives it`);
    void shutdown('launcher gone');
  });
}

/**
 * Calls `onGone` once the process that ran the primary through a package manager's
 * `script` has gone, seen as a change of the primary's parent (an orphan is re-parented
 * to pid 1 or a subreaper). `npm start` execs node, so the SIGTERM or SIGINT that npm
 * forwards to its child reaches the primary itself; this covers what no signal reaches:
 * npm killed by SIGKILL or the OOM killer, or a start script without `exec`, whose
 * `sh -c` dies of the forwarded SIGTERM and passes nothing on (docs/architecture.md,
 * "Running"). Only a change counts: under systemd the parent is pid 1 from the start.
 * Started any other way nothing is watched, since a parent that exits may have meant
 * converge to outlive it (`nohup`, a script that starts it in the background).
 */
function watchLauncher(script: string | undefined, onGone: (why: string) => void): void {
  if (script === undefined) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    const now = process.ppid;
    if (now === parent) return;
    clearInterval(timer);
    onGone(`the process that started converge (pid ${parent}, which ran "${script}") is gone: the primary's parent is now pid ${now}`);
  }, PARENT_POLL_MS);
  // The workers keep the primary alive; the watch alone must not.
  timer.unref();
}

/**
 * The data directory holds the views, the snapshots, the embedded event store and NATS
 * credentials: converge creates it readable by its own user only. One that exists and is
 * open to others is left as it is, with a warning, since an operator may have meant it.
 */
function privateDataDir(dataDir: string, log: Logger): void {
  const dir = resolve(dataDir);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return;
  }
  const mode = statSync(dir).mode & 0o777;
  if (mode & 0o077) {
    log.warn({ dataDir: dir, mode: mode.toString(8) }, `the data directory ${dir} is open to other users (mode ${mode.toString(8)}): its views and snapshots hold customer data; chmod 700 it unless that is meant`);
  }
}
