import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { launchNatsServer, type NatsServerProcess } from '../../src/nats/server.js';

/** A real nats-server for one test: its own port and temp store, stopped at teardown. */
export interface TestNats {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops the server (SIGKILL when `crash`); the store stays. */
  stop(crash?: boolean): Promise<void>;
  /** Starts it again on the same port with the same store. */
  restart(): Promise<void>;
  /** Sends a signal to the running server: `SIGSTOP` pauses it, as a frozen broker would be, and `SIGCONT` resumes it. */
  signal(sig: NodeJS.Signals): void;
}

export async function startTestNats(t: Test): Promise<TestNats> {
  const storeDir = mkdtempSync(join(tmpdir(), 'converge-nats-'));
  let server: NatsServerProcess | undefined = await launchNatsServer({ port: 0, storeDir });
  const port = server.port;
  t.teardown(async () => {
    // A test that paused the server and failed before resuming it must not leave it frozen.
    if (server) process.kill(server.pid, 'SIGCONT');
    await server?.stop();
    rmSync(storeDir, { recursive: true, force: true });
  });
  return {
    url: server.url,
    port,
    storeDir,
    async stop(crash = false) {
      await (crash ? server?.kill() : server?.stop());
      server = undefined;
    },
    async restart() {
      server = await launchNatsServer({ port, storeDir });
    },
    signal(sig) {
      if (server) process.kill(server.pid, sig);
    },
  };
}

/** A temp directory removed at teardown. */
export function tempDir(t: Test, prefix = 'converge-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
