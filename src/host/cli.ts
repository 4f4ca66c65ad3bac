#!/usr/bin/env node
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from './config.js';
import { credentialsFile, subscriberInbox, type EmbeddedCredentials } from '../nats/credentials.js';
import type { AddedSubscriber, SubscriberInfo } from '../integration/subscribers.js';
import type { ArchiveStatus, ReactionStatus, ViewsStatus } from '../read/viewsStatus.js';
import type { ParkedReaction } from '../react/reactionStore.js';
import type { VerifyReport } from '../read/verify.js';
import type { ParkedEvent } from '../read/viewStore.js';
import type { PartitionOwners } from '../write/leases.js';
import { adminClient, CliError, type AdminClient } from './adminClient.js';
import { archiveLines, progressLine, reactionLines, statusScreen, subscriberAddedLines, verifyLines } from './cliFormat.js';
import { loadConfig } from './config.js';
import { namedTokens } from '../http/replies.js';

const USAGE = `usage: converge [--url <admin URL>] [--token <token>] [--config <dir or file>] [--json] [--timeout <s>] <command>
  status                 one screen: the event store, each projection's state, position and lag, the notifier,
                         the reactors and processes, parked events and subscribers
  projections            status, position and lag of every projection
  rebuild <projection>   rebuild a view from position 0 and swap it in without downtime; shows position/target
                         and an ETA, waits for the swap (or --timeout), exits 1 if it fails
  parked [projection]    list parked events
  subscribers            list subscribing systems with their pending notices
  subscribers add <name> [--all]      add one (from now on; --all: also the latest notice of everything so far)
  subscribers remove <name>
  republish <name> --since <ISO time> | --since-position <n> | --ids shop:s1,shop:s2
  nats-credentials [--env]   the embedded nats-server's URL and subscriber user, for a subscribing system
                         (--env: as shell exports, for eval "$(converge nats-credentials --env)")
  reactions              the reactors and processes: state, position, lag, parked inputs, open instances,
                         pending timers and the next one due, and which host runs them
  reactions parked | resume <name> | retry <name> <position> <index> | drop <name> <position> <index>
  forget <subject>       forget a data subject (a customer's id in the reference app): delete their key, so
                         every personal field of theirs reads '[forgotten]', record the act, and rebuild the
                         views that may hold personal data
  archive [pause | resume]   live and archived aggregates, the archive's size and the archiver's progress
                         and lag; pause or resume the archiver, wherever it runs
  verify [--sample N]    compare every view (or N random documents from each side) with a fold of the event store;
                         exits 1 when a view differs or a checkpoint does not fit the stream

  --url      the admin API, e.g. http://127.0.0.1:8082 (default: from the configuration)
  --token    a bearer token of http.tokens (default: the first one configured)
  --config   a config directory (like config/, read as npm start reads it) or one JSON file
             with an "http" section; default: ./config when it exists
  --json     print the admin API's answer as JSON instead of a table (status, projections, rebuild,
             parked, subscribers, subscribers add and remove, republish, verify)
  --timeout  seconds to wait: for each request (default 10), for a rebuild to swap in and for a verify
             (default: as long as they take)

  It exits 0 on success, 1 with one line on stderr when it fails (the admin API unreachable,
  a refused token, an unknown projection, a timeout, a failed rebuild or verify), 2 on bad usage.`;

