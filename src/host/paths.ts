import { join, resolve } from 'node:path';
import type { Config } from './config.js';

/** Where a host keeps its views. */
export function viewsPath(config: Pick<Config, 'dataDir'>): string {
  return join(resolve(config.dataDir), 'views');
}

/** Where a host keeps its aggregate snapshots. */
export function snapshotsPath(config: Pick<Config, 'dataDir'>): string {
  return join(resolve(config.dataDir), 'snapshots');
}
