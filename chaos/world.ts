import { closeSync, mkdirSync, openSync, readFileSync, renameSync } from 'node:fs';
import { pino } from 'pino';
import { credentialsFile, type EmbeddedCredentials } from '../src/nats/credentials.js';
import { join } from 'node:path';
import { ARCHIVE_AGGREGATE, ARCHIVE_ID } from '../src/core/archive.js';
import { connectNats } from '../src/nats/connection.js';
import { EVENTS, eventSubject } from '../src/store/eventStream.js';
import { freePort, launchNatsServer, type NatsServerProcess } from '../src/nats/server.js';
import { startCluster, type Cluster, type ClusterPorts } from '../load/cluster.js';
import { alive, clusterChildren, processesUnder, signal } from '../load/procs.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The reference app's `orders.acceptTimeoutMs` in the chaos cluster: short, so that the
 * orders the load leaves unaccepted are rejected by their timers within the run, many of
 * them falling due during a fault.
 */
export const ACCEPT_TIMEOUT_MS = 4000;

/**
 * The archive in the chaos cluster (`archive.afterMs`, `archive.intervalMs`, and
 * `archive.maxShare` 1): finished orders and ended process instances leave `EVENTS` two
 * seconds after they finish, and the archiver never rests, so it works all through the run,
 * faults included.
 */
export const ARCHIVE_AFTER_MS = 2000;
export const ARCHIVE_INTERVAL_MS = 200;

/** The subject of the archive's records in `EVENTS`. */
export const ARCHIVE_SUBJECT = eventSubject(ARCHIVE_AGGREGATE, ARCHIVE_ID);

/**
 * Everything the chaos run starts, all under one run directory: the nats-server of each store
 * epoch (a fresh store starts a new epoch), and the converge cluster on one data dir and one
 * set of ports, so clients keep their URLs across restarts.
 *
 * `embedded`: the cluster runs its own nats-server, as `npm start` does, with its store in
 * `data/nats` on a fixed port; the harness starts no server of its own but to check a store
 * that is about to be replaced, and a fresh store is a wiped `data/nats`.
 */
export class World {
  epoch = 0;
  nats: NatsServerProcess | undefined;
  natsPort = 0;
  cluster!: Cluster;
  private ports: ClusterPorts | undefined;
  private readonly logFd: number;
  readonly dataDir: string;
  readonly logFile: string;

  constructor(
    readonly runDir: string,
    private readonly workers: number,
    readonly embedded = false,
  ) {
    this.dataDir = join(runDir, 'data');
    this.logFile = join(runDir, 'cluster.log');
    // Private, as converge would create it itself: its views hold customer data.
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    this.logFd = openSync(this.logFile, 'a');
  }

  storeDir(epoch = this.epoch): string {
    return this.embedded ? join(this.dataDir, 'nats') : join(this.runDir, `nats-${epoch}`);
  }

  get natsUrl(): string {
    return `nats://127.0.0.1:${this.natsPort}`;
  }

  /** Launches the nats-server of the current epoch, on the run's port once it has one; embedded, the cluster does. */
  async startNats(): Promise<void> {
    if (this.embedded) {
      if (this.natsPort === 0) this.natsPort = await freePort();
      return;
    }
    this.nats = await launchNatsServer({ port: this.natsPort, storeDir: this.storeDir() });
    this.natsPort = this.nats.port;
  }

  /** The embedded server's users (embedded mode): the subscriber's for the subscriber, converge's own for the checks. */
  credentials(): EmbeddedCredentials | undefined {
    if (!this.embedded) return undefined;
    return JSON.parse(readFileSync(credentialsFile(this.dataDir), 'utf8')) as EmbeddedCredentials;
  }

  /** With the cluster stopped, makes the current store readable for a last check (embedded: a server of the harness's own). */
  async openStoreForCheck(): Promise<void> {
    if (this.embedded) this.nats = await launchNatsServer({ port: this.natsPort, storeDir: this.storeDir() });
  }

  /** Stops the current store's server for good; embedded, the store is moved out of the data dir, as a wipe would. */
  async retireStore(): Promise<void> {
    await this.nats?.stop();
    this.nats = undefined;
    if (this.embedded) renameSync(this.storeDir(), join(this.runDir, `nats-${this.epoch}-retired`));
  }

  /** The pid of the live nats-server on the current store, found in /proc. */
  natsPid(): number | undefined {
    const dir = this.storeDir();
    return processesUnder(this.runDir).find((p) => p.cmdline.startsWith('nats-server') && p.cmdline.includes(dir))?.pid;
  }

