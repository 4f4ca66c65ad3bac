import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { launchNatsServer, type NatsServerProcess } from '../src/natsServer.js';
import { startCluster, type Cluster, type ClusterPorts } from '../load/cluster.js';
import { alive, clusterChildren, processesUnder, signal } from './procs.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Everything the chaos run starts, all under one run directory: the nats-server of each store
 * epoch (a fresh store starts a new epoch), and the converge cluster on one data dir and one
 * set of ports, so clients keep their URLs across restarts.
 */
export class World {
  epoch = 0;
  nats!: NatsServerProcess;
  natsPort = 0;
  cluster!: Cluster;
  private ports: ClusterPorts | undefined;
  private readonly logFd: number;
  readonly dataDir: string;
  readonly logFile: string;

  constructor(
    readonly runDir: string,
    private readonly workers: number,
  ) {
    this.dataDir = join(runDir, 'data');
    this.logFile = join(runDir, 'cluster.log');
    mkdirSync(this.dataDir, { recursive: true });
    this.logFd = openSync(this.logFile, 'a');
  }

  storeDir(epoch = this.epoch): string {
    return join(this.runDir, `nats-${epoch}`);
  }

  get natsUrl(): string {
    return `nats://127.0.0.1:${this.natsPort}`;
  }

  /** Launches the nats-server of the current epoch, on the run's port once it has one. */
  async startNats(): Promise<void> {
    this.nats = await launchNatsServer({ port: this.natsPort, storeDir: this.storeDir() });
    this.natsPort = this.nats.port;
  }

  /** The pid of the live nats-server on the current store, found in /proc. */
  natsPid(): number | undefined {
    const dir = this.storeDir();
    return processesUnder(this.runDir).find((p) => p.cmdline.startsWith('nats-server') && p.cmdline.includes(dir))?.pid;
  }

  async startCluster(): Promise<void> {
    this.cluster = await startCluster(this.natsUrl, this.dataDir, this.workers, {
      outputFd: this.logFd,
      logLevel: 'info',
      readyTimeoutMs: 40_000,
      ...(this.ports ? { ports: this.ports } : {}),
    });
    this.ports = this.cluster.ports;
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

  /** Kills nats-server at once; `restart` starts it again on the same store and port. */
  async killNats(): Promise<number | undefined> {
    const pid = this.natsPid();
    await this.nats.kill();
    return pid;
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
