/**
 * `SYNCHRONOUS_COMMIT`, for both baselines: `on` (PostgreSQL's default) or `off`. `off`
 * acknowledges a commit before its WAL is flushed, as nats-server (with its defaults)
 * acknowledges a publish before its file store syncs to disk: both survive a crash of the
 * process, and both may lose the last writes if the machine itself goes down.
 */
export function synchronousCommit(env: NodeJS.ProcessEnv): 'on' | 'off' {
  const value = env['SYNCHRONOUS_COMMIT'] || 'on';
  if (value !== 'on' && value !== 'off') throw new Error('SYNCHRONOUS_COMMIT must be on or off');
  return value;
}
