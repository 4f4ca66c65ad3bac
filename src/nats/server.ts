import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import type { NatsAuth } from './auth.js';
import { authOptions, natsServers } from './connection.js';

/** A `nats-server -js` child process. */
export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the server gracefully (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Kills the server at once, as a crash would. */
  kill(): Promise<void>;
  /** Resolves when the server process has exited, for whatever reason, with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `nats-server` is not on PATH. */
export class NatsServerMissingError extends Error {
  readonly code = 'nats_server_missing';
  constructor() {
    super('nats-server was not found on PATH; install it (Debian/Ubuntu: sudo apt-get install -y nats-server) or set NATS_URL to a running server');
  }
}

/** The embedded server's store cannot be used: not a directory, unwritable, damaged, or open in another server. */
export class NatsStoreError extends Error {
  readonly code = 'nats_store_unusable';
  constructor(
    readonly storeDir: string,
    problem: string,
  ) {
    super(`the NATS store ${storeDir} ${problem}`);
  }
}

/** nats-server exited before it was ready, for a reason other than its store. */
export class NatsServerStartError extends Error {
  readonly code = 'nats_server_failed';
}

/** A port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * The arguments that make node `index` (named `n<index+1>`) of a NATS cluster on loopback,
 * whose nodes listen for routes on `routePorts`.
 */
export function loopbackClusterArgs(clusterName: string, index: number, routePorts: readonly number[]): string[] {
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`);
  return ['-n', `n${index + 1}`, '--cluster_name', clusterName, '--cluster', routes[index]!, '--routes', routes.join(',')];
}

/** The version of the `nats-server` on PATH (`2.9.10`), from `nats-server --version`. */
export async function installedNatsServerVersion(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('nats-server', ['--version']);
    return /v?([0-9]+\.[0-9]+\.[0-9]+\S*)/.exec(stdout)?.[1] ?? stdout.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NatsServerMissingError();
    throw err;
  }
}

/** Whether this nats-server version has `jetstream { sync_interval: always }` (2.10 and later; 2.9 rejects the key). */
export function supportsSyncAlways(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return major > 2 || (major === 2 && minor >= 10);
}

/** The version a NATS server reports to a client, or undefined when it cannot be reached within `timeoutMs`. */
export async function serverVersionAt(url: string, timeoutMs: number, auth?: NatsAuth): Promise<string | undefined> {
  try {
    const nc = await connect({ ...authOptions(auth), servers: natsServers(url), timeout: timeoutMs, maxReconnectAttempts: 0, name: 'converge-primary' });
    const version = nc.info?.version;
    await nc.close();
    return version;
  } catch {
    return undefined;
  }
}

/**
 * Launches `nats-server -js` on 127.0.0.1 with its store in `storeDir` and resolves
 * once it reports ready. `port` 0 picks a free one. A store it cannot use, or one whose
 * streams it could not restore, fails with a `NatsStoreError` naming the directory.
 */
export async function launchNatsServer(opts: {
  port: number;
  storeDir: string;
  readyTimeoutMs?: number;
  /** Own process group, so a Ctrl-C meant for converge does not stop NATS before converge has drained. */
  detached?: boolean;
  /** Where the server writes its pid file (`nats.pid`) and ports file, so a later run can find it. */
  runDir?: string;
  /** A config file with settings that have no command-line flag (`sync_interval`). */
  configFile?: string;
  /**
   * Where the server writes its log, instead of a pipe to this process. A server that may
   * outlive this process needs it: nats-server dies of SIGPIPE when it logs to a pipe whose
   * reader is gone. The previous run's log is kept beside it as `<logFile>.1`.
   */
  logFile?: string;
  /** More command-line arguments, e.g. a cluster's `-n`, `--cluster_name`, `--cluster` and `--routes`. */
  extraArgs?: readonly string[];
}): Promise<NatsServerProcess> {
  const port = opts.port || (await freePort());
  try {
    mkdirSync(opts.storeDir, { recursive: true });
  } catch (err) {
    throw new NatsStoreError(opts.storeDir, `cannot be used: ${describeFsError(err)}`);
  }
  const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', opts.storeDir];
  if (opts.runDir) args.push('-P', join(opts.runDir, 'nats.pid'), '--ports_file_dir', opts.runDir);
  if (opts.configFile) args.push('-c', opts.configFile);
  if (opts.extraArgs) args.push(...opts.extraArgs);
  const child = opts.logFile ? spawnLoggingTo(opts.logFile, args, opts.detached) : spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: opts.detached ?? false });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(force);
  };
  const startLog = await waitReady(child, opts.readyTimeoutMs ?? 10_000, opts.storeDir, opts.logFile);
  const damage = streamRestoreFailure(startLog);
  if (damage) {
    await signal('SIGTERM');
    throw new NatsStoreError(
      opts.storeDir,
      `is damaged: ${damage}; nats-server would run without that stream. Restore the directory from a backup, or move the stream's directory aside to start it empty`,
    );
  }
  return { url: `nats://127.0.0.1:${port}`, port, pid: child.pid!, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL'), exited };
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EEXIST' || e.code === 'ENOTDIR') return 'it, or a directory above it, is a file, not a directory';
  if (e.code === 'EACCES' || e.code === 'EPERM') return 'permission denied';
  if (e.code === 'EROFS') return 'the file system is read-only';
  return e.message;
}

