import pg from 'pg';
import t from 'tap';

/** Where the baseline tests find PostgreSQL: `PGHOST`/`PGPORT`/`PGUSER`, or the local server with trust auth. */
export const postgres = {
  host: process.env['PGHOST'] ?? '127.0.0.1',
  port: Number(process.env['PGPORT'] ?? 5432),
  user: process.env['PGUSER'] ?? 'postgres',
};

/**
 * Runs a baseline suite when PostgreSQL answers. Without it the file ends with one line
 * saying so, unless `CONVERGE_TEST_REQUIRE_POSTGRES=1` (as `.ci/run` sets): then a missing
 * server is a failure, not a skip.
 */
export async function withPostgres(suite: () => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ ...postgres, database: 'postgres', connectionTimeoutMillis: 3000 });
  const reason = await client.connect().then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  await client.end().catch(() => undefined);
  if (reason === undefined) {
    await suite();
    return;
  }
  const line = `PostgreSQL is not reachable at ${postgres.host}:${postgres.port} as ${postgres.user} (${reason}); the baseline tests need it`;
  if (process.env['CONVERGE_TEST_REQUIRE_POSTGRES'] === '1') t.fail(line);
  else t.plan(0, `skipped: ${line}`);
}
