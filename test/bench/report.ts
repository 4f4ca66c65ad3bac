import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A percentile (nearest rank) of a list of numbers; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Registers `shops` shops `bench-<n>` through `base`'s command API, each with menu item `m1`,
 * 50 at a time; with `open`, opens each to take orders.
 */
export async function seedShops(base: string, shops: number, opts: { open?: boolean } = {}): Promise<void> {
  const post = (path: string, body: object) =>
    fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.arrayBuffer());
  for (let i = 0; i < shops; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, shops - i) }, async (_, j) => {
        const id = `bench-${i + j}`;
        await post(`/shops/${id}/register`, { name: id, category: 'korean', ownerId: 'o' });
        await post(`/shops/${id}/add-menu-item`, { menuId: 'm1', name: 'Kimbap', price: 4000 });
        if (opts.open) await post(`/shops/${id}/open`, {});
      }),
    );
  }
}

/** Prints a two-column table to stdout. */
export function printTable(title: string, rows: ReadonlyArray<readonly [string, string]>): void {
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(`\n${title}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
}

/** Writes a benchmark's raw figures to `test/bench/results/<name>.json` (not committed). */
export function writeResult(name: string, data: object): void {
  const dir = join(import.meta.dirname, '../../../test/bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ at: new Date().toISOString(), ...data }, null, 2));
}