  async startCluster(): Promise<void> {
    this.cluster = await startCluster(this.embedded ? '' : this.natsUrl, this.dataDir, this.workers, {
      outputFd: this.logFd,
      logLevel: 'info',
      readyTimeoutMs: 40_000,
      ...(this.ports ? { ports: this.ports } : {}),
      env: {
        CONVERGE_ORDERS_ACCEPT_TIMEOUT_MS: String(ACCEPT_TIMEOUT_MS),
        CONVERGE_ARCHIVE_AFTER_MS: String(ARCHIVE_AFTER_MS),
        CONVERGE_ARCHIVE_INTERVAL_MS: String(ARCHIVE_INTERVAL_MS),
        // No rest between rounds: the archiver is to be at work whenever a fault strikes.
        CONVERGE_ARCHIVE_MAX_SHARE: '1',
        ...(this.embedded ? { CONVERGE_NATS_EMBEDDED_PORT: String(this.natsPort) } : {}),
      },
    });
    this.ports = this.cluster.ports;
  }

  /** A connection of the harness's own to the current store (embedded: as converge's user). */
  private connect(name: string) {
    const auth = this.credentials()?.converge;
    return connectNats(this.natsUrl, { name, timeoutMs: 5000, log: pino({ level: 'silent' }), ...(auth ? { auth } : {}) });
  }

  /**
   * Calls `onRecord` (once) the moment an archive record is published to `EVENTS`: a plain
   * subscription to the record subject sees the archiver's append as the stream takes it, so
   * the archiver is then between its copy and the removal of what it copied. `stop` ends the
   * watch; call it after acting, so that nothing delays the action.
   */
  async watchArchiveRecords(onRecord: () => void): Promise<{ stop(): Promise<void> }> {
    const link = await this.connect('chaos-archive-watch');
    let fired = false;
    const sub = link.nc.subscribe(ARCHIVE_SUBJECT, {
      callback: () => {
        if (fired) return;
        fired = true;
        onRecord();
      },
    });
    return {
      stop: async () => {
        sub.unsubscribe();
        // The server may just have been killed: a close that waits for it must not hold up the run.
        await Promise.race([link.close().catch(() => undefined), sleep(1000)]);
      },
    };
  }

  /** The position of the last archive record in `EVENTS`; 0 when there is none or the store cannot be read. */
  async lastArchiveRecord(): Promise<number> {
    const link = await this.connect('chaos-archive-read').catch(() => undefined);
    if (!link) return 0;
    try {
      return (await link.jsm.streams.getMessage(EVENTS, { last_by_subj: ARCHIVE_SUBJECT }).catch(() => null))?.seq ?? 0;
    } finally {
      await link.close().catch(() => undefined);
    }
  }

  /** The primary's children by role (`worker 0`, `worker 1`, `projector`). */
  children(): Map<string, number> {
    return clusterChildren(this.cluster.pid);
  }

  /** Waits up to `ms` for the child in `role` to be a live process other than `not`; its pid, or undefined. */
  async respawned(role: string, not: number, ms: number): Promise<number | undefined> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const pid = this.children().get(role);
      if (pid && pid !== not && alive(pid)) return pid;
      await sleep(50);
    }
    return undefined;
  }

  /**
   * Kills the primary with SIGKILL and waits for its children to go (Node cluster workers
   * exit when the primary's IPC channel closes). Those still alive after 5 s are killed too
   * and named in the result.
   */
  async killPrimary(): Promise<{ pid: number; survivors: number[] }> {
    const pid = this.cluster.pid;
    const children = [...this.children().values()];
    signal(pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (alive(pid) || children.some(alive))) await sleep(50);
    const survivors = children.filter(alive);
    for (const child of survivors) signal(child, 'SIGKILL');
    return { pid, survivors };
  }

  /** Kills nats-server at once; `startNats` starts it again on the same store and port (embedded: the primary does). */
  async killNats(): Promise<number | undefined> {
    const pid = this.natsPid();
    if (this.embedded) {
      if (pid) signal(pid, 'SIGKILL');
    } else {
      await this.nats?.kill();
    }
    return pid;
  }

  /** Waits up to `ms` for a live nats-server on the current store other than `not`; its pid, or undefined. */
  async natsRespawned(not: number | undefined, ms: number): Promise<number | undefined> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const pid = this.natsPid();
      if (pid && pid !== not) return pid;
      await sleep(50);
    }
    return undefined;
  }

  /** Waits up to `ms` for no nats-server to run on the current store. */
  async natsGone(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.natsPid() !== undefined) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  /**
   * Kills whatever is left of the run (SIGCONT first, so nothing stays stopped) and
   * closes the cluster log. Returns the processes that were still running.
   */
  async killAll(): Promise<string[]> {
    const left = processesUnder(this.runDir);
    for (const p of left) signal(p.pid, 'SIGCONT');
    for (const p of left) signal(p.pid, 'SIGKILL');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && left.some((p) => alive(p.pid))) await sleep(50);
    return left.map((p) => `${p.pid} ${p.cmdline.slice(0, 120)}`);
  }

  /** Stops the cluster and nats-server gracefully. */
  async stop(): Promise<void> {
    for (const p of processesUnder(this.runDir)) signal(p.pid, 'SIGCONT');
    await this.cluster?.stop().catch(() => undefined);
    await this.nats?.stop().catch(() => undefined);
  }

  closeLog(): void {
    try {
      closeSync(this.logFd);
    } catch {
      // already closed
    }
  }
}
