#!/usr/bin/env node
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../core/config.js';
import { credentialsFile, subscriberInbox, type EmbeddedCredentials } from '../nats/credentials.js';
import type { VerifyReport } from '../read/verify.js';
import { loadConfig } from './config.js';

const USAGE = `usage: converge [--url <admin URL>] [--token <token>] [--config <dir or file>] <command>
  projections            status, position and lag of every projection
  rebuild <projection>   rebuild a view from position 0 and swap it in without downtime
  parked [projection]    list parked events
  subscribers            list subscribing systems with their pending notices
  subscribers add <name> [--all]      add one (from now on; --all: also the latest notice of everything so far)
  subscribers remove <name>
  republish <name> --since <ISO time> | --since-position <n> | --ids shop:s1,shop:s2
  nats-credentials [--env]   the embedded nats-server's URL and subscriber user, for a subscribing system
                         (--env: as shell exports, for eval "$(converge nats-credentials --env)")
  verify [--sample N]    compare every view (or N random documents from each side) with a fold of the event store;
                         exits 1 when a view differs or a checkpoint does not fit the stream

  --url      the admin API, e.g. http://127.0.0.1:8082 (default: from the configuration)
  --token    a bearer token of http.tokens (default: the first one configured)
  --config   a config directory (like config/, read as npm start reads it) or one JSON file
             with an "http" section; default: ./config when it exists`;

/** Where the admin API is and how to authenticate, from the options or the configuration. */
function target(values: { url?: string; token?: string; config?: string }): { base: string; token: string | undefined; dataDir: string } {
  let http: { host?: string; adminPort?: number; tokens?: string[] } = {};
  let dataDir = 'data';
  const path = values.config ?? (existsSync(join(process.cwd(), 'config', 'default.json')) ? join(process.cwd(), 'config') : undefined);
  if (path !== undefined) {
    if (!existsSync(path)) throw new ConfigError(`--config ${path} does not exist`);
    if (statSync(path).isDirectory()) ({ http, dataDir } = loadConfig({ dir: path }));
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
  return { base, token: values.token ?? http.tokens?.[0], dataDir };
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
  const { base, token, dataDir } = target(values);
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const call = async (method: string, path: string, payload?: object) => {
    const init = payload ? { method, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(payload) } : { method, headers };
    const res = await fetch(base + path, init).catch((err: unknown) => {
      throw new Error(`the admin API at ${base} is not reachable (is converge running?): ${String(err)}`);
    });
    const body = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${String(body.message ?? body.error)}`);
    return body;
  };
  const [command, arg, ...rest] = positionals;
  switch (command) {
    case 'subscribers': {
      if (arg === 'add' && rest[0]) console.log(await call('POST', '/admin/subscribers', { name: rest[0], from: values.all ? 'all' : 'new' }));
      else if (arg === 'remove' && rest[0]) console.log(await call('DELETE', `/admin/subscribers/${encodeURIComponent(rest[0])}`));
      else if (arg === undefined) console.table((await call('GET', '/admin/subscribers')).subscribers);
      else break;
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
      console.log(await call('POST', `/admin/subscribers/${encodeURIComponent(arg)}/republish`, body));
      return 0;
    }
    case 'verify': {
      if (arg !== undefined) break;
      const sample = values.sample === undefined ? undefined : /^[1-9][0-9]*$/.test(values.sample) ? Number(values.sample) : NaN;
      if (Number.isNaN(sample)) break;
      const report = await longPost(base, '/admin/verify', headers, sample === undefined ? {} : { sample });
      printVerify(report);
      return report.ok ? 0 : 1;
    }
    case 'nats-credentials':
      if (arg !== undefined) break;
      return natsCredentials(dataDir, values.env);
    case 'projections': {
      console.table((await call('GET', '/admin/projections')).projections);
      return 0;
    }
    case 'parked': {
      console.table((await call('GET', `/admin/parked${arg ? `?projection=${encodeURIComponent(arg)}` : ''}`)).parked);
      return 0;
    }
    case 'rebuild': {
      if (!arg) break;
      type Status = { name: string; generation: number; state: string; lastRebuildError?: string; rebuild?: { position: number; state: string; error?: string } };
      const find = async () => {
        const body = await call('GET', '/admin/projections');
        const p = (body.projections as Status[]).find((s) => s.name === arg);
        return { p, last: (body.eventStore as { lastPosition: number }).lastPosition };
      };
      const before = (await find()).p;
      if (!before) throw new Error(`no projection named ${arg}`);
      await call('POST', `/admin/projections/${encodeURIComponent(arg)}/rebuild`);
      const started = Date.now();
      let shown = 0;
      for (;;) {
        const { p: now, last } = await find();
        if (now && now.generation > before.generation) {
          console.log(`${arg}: generation ${now.generation} swapped in after ${Date.now() - started} ms`);
          return 0;
        }
        if (now && !now.rebuild && now.lastRebuildError) {
          console.error(`${arg}: the rebuild failed: ${now.lastRebuildError}`);
          return 1;
        }
        if (now?.rebuild && Date.now() - shown >= 1000) {
          shown = Date.now();
          const { position, state, error } = now.rebuild;
          const pct = last > 0 ? Math.floor((100 * position) / last) : 100;
          console.log(`${arg}: ${position}/${last} (${pct}%)${state === 'running' ? '' : ` ${state}: ${error ?? ''}`}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  console.error(USAGE);
  return 2;
}

/**
 * POSTs without a deadline: a verify of a large store takes minutes, longer than
 * `fetch` waits for response headers.
 */
function longPost(base: string, path: string, headers: Record<string, string>, payload: object): Promise<VerifyReport> {
  const body = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          return reject(new Error(`POST ${path} answered ${res.statusCode} with a body that is not JSON`));
        }
        if (res.statusCode !== 200) return reject(new Error(`POST ${path} answered ${res.statusCode}: ${String(parsed.message ?? parsed.error)}`));
        resolve(parsed as unknown as VerifyReport);
      });
    });
    req.on('error', (err) => reject(new Error(`the admin API at ${base} is not reachable (is converge running?): ${String(err)}`)));
    req.end(body);
  });
}

/** One line per projection, then the checkpoint problems and the differences listed. */
function printVerify(report: VerifyReport): void {
  for (const p of report.projections) {
    const state = p.differenceCount === 0 && p.indexDifferences === 0 ? 'ok' : 'DIFFERS';
    console.log(
      `${p.name}: ${state} at position ${p.position} of ${report.streamLastPosition}, ${p.checked} of ${p.documents} documents checked, ` +
        `${p.differenceCount} document differences, ${p.indexDifferences} index differences`,
    );
  }
  console.log(`checkpoints: ${report.checkpoints.ok ? 'ok' : report.checkpoints.problems.join('; ')}`);
  for (const p of report.projections) {
    for (const d of p.differences) console.log(`  ${p.name} ${d.kind} ${JSON.stringify(d.key)}`);
  }
  console.log(report.ok ? 'verify: ok' : 'verify: NOT ok');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // parseArgs throws a TypeError naming the unknown option; every failure is one line.
    console.error(`converge: ${err instanceof Error ? err.message : String(err)}`);
    const usage = err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS');
    if (usage) console.error(USAGE);
    process.exit(usage ? 2 : 1);
  },
);
