import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort, launchNatsServer, loopbackClusterArgs, type NatsServerProcess } from '../../src/nats/server.js';

/** A real 3-node (or `size`-node) NATS cluster on loopback for one test, each node with its own store; stopped at teardown. */
export interface TestNatsCluster {
  /** Every node's client URL, comma-separated, as `nats.url` takes them. */
  readonly url: string;
  readonly urls: readonly string[];
  /** Kills node `i` (`kill -9`); its store stays. */
  kill(i: number): Promise<void>;
  /** Starts node `i` again on its ports and store. */
  restart(i: number): Promise<void>;
}

export async function startTestNatsCluster(t: Test, size = 3): Promise<TestNatsCluster> {
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'converge-nats-cluster-')));
  const launch = (i: number) =>
    launchNatsServer({
      port: ports[i]!,
      storeDir: dirs[i]!,
      extraArgs: loopbackClusterArgs('converge-test', i, routes),
    });
  const servers: Array<NatsServerProcess | undefined> = await Promise.all(ports.map((_, i) => launch(i)));
  t.teardown(async () => {
    await Promise.all(servers.map((s) => s?.stop()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const urls = ports.map((p) => `nats://127.0.0.1:${p}`);
  return {
    url: urls.join(','),
    urls,
    async kill(i) {
      await servers[i]?.kill();
      servers[i] = undefined;
    },
    async restart(i) {
      servers[i] = await launch(i);
    },
  };
}