/**
 * nats-server 2.9 logs a warning and carries on without a stream whose metadata it cannot
 * read; converge would then create an empty `EVENTS` in its place. These are those warnings.
 */
const STREAM_NOT_RESTORED =
  /\[WRN\]\s+((?:Missing stream metafile|Error reading metafile|Missing stream checksum file|Error reading Stream metafile checksum|Stream metafile .*checksums do not match|Error decrypting our stream metafile|Error unmarshalling stream metafile|Error recreating stream).*)/;

function streamRestoreFailure(log: string): string | undefined {
  return STREAM_NOT_RESTORED.exec(log)?.[1]?.trim();
}

function spawnLoggingTo(logFile: string, args: string[], detached = false): ChildProcess {
  if (existsSync(logFile)) renameSync(logFile, `${logFile}.1`);
  const fd = openSync(logFile, 'w');
  try {
    return spawn('nats-server', args, { stdio: ['ignore', 'ignore', fd], detached });
  } finally {
    closeSync(fd);
  }
}

/** Resolves with what the server logged up to "Server is ready", read from its stderr pipe or from `logFile`. */
function waitReady(child: ChildProcess, timeoutMs: number, storeDir: string, logFile?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => fail(new NatsServerStartError(`nats-server did not become ready in ${timeoutMs} ms: ${lastLines(log)}`)), timeoutMs);
    const readFile = () => {
      try {
        log = readFileSync(logFile!, 'utf8');
      } catch {
        // Not created yet.
      }
    };
    const poll = logFile
      ? setInterval(() => {
          readFile();
          check();
        }, 20)
      : undefined;
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      check();
    };
    function check(): void {
      if (!log.includes('Server is ready')) return;
      done();
      child.stderr?.resume();
      resolve(log);
    }
    const done = () => {
      clearTimeout(timer);
      clearInterval(poll);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    const fail = (err: Error) => {
      done();
      child.kill('SIGKILL');
      reject(err);
    };
    const onExit = (code: number | null) => {
      if (logFile) readFile();
      fail(startFailure(log, code, storeDir));
    };
    child.stderr?.on('data', onData);
    child.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ENOENT' ? new NatsServerMissingError() : err));
    child.once('exit', onExit);
  });
}

/** Maps the fatal line nats-server printed before it exited to one line an operator can act on. */
function startFailure(log: string, code: number | null, storeDir: string): Error {
  const fatal = /\[FTL\]\s+(.*)/.exec(log)?.[1]?.trim();
  if (!fatal) return new NatsServerStartError(`nats-server exited with code ${code}: ${lastLines(log)}`);
  // "Can't start JetStream: storage directory is not a directory", "could not create storage directory - mkdir ...: read-only file system", ...
  if (/JetStream|stor(e|age)/i.test(fatal)) return new NatsStoreError(storeDir, `cannot be used: nats-server says "${fatal}"`);
  return new NatsServerStartError(`nats-server did not start: ${fatal}`);
}

function lastLines(log: string): string {
  return log.trim().split('\n').slice(-3).join(' | ').slice(-500);
}
