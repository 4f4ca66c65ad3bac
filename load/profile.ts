/**
 * Sums a V8 CPU profile (`node --cpu-prof`) by where the time went: self time per npm
 * package, or per file of this project, and the top functions. For reading the hot path
 * of a load run:
 *
 *   BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof" npm run load -- commands --spawn
 *   node dist/load/profile.js prof/<worker>.cpuprofile [--top 25]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

/** Where a frame's code lives: a package, a file of ours, node's internals, or V8's own work. */
export function origin(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const ours = /\/dist\/(.+)$/.exec(url);
  return ours ? ours[1]! : url;
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  if (!positionals[0]) throw new Error('usage: node dist/load/profile.js <file.cpuprofile> [--top 25]');
  const profile = JSON.parse(readFileSync(positionals[0], 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byOrigin = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const id of profile.samples) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const where = origin(frame.url, frame.functionName);
    byOrigin.set(where, (byOrigin.get(where) ?? 0) + 1);
    const fn = `${frame.functionName || '(anonymous)'} ${where}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + 1);
  }
  const total = profile.samples.length;
  const print = (title: string, counts: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
      console.log(`  ${((100 * n) / total).toFixed(1).padStart(5)}%  ${k}`);
    }
  };
  print(`self time by origin (${total} samples)`, byOrigin);
  print('self time by function', byFunction);
}

// Run as a program, not when imported (its tests import `origin`).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