/** Where the admin API is and how to authenticate, from the options or the configuration. */
function target(values: { url?: string; token?: string; config?: string }): { base: string; token: string | undefined; dataDir: string } {
  let http: { host?: string; adminPort?: number; tokens?: string[] } = {};
  let dataDir = 'data';
  const path = values.config;
  // Without --config, read what `npm start` here would: the defaults, `config/` if there is one, and CONVERGE_*.
  // The app's own sections (`orders`, `carts`) are not the CLI's business.
  if (path === undefined) ({ http, dataDir } = loadConfig({ otherSections: 'ignore' }));
  else {
    if (!existsSync(path)) throw new ConfigError(`--config ${path} does not exist`);
    if (statSync(path).isDirectory()) ({ http, dataDir } = loadConfig({ dir: path, otherSections: 'ignore' }));
    else {
      try {
        const file = JSON.parse(readFileSync(path, 'utf8')) as { http?: typeof http; dataDir?: string };
        http = file.http ?? {};
        dataDir = file.dataDir ?? dataDir;
      } catch (err) {
        throw new ConfigError(`--config ${path} is not valid JSON: ${(err as Error).message}`);
      }
    }
  }
  const host = !http.host || http.host === '0.0.0.0' || http.host === '::' ? '127.0.0.1' : http.host;
  const base = (values.url ?? `http://${host}:${http.adminPort ?? 8082}`).replace(/\/+$/, '');
  // The secret of the first token: an entry may be `name:secret` (see `namedTokens`).
  return { base, token: values.token ?? namedTokens(http.tokens ?? [])[0]?.secret, dataDir };
}

/**
 * What a subscribing system needs to reach the embedded nats-server of the converge
 * running on `dataDir`: its URL and the subscriber user, which may only pull from consumers
 * on `NOTIFY` and `REPLAY`. Read from the files converge keeps there, so only a user who
 * may read them (the one converge runs as, or root) gets them.
 */
function natsCredentials(dataDir: string, asEnv: boolean): number {
  const file = credentialsFile(resolve(dataDir));
  if (!existsSync(file)) {
    console.error(`converge: no ${file}: this data directory's embedded nats-server has not run with authentication (start converge with nats.embeddedAuth, the default), or converge uses NATS_URL, whose credentials its operator gives out`);
    return 1;
  }
  const { subscriber } = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedCredentials;
  const urlFile = join(resolve(dataDir), 'run', 'nats.url');
  const url = existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() : undefined;
  if (asEnv) {
    // Single-quoted for a POSIX shell: `eval "$(converge nats-credentials --env)"`.
    const quote = (v: string) => `'${v.replaceAll("'", "'\\''")}'`;
    if (url) console.log(`export NATS_URL=${quote(url)}`);
    console.log(`export NATS_USER=${quote(subscriber.user)}`);
    console.log(`export NATS_PASSWORD=${quote(subscriber.password)}`);
    console.log(`export NATS_INBOX_PREFIX=${quote(subscriberInbox(subscriber.user))}`);
    return 0;
  }
  console.log(`NATS URL   ${url ?? '(converge is not running: no run/nats.url)'}`);
  console.log(`user       ${subscriber.user}`);
  console.log(`password   ${subscriber.password}`);
  console.log(`inbox      ${subscriberInbox(subscriber.user)} (connect with it as the inbox prefix)`);
  console.log('this user may pull from consumers on NOTIFY and REPLAY and acknowledge what it pulled, and nothing else');
  return 0;
}

/**
 * A small client of a host's admin API (the projector's `http.adminPort`), so that
 * operators need not remember URLs. By default it reads the same configuration as `npm start`.
 */
