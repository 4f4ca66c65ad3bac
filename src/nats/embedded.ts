import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { installedNatsServerVersion, launchNatsServer, NatsStoreError, supportsSyncAlways, type NatsServerProcess } from './server.js';
import { authorizationBlock, loadOrCreateCredentials, type EmbeddedCredentials } from './credentials.js';
import { commandLine, flagValue, hasProcfs, isNatsServerOn, natsServersOn, processStartTime } from './procfs.js';

/** The nats-server a primary launched for itself, and owns until it exits. */
export interface EmbeddedNats {
  readonly url: string;
  readonly port: number;
  /** The running server's pid; a new one after the server was restarted. */
  readonly pid: number;
  /** `nats-server --version`, e.g. `2.9.10`. */
  readonly version: string;
  /** The users the server accepts, when it runs with authentication. */
  readonly credentials?: EmbeddedCredentials;
  readonly storeDir: string;
  /** Stops the server gracefully and its watchdog, and releases the data directory. */
  stop(): Promise<void>;
  /** Kills the server and its watchdog at once; for a primary exiting without a drain. */
  kill(): void;
}

export interface EmbeddedNatsOptions {
  readonly dataDir: string;
  /** 0: a free port. */
  readonly port: number;
  /** `always`: fsync every commit before the ack, where the server supports it. */
  readonly sync: 'default' | 'always';
  /** Accept only clients with the credentials kept in `<dataDir>/nats-auth.json` (generated at the first start). */
  readonly auth: boolean;
  readonly log: Logger;
  /**
   * The server died and cannot be started again (its store is damaged or taken); the
   * primary should stop. A server that merely crashed is restarted without this.
   */
  readonly onFatal?: (err: Error) => void;
}

/** nats-server closes its store cleanly on SIGTERM; a server still running after this is killed. */
const STOP_DEADLINE_MS = 10_000;
const RESTART_MAX_BACKOFF_MS = 5000;
/** A server that ran this long before it died is restarted at once. */
const STABLE_AFTER_MS = 10_000;
const WATCHDOG = fileURLToPath(new URL('./watchdog.js', import.meta.url));

/**
 * Launches the primary's own nats-server with its store in `<dataDir>/nats`, after making
 * sure no other server has that store open, and starts a watchdog that stops the server
 * if the primary dies without cleaning up. `<dataDir>/run` keeps the primary's pid, the
 * server's pid file, its ports file and its log for the next run to check, and
 * `nats.url` for tools on this machine. A server that
 * dies while converge runs is started again on the same port and store, with backoff.
 */
export async function startEmbeddedNats(opts: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  const { storeDir, runDir } = prepareDirs(opts.dataDir);
  if (!hasProcfs) {
    opts.log.warn('this system has no /proc: converge cannot check for another nats-server on its store, and no watchdog stops the server if converge is killed');
  }
  const version = await installedNatsServerVersion();
  claimDataDir(runDir, storeDir, opts.log);
  const credentials = opts.auth ? loadOrCreateCredentials(dirname(storeDir), opts.log) : undefined;
  let own: OwnServer;
  try {
    own = await launchOwnServer(opts, storeDir, runDir, version, opts.port, credentials);
  } catch (err) {
    rmSync(join(runDir, 'converge.pid'), { force: true });
    throw err;
  }
  const port = own.server.port;
  let stopping = false;
  let restarts = 0;

  const supervise = (current: OwnServer, startedAt: number): void => {
    void current.server.exited.then(async ({ code, signal }) => {
      current.releaseWatchdog();
      if (stopping) return;
      restarts = Date.now() - startedAt > STABLE_AFTER_MS ? 0 : restarts + 1;
      opts.log.error(
        { natsPid: current.server.pid, code, signal, natsLog: own.logFile },
        `embedded nats-server pid ${current.server.pid} exited (${signal ?? `code ${code}`}); starting it again on port ${port}; its log is ${own.logFile}`,
      );
      for (;;) {
        await new Promise((r) => setTimeout(r, restarts === 0 ? 0 : Math.min(RESTART_MAX_BACKOFF_MS, 100 * 2 ** (restarts - 1))));
        if (stopping) return;
        try {
          own = await launchOwnServer(opts, storeDir, runDir, version, port, credentials);
          supervise(own, Date.now());
          return;
        } catch (err) {
          if (err instanceof NatsStoreError) return opts.onFatal?.(err);
          restarts++;
          opts.log.error({ err }, `embedded nats-server did not start again: ${(err as Error).message}`);
        }
      }
    });
  };
  supervise(own, Date.now());
  // For tools on this machine (a subscriber, the CLI) that need the server and were not told where it is.
  writeFileSync(join(runDir, 'nats.url'), `${own.server.url}\n`);

  const release = () => {
    for (const file of ['converge.pid', 'nats.url']) rmSync(join(runDir, file), { force: true });
  };
  return {
    url: own.server.url,
    port,
    get pid() {
      return own.server.pid;
    },
    version,
    ...(credentials ? { credentials } : {}),
    storeDir,
    stop: async () => {
      stopping = true;
      await own.server.stop();
      own.releaseWatchdog();
      rmSync(join(runDir, 'nats.pid'), { force: true });
      release();
    },
    kill: () => {
      stopping = true;
      void own.server.kill();
      own.releaseWatchdog();
      rmSync(join(runDir, 'nats.pid'), { force: true });
      release();
    },
  };
}

