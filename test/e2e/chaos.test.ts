import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/nats.js';

const CHAOS = join(import.meta.dirname, '../../dist/chaos/main.js');
const INVARIANTS = 6;

// 40 s of load and faults, up to a minute of start-up and restarts on a busy machine, and the end checks.
t.setTimeout(300_000);

t.test('a 40 s chaos run with seed 7 and every fault holds every invariant converge promises', async (t) => {
  const out = join(tempDir(t, 'converge-chaos-test-'), 'chaos.json');
  const proc = spawn(process.execPath, [CHAOS, '--duration', '40', '--seed', '7', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    const result = JSON.parse(readFileSync(out, 'utf8')) as { invariants: Array<{ ok: boolean }>; faults: unknown[] };
    t.ok(result.faults.length > 0, 'faults were injected');
    t.ok(result.invariants.length === INVARIANTS && result.invariants.every((i) => i.ok), 'the JSON result records every invariant as held');
  }
});