async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      all: { type: 'boolean', default: false },
      since: { type: 'string' },
      'since-position': { type: 'string' },
      ids: { type: 'string' },
      sample: { type: 'string' },
      env: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const positive = (text: string | undefined) => (text === undefined ? undefined : /^[0-9]+(\.[0-9]+)?$/.test(text) && Number(text) > 0 ? Number(text) : NaN);
  const timeoutS = positive(values.timeout);
  if (Number.isNaN(timeoutS)) return usage('--timeout must be a number of seconds above 0');
  const timeoutMs = timeoutS === undefined ? undefined : timeoutS * 1000;
  const { base, token, dataDir } = target(values);
  const admin = adminClient(base, token, timeoutMs);
  const show = (body: unknown, asTable: () => void) => (values.json ? console.log(JSON.stringify(body, null, 2)) : asTable());
  const [command, arg, ...rest] = positionals;
  switch (command) {
    case 'status': {
      if (arg !== undefined) break;
      const [views, parked] = await Promise.all([admin.get<ViewsStatus>('/admin/projections'), admin.get<{ parked: ParkedEvent[] }>('/admin/parked')]);
      // The subscribers live in NATS: while it is away the rest of the screen matters all the more.
      const subscribers = await admin.get<{ subscribers: SubscriberInfo[] }>('/admin/subscribers').then(
        (body) => body.subscribers,
        (err: unknown) => ({ unavailable: err instanceof Error ? err.message : String(err) }),
      );
      const partitions = await admin.get<PartitionOwners>('/admin/partitions').catch((err: unknown) => ({ unavailable: err instanceof Error ? err.message : String(err) }));
      const summary = { views, parked: parked.parked, subscribers, partitions };
      show(summary, () => console.log(statusScreen(summary)));
      return 0;
    }
    case 'subscribers': {
      if (arg === 'add' && rest[0]) {
        const added = await admin.send<AddedSubscriber>('POST', '/admin/subscribers', { name: rest[0], from: values.all ? 'all' : 'new' });
        show(added, () => console.log(subscriberAddedLines(added).join('\n')));
      } else if (arg === 'remove' && rest[0]) {
        const removed = await admin.send('DELETE', `/admin/subscribers/${encodeURIComponent(rest[0])}`);
        show(removed, () => console.log(`removed subscriber ${rest[0]} and its consumers`));
      } else if (arg === undefined) {
        const { subscribers } = await admin.get<{ subscribers: SubscriberInfo[] }>('/admin/subscribers');
        show(subscribers, () => console.table(subscribers));
      } else break;
      return 0;
    }
    case 'republish': {
      if (!arg) break;
      const ids = values.ids?.split(',').map((ref) => ({ aggregate: ref.split(':')[0], id: ref.split(':')[1] }));
      const body =
        values.since !== undefined
          ? { since: values.since }
          : values['since-position'] !== undefined
            ? { sincePosition: Number(values['since-position']) }
            : ids
              ? { ids }
              : undefined;
      if (!body) break;
      const answer = await admin.send('POST', `/admin/subscribers/${encodeURIComponent(arg)}/republish`, body);
      show(answer, () => console.log(answer));
      return 0;
    }
    case 'verify': {
      if (arg !== undefined) break;
      const sample = positive(values.sample);
      if (Number.isNaN(sample) || (sample !== undefined && !Number.isInteger(sample))) break;
      const report = await admin.longPost<VerifyReport>('/admin/verify', sample === undefined ? {} : { sample });
      show(report, () => console.log(verifyLines(report).join('\n')));
      return report.ok ? 0 : 1;
    }
    case 'nats-credentials':
      if (arg !== undefined) break;
      return natsCredentials(dataDir, values.env);
    case 'projections': {
      const { projections } = await admin.get<ViewsStatus>('/admin/projections');
      show(projections, () => console.table(projections));
      return 0;
    }
    case 'parked': {
      const { parked } = await admin.get<{ parked: ParkedEvent[] }>(`/admin/parked${arg ? `?projection=${encodeURIComponent(arg)}` : ''}`);
      show(parked, () => console.table(parked));
      return 0;
    }
    case 'rebuild':
      if (!arg) break;
      return rebuild(admin, arg, { json: values.json, timeoutMs });
    case 'forget': {
      if (!arg || rest.length > 0) break;
      const { forgotten } = await admin.send<{ forgotten: { keyId: string; position: number } }>('POST', '/admin/forget', { subject: arg });
      show(forgotten, () =>
        console.log(`forgot ${arg}: key ${forgotten.keyId} deleted, recorded at position ${forgotten.position}; the views that may hold personal data are being rebuilt (converge projections shows them)`),
      );
      return 0;
    }
    case 'archive': {
      if (rest.length > 0 || (arg !== undefined && arg !== 'pause' && arg !== 'resume')) break;
      const body = arg === undefined ? await admin.get<ArchiveStatus>('/admin/archive') : await admin.send<ArchiveStatus>('POST', `/admin/archive/${arg}`);
      show(body, () => console.log(archiveLines(body).join('\n')));
      return 0;
    }
    case 'reactions': {
      if (arg === undefined) {
        const body = await admin.get<{ holder: string | null; reactions: ReactionStatus[] }>('/admin/reactions');
        show(body, () => console.log(reactionLines(body.reactions, body.holder).join('\n')));
        return 0;
      }
      if (arg === 'parked' && rest.length === 0) {
        const { parked } = await admin.get<{ parked: ParkedReaction[] }>('/admin/reactions/parked');
        show(parked, () => console.table(parked));
        return 0;
      }
      if (arg === 'resume' && rest[0] && rest.length === 1) {
        const resumed = await admin.send<ReactionStatus>('POST', `/admin/reactions/${encodeURIComponent(rest[0])}/resume`);
        show(resumed, () => console.log(`${rest[0]}: ${resumed.state} at position ${resumed.position}`));
        return 0;
      }
      if ((arg === 'retry' || arg === 'drop') && rest.length === 3) {
        const [name, position, eventIndex] = rest as [string, string, string];
        const path = `/admin/reactions/${encodeURIComponent(name)}/parked/${encodeURIComponent(position)}/${encodeURIComponent(eventIndex)}`;
        const answer = await admin.send(arg === 'retry' ? 'POST' : 'DELETE', arg === 'retry' ? `${path}/retry` : path);
        show(answer, () => console.log(`${arg === 'retry' ? 'retried' : 'dropped'} ${name} ${position}:${eventIndex}`));
        return 0;
      }
      break;
    }
  }
  return usage();
}

