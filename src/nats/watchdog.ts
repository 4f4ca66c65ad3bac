/**
 * Ends the embedded nats-server once the cluster primary that launched it is gone, also
 * after a kill -9 that leaves the primary no chance to clean up. Linux's PR_SET_PDEATHSIG
 * would do this in the kernel, but Node cannot set it, and the server runs in its own
 * process group (so a Ctrl-C reaches converge first and NATS only after the drain), so
 * nothing else ends it.
 *
 * Run detached by the primary: `node watchdog.js <primaryPid> <primaryStartTime> <serverPid> <storeDir>`.
 * It exits by itself as soon as the server is gone, which is how a clean stop ends it.
 */
import { commandLine, isNatsServerOn, processStartTime } from './procfs.js';

const POLL_MS = 500;
/** nats-server closes its store cleanly on SIGTERM; this long is plenty before SIGKILL. */
const TERM_DEADLINE_MS = 10_000;

const [primaryPid, primaryStart, serverPid, storeDir] = process.argv.slice(2);
if (!primaryPid || !primaryStart || !serverPid || !storeDir) {
  process.stderr.write('usage: watchdog.js <primaryPid> <primaryStartTime> <serverPid> <storeDir>\n');
  process.exit(2);
}
const server = Number(serverPid);
// Checking the command line, not just the pid, keeps a reused pid from being signalled.
const serverRuns = () => isNatsServerOn(commandLine(server), storeDir);

const timer = setInterval(() => {
  if (!serverRuns()) process.exit(0);
  if (processStartTime(Number(primaryPid)) === primaryStart) return;
  clearInterval(timer);
  process.kill(server, 'SIGTERM');
  const deadline = Date.now() + TERM_DEADLINE_MS;
  setInterval(() => {
    if (!serverRuns()) process.exit(0);
    if (Date.now() < deadline) return;
    process.kill(server, 'SIGKILL');
    process.exit(0);
  }, 100);
}, POLL_MS);
