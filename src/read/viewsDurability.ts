import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import type { Logger } from 'pino';

/**
 * The views are committed without waiting for the disk (docs/architecture.md, "Views
 * without a flush"). A process that dies loses nothing, since its commits are in the
 * operating system's page cache. An operating-system crash may lose the last commits, or
 * leave LMDB's file torn. The views are derived, so the recovery is a rebuild: a marker
 * beside them, flushed, records the boot they were written under and whether they were
 * closed cleanly, flushed. Views left unclean by an earlier boot are removed before anything
 * opens them, and rebuilt from the event store.
 */

/** The marker's path for a views directory. */
export function markerOf(viewsDir: string): string {
  return `${viewsDir}.state.json`;
}

/** This boot of the operating system, where Linux tells it; undefined elsewhere (commits are then flushed). */
export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

interface Marker {
  readonly bootId: string;
  readonly clean: boolean;
}

function readMarker(viewsDir: string): Marker | undefined {
  try {
    return JSON.parse(readFileSync(markerOf(viewsDir), 'utf8')) as Marker;
  } catch {
    return undefined;
  }
}

function writeMarker(viewsDir: string, marker: Marker): void {
  const fd = openSync(markerOf(viewsDir), 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(marker));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes views that were being written, unflushed, when the machine went down (their
 * marker names another boot and is not clean). Call before any process opens them: the
 * primary before it forks, `createConverge` before it opens them. Answers whether it did.
 */
export function recoverViews(viewsDir: string, log: Logger, current = bootId()): boolean {
  const marker = readMarker(viewsDir);
  if (!marker || marker.clean || current === undefined || marker.bootId === current) return false;
  log.warn({ views: viewsDir, writtenUnder: marker.bootId, now: current }, 'the machine restarted while the views were written without a flush: they are removed and rebuilt from the event store');
  rmSync(viewsDir, { recursive: true, force: true });
  rmSync(markerOf(viewsDir), { force: true });
  return true;
}

/** Records that the views are being written without a flush under this boot (before opening them). */
export function markWriting(viewsDir: string, current: string): void {
  writeMarker(viewsDir, { bootId: current, clean: false });
}

/** Records that the views were flushed and closed. */
export function markClean(viewsDir: string, current: string): void {
  writeMarker(viewsDir, { bootId: current, clean: true });
}