function usage(reason?: string): number {
  if (reason) console.error(`converge: ${reason}`);
  console.error(USAGE);
  return 2;
}

/**
 * Starts a rebuild and follows it until the fresh generation swaps in: a progress line a
 * second (rewritten in place on a terminal), or nothing but the outcome with `--json`.
 */
async function rebuild(admin: AdminClient, name: string, opts: { json: boolean; timeoutMs: number | undefined }): Promise<number> {
  const find = async () => (await admin.get<ViewsStatus>('/admin/projections')).projections.find((s) => s.name === name);
  const before = await find();
  if (!before) throw new CliError(`no projection named ${name}`);
  await admin.send('POST', `/admin/projections/${encodeURIComponent(name)}/rebuild`);
  const started = Date.now();
  const tty = process.stdout.isTTY && !opts.json;
  let shown = 0;
  const endLine = () => tty && shown > 0 && process.stdout.write('\n');
  for (;;) {
    const now = await find();
    if (now && now.generation > before.generation) {
      endLine();
      const tookMs = Date.now() - started;
      if (opts.json) console.log(JSON.stringify({ projection: name, generation: now.generation, tookMs }));
      else console.log(`${name}: generation ${now.generation} swapped in after ${tookMs} ms`);
      return 0;
    }
    if (now && !now.rebuild && now.lastRebuildError) {
      endLine();
      throw new CliError(`${name}: the rebuild failed: ${now.lastRebuildError}`);
    }
    if (opts.timeoutMs !== undefined && Date.now() - started > opts.timeoutMs) {
      endLine();
      const where = now?.rebuild ? ` at ${now.rebuild.position}/${now.rebuild.target}` : '';
      throw new CliError(`${name}: the rebuild did not swap in within ${opts.timeoutMs / 1000} s${where}; it goes on in the projector`);
    }
    if (!opts.json && now?.rebuild && Date.now() - shown >= 1000) {
      shown = Date.now();
      const line = `${name}: ${progressLine(now.rebuild)}`;
      if (tty) process.stdout.write(`\r${line}\x1b[K`);
      else console.log(line);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // parseArgs throws a TypeError naming the unknown option; every failure is one line.
    console.error(`converge: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    const usage = err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
    if (usage) console.error(USAGE);
    process.exit(usage ? 2 : 1);
  },
);
