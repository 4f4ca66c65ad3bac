import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

/** A NATS user of the embedded server. */
export interface NatsUser {
  readonly user: string;
  readonly password: string;
}

/**
 * The embedded server's users: converge's own, which may do anything, and one for the
 * systems that subscribe to converge's notices, which may only pull from consumers on
 * `NOTIFY` and `REPLAY` and acknowledge what it pulled.
 */
export interface EmbeddedCredentials {
  readonly converge: NatsUser;
  readonly subscriber: NatsUser;
}

/** Where a data directory keeps its embedded server's credentials. */
export function credentialsFile(dataDir: string): string {
  return join(dataDir, 'nats-auth.json');
}

/**
 * The credentials of the embedded server of `dataDir`, generated at its first start and
 * kept `0600` in `nats-auth.json`, so that only the user converge runs as can read them.
 * A file another user could read is made private again, with a warning.
 */
export function loadOrCreateCredentials(dataDir: string, log: Logger): EmbeddedCredentials {
  const file = credentialsFile(dataDir);
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if (mode !== 0o600) {
      chmodSync(file, 0o600);
      log.warn({ file, mode: mode.toString(8) }, `${file} was readable by others (mode ${mode.toString(8)}); made it 0600`);
    }
    return JSON.parse(readFileSync(file, 'utf8')) as EmbeddedCredentials;
  }
  const secret = () => randomBytes(24).toString('base64url');
  const credentials: EmbeddedCredentials = {
    converge: { user: 'converge', password: secret() },
    subscriber: { user: 'subscriber', password: secret() },
  };
  writeFileSync(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  log.info({ file }, `generated credentials for the embedded nats-server in ${file} (0600)`);
  return credentials;
}

/**
 * What the subscriber user may publish: requests to read and pull from consumers of
 * `NOTIFY` and `REPLAY`, and acknowledgements of what it pulled. It may subscribe only to
 * its own inboxes (`subscriberInbox`), where the answers come. It cannot append to `EVENTS`, send a command on
 * `converge.cmd.*`, create or delete consumers, or publish notices.
 */
export const SUBSCRIBER_PUBLISH = [
  '$JS.API.INFO',
  '$JS.API.CONSUMER.INFO.NOTIFY.*',
  '$JS.API.CONSUMER.INFO.REPLAY.*',
  '$JS.API.CONSUMER.MSG.NEXT.NOTIFY.*',
  '$JS.API.CONSUMER.MSG.NEXT.REPLAY.*',
  '$JS.ACK.NOTIFY.>',
  '$JS.ACK.REPLAY.>',
];

/**
 * The inbox prefix a subscriber's connection uses (nats.js `inboxPrefix`). Its user may
 * subscribe only there: with `_INBOX.>` it could read the answers the server and converge's
 * workers send each other.
 */
export function subscriberInbox(user: string): string {
  return `_INBOX_${user}`;
}

/** The `authorization` block of the embedded server's config file. */
export function authorizationBlock(credentials: EmbeddedCredentials): string {
  const quote = (s: string) => JSON.stringify(s);
  return [
    'authorization {',
    '  users = [',
    `    { user: ${quote(credentials.converge.user)}, password: ${quote(credentials.converge.password)} }`,
    `    { user: ${quote(credentials.subscriber.user)}, password: ${quote(credentials.subscriber.password)}, permissions: {`,
    `        publish: { allow: ${JSON.stringify(SUBSCRIBER_PUBLISH)} }`,
    `        subscribe: { allow: [${JSON.stringify(`${subscriberInbox(credentials.subscriber.user)}.>`)}] }`,
    '    } }',
    '  ]',
    '}',
    '',
  ].join('\n');
}
