import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/nats.js';

const CHAOS = join(import.meta.dirname, '../../dist/chaos/main.js');
const INVARIANTS = 10;

// Runs of 40 s and 60 s of load and faults, up to a minute of start-ups and restarts each on a busy machine, and the end checks.
t.setTimeout(600_000);

const runs = [
  { name: 'a 40 s chaos run with seed 7 and every fault holds every invariant converge promises', args: ['--duration', '40', '--seed', '7'], faults: undefined },
  {
    // 60 s, and a schedule with the quick fault first: a primary kill and a fresh store each
    // restart the whole cluster, which took up to 18 s while the rest of the suite ran, and a
    // fault that would start in the last 8 s is skipped.
    name: 'a 60 s chaos run on the embedded nats-server (killed, its primary killed, its store wiped) holds every invariant, with nothing left running',
    args: ['--duration', '60', '--seed', '27', '--embedded', '--faults', 'primary,nats,fresh-store'],
    faults: ['primary', 'nats', 'fresh-store'],
  },
];

for (const run of runs) {
  t.test(run.name, async (t) => {
    const out = join(tempDir(t, 'converge-chaos-test-'), 'chaos.json');
    const proc = spawn(process.execPath, [CHAOS, ...run.args, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    t.teardown(() => void (proc.exitCode === null && proc.signalCode === null && proc.kill('SIGINT')));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));

    const verdicts = stdout.split('\n').filter((line) => /^(PASS|FAIL) /.test(line));
    t.equal(verdicts.length, INVARIANTS, `the run printed one line per invariant:\n${stdout.slice(-4000)}\n${stderr.slice(-2000)}`);
    for (const line of verdicts) t.match(line, /^PASS /, line);
    t.equal(code, 0, 'the run exits 0');
    t.ok(existsSync(out), 'the run wrote its JSON result');
    if (existsSync(out)) {
      const result = JSON.parse(readFileSync(out, 'utf8')) as { invariants: Array<{ ok: boolean }>; faults: Array<{ fault: string }> };
      t.ok(result.faults.length > 0, 'faults were injected');
      if (run.faults) t.same([...new Set(result.faults.map((f) => f.fault))].sort(), [...run.faults].sort(), `each of ${run.faults.join(', ')} was injected`);
      t.ok(result.invariants.length === INVARIANTS && result.invariants.every((i) => i.ok), 'the JSON result records every invariant as held');
    }
  });
}