interface OwnServer {
  readonly server: NatsServerProcess;
  readonly logFile: string;
  /** Ends the watchdog of this server, if it still runs. */
  releaseWatchdog(): void;
}

async function launchOwnServer(
  opts: EmbeddedNatsOptions,
  storeDir: string,
  runDir: string,
  version: string,
  port: number,
  credentials: EmbeddedCredentials | undefined,
): Promise<OwnServer> {
  await stopLeftoverServer(runDir, storeDir, opts.log);
  refuseForeignServers(storeDir);

  // Settings with no command-line flag, and passwords that must not show in the process list.
  const config: string[] = [];
  const syncAlways = opts.sync === 'always' && supportsSyncAlways(version);
  if (syncAlways) config.push('jetstream {\n  sync_interval: always\n}\n');
  if (credentials) config.push(authorizationBlock(credentials));
  let configFile: string | undefined;
  if (config.length > 0) {
    configFile = join(runDir, 'nats.conf');
    writeFileSync(configFile, config.join('\n'), { mode: 0o600 });
    chmodSync(configFile, 0o600);
  }
  if (opts.sync === 'always' && !syncAlways) {
    opts.log.warn(
      { natsVersion: version },
      `nats.embeddedSync=always is not supported by nats-server ${version} (sync_interval needs 2.10): it writes each commit before it acknowledges it but fsyncs only every 2 minutes, so a crash of converge or of nats-server loses nothing acknowledged, but an OS crash or power loss can lose up to the last 2 minutes of acknowledged commands`,
    );
  }
  const logFile = join(runDir, 'nats-server.log');
  const server = await launchNatsServer({ port, storeDir, detached: true, runDir, configFile, logFile });
  const watchdog = hasProcfs ? startWatchdog(server.pid, storeDir) : undefined;
  const fsync = syncAlways ? 'every commit' : `every 2 minutes (nats-server ${version} default)`;
  opts.log.info(
    { natsPid: server.pid, natsPort: server.port, natsVersion: version, storeDir, fsync, natsLog: logFile, auth: credentials ? 'users converge and subscriber' : 'none' },
    `embedded nats-server ${version} started (pid ${server.pid}, port ${server.port}) at nats://127.0.0.1:${server.port}`,
  );
  return {
    server,
    logFile,
    releaseWatchdog: () => {
      if (watchdog && watchdog.exitCode === null) watchdog.kill('SIGTERM');
    },
  };
}

/** Its own process group, like the server's, so a Ctrl-C meant for converge does not end it. */
function startWatchdog(serverPid: number, storeDir: string): ChildProcess {
  const args = [WATCHDOG, String(process.pid), processStartTime(process.pid) ?? '', String(serverPid), storeDir];
  const watchdog = spawn(process.execPath, args, { detached: true, stdio: 'ignore' });
  watchdog.unref();
  return watchdog;
}

