import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';

/** A `nats-server -js` child process. */
export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  /** Stops the server gracefully (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Kills the server at once, as a crash would. */
  kill(): Promise<void>;
}

/** `nats-server` is not on PATH. */
export class NatsServerMissingError extends Error {
  readonly code = 'nats_server_missing';
  constructor() {
    super('nats-server was not found on PATH; install it (Debian/Ubuntu: sudo apt-get install -y nats-server) or set NATS_URL to a running server');
  }
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
 * Launches `nats-server -js` on 127.0.0.1 with its store in `storeDir` and resolves
 * once it reports ready. `port` 0 picks a free one.
 */
export async function launchNatsServer(opts: {
  port: number;
  storeDir: string;
  readyTimeoutMs?: number;
  /** Own process group, so a Ctrl-C meant for converge does not stop NATS before converge has drained. */
  detached?: boolean;
}): Promise<NatsServerProcess> {
  const port = opts.port || (await freePort());
  mkdirSync(opts.storeDir, { recursive: true });
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', opts.storeDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: opts.detached ?? false,
  });
  await waitReady(child, opts.readyTimeoutMs ?? 10_000);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(force);
  };
  return { url: `nats://127.0.0.1:${port}`, port, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL') };
}

function waitReady(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => fail(new Error(`nats-server did not become ready in ${timeoutMs} ms: ${log.slice(-500)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Server is ready')) {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        child.stderr?.resume();
        resolve();
      }
    };
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.stderr?.on('data', onData);
    child.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ENOENT' ? new NatsServerMissingError() : err));
    child.once('exit', (code) => fail(new Error(`nats-server exited with code ${code}: ${log.slice(-500)}`)));
  });
}
