import type { DataSource, QueryRunner } from 'typeorm';

/**
 * A connection of its own for a session advisory lock: a projection's runner or rebuild holds
 * one for as long as it works, and the lock goes when the session ends or its connection dies.
 */

/** Connects a query runner of its own, or releases it and throws. */
export async function openSession(dataSource: DataSource): Promise<QueryRunner> {
  const queryRunner = dataSource.createQueryRunner();
  try {
    await queryRunner.connect();
  } catch (error) {
    await queryRunner.release().catch(() => undefined);
    throw error;
  }
  return queryRunner;
}

/**
 * The name of one of a projection's locks: per DataSource schema, as the checkpoint table is,
 * and per kind, so that a rebuild and a runner of one projection do not exclude each other.
 */
export function projectionLockName(dataSource: DataSource, kind: 'projection' | 'projection-rebuild', name: string): string {
  const schema = (dataSource.driver.options as { schema?: string }).schema ?? '';
  return `typeorm-es.${kind}:${schema}:${name}`;
}

/**
 * Takes the session advisory lock of `name` if no session holds it. The key is 64 bits of a hash
 * of the name, so two names practically never share one.
 */
export async function tryAdvisoryLock(queryRunner: QueryRunner, name: string): Promise<boolean> {
  const [row]: { locked: boolean }[] = await queryRunner.query(`SELECT pg_try_advisory_lock(('x' || substr(md5($1), 1, 16))::bit(64)::bigint) AS "locked"`, [name]);
  return row.locked;
}

/**
 * Ends a session: lets its advisory locks go when it holds some (explicitly, so another session
 * takes over now rather than once the server notices the connection end), then gives the
 * connection back to the pool, or ends it when `discard` says so or the unlock failed, so that
 * nothing of the session (a lock, a LISTEN) outlives it in the pool.
 */
export async function closeSession(
  queryRunner: QueryRunner,
  options: { unlock: boolean; discard: boolean; reason: string; beforeRelease?: () => void },
): Promise<void> {
  const unlocked = !options.unlock || (await queryRunner.query('SELECT pg_advisory_unlock_all()').then(() => true, () => false));
  options.beforeRelease?.();
  const release = (queryRunner as unknown as { releasePostgresConnection?: (error: unknown) => Promise<void> }).releasePostgresConnection;
  if ((options.discard || !unlocked) && release) await release.call(queryRunner, new Error(options.reason)).catch(() => undefined);
  else await queryRunner.release().catch(() => undefined);
}