function prepareDirs(dataDir: string): { storeDir: string; runDir: string } {
  const storeDir = join(resolve(dataDir), 'nats');
  try {
    mkdirSync(join(resolve(dataDir), 'run'), { recursive: true });
    // One spelling of the path, so that the command-line checks below match whatever path the data dir was given by.
    const real = realpathSync(resolve(dataDir));
    return { storeDir: join(real, 'nats'), runDir: join(real, 'run') };
  } catch (err) {
    throw new NatsStoreError(storeDir, `cannot be used: ${(err as Error).message}`);
  }
}

/**
 * Records this primary as the owner of the data directory, refusing when a converge
 * that is still alive owns it: its server holds the store, and stopping that server
 * would pull the event store out from under it.
 */
function claimDataDir(runDir: string, storeDir: string, log: Logger): void {
  const ownerFile = join(runDir, 'converge.pid');
  const [pid, startTime] = readText(ownerFile)?.trim().split(' ') ?? [];
  if (pid && Number(pid) !== process.pid) {
    if (startTime && processStartTime(Number(pid)) === startTime) {
      throw new NatsStoreError(
        storeDir,
        `is in use by converge pid ${pid}; stop it first, or give this one its own data directory (CONVERGE_DATA_DIR)`,
      );
    }
    log.warn({ previousPid: Number(pid) }, `the previous converge on this data directory (pid ${pid}) did not shut down cleanly`);
  }
  writeFileSync(ownerFile, `${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
}

/**
 * A server from an earlier run (its primary died, and so did its watchdog) is stopped,
 * not adopted. Adopting would keep a server this run did not configure (its port and
 * sync setting are the earlier run's), whose log converge cannot read and whose exit it
 * can only poll for. SIGTERM makes nats-server flush and close its store, so nothing it
 * acknowledged is lost in the hand-over, and only then does the new server open it.
 */
async function stopLeftoverServer(runDir: string, storeDir: string, log: Logger): Promise<void> {
  const pid = Number(readText(join(runDir, 'nats.pid'))?.trim());
  const running = () => Number.isInteger(pid) && pid > 0 && isNatsServerOn(commandLine(pid), storeDir);
  if (running()) {
    const port = leftoverPort(runDir, pid);
    process.kill(pid, 'SIGTERM');
    let gone = await waitUntil(() => !running(), STOP_DEADLINE_MS);
    if (!gone) {
      process.kill(pid, 'SIGKILL');
      gone = await waitUntil(() => !running(), 2000);
    }
    if (!gone) throw new NatsStoreError(storeDir, `is still open in nats-server pid ${pid} from an earlier run, which did not stop on SIGKILL`);
    log.warn(
      { natsPid: pid, natsPort: port },
      `stopped nats-server pid ${pid} (port ${port ?? 'unknown'}) left running on ${storeDir} by an earlier run, before starting a new one`,
    );
  }
  for (const file of readdirSync(runDir)) if (/^nats-server_[0-9]+\.ports$/.test(file)) rmSync(join(runDir, file), { force: true });
}

function leftoverPort(runDir: string, pid: number): number | undefined {
  const ports = readText(join(runDir, `nats-server_${pid}.ports`));
  try {
    const url = (JSON.parse(ports ?? '') as { nats?: string[] }).nats?.[0];
    if (url) return Number(new URL(url).port);
  } catch {
    // No ports file (it predates this run's layout): the command line still has the port.
  }
  const flag = flagValue(commandLine(pid), '-p', '--port');
  return flag ? Number(flag) : undefined;
}

/** A server on the store that no converge launched from this data directory is not ours to stop. */
function refuseForeignServers(storeDir: string): void {
  const [other] = natsServersOn(storeDir);
  if (!other) return;
  const port = flagValue(other.args, '-p', '--port');
  throw new NatsStoreError(
    storeDir,
    `is open in nats-server pid ${other.pid}, which converge did not start from this data directory; stop it, or use it with NATS_URL=nats://127.0.0.1:${port ?? '<its port>'}`,
  );
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
