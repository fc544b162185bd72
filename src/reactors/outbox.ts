import type { EntityManager } from 'typeorm';
import { libraryObject, OUTBOX_TABLE } from '../schema/event-sourcing-schema';

/**
 * The outbox: one row per (event, async reactor), written in the event's transaction. A row is
 * deleted once its job is in the queue, or, with `keepOutboxUntil: 'completed'`, once the job has
 * completed. Rows that outlive the normal after-commit hand-over (a crash between COMMIT and
 * enqueue, Redis down) are what the relay delivers.
 */
export interface OutboxRow {
  id: number;
  eventsTable: string;
  eventId: number;
  position: number;
  eventType: string;
  reactor: string;
  /** A random key of this row, part of the job id: no two rows ever share a job id. */
  jobKey: string;
}

/** An outbox row's columns as `OutboxRow` fields, for RETURNING and SELECT lists. */
export const OUTBOX_RETURNING = `id::float8 AS id, events_table AS "eventsTable", event_id::float8 AS "eventId",
  event_position::float8 AS position, event_type AS "eventType", reactor, job_key::text AS "jobKey"`;

/** The outbox of the manager's DataSource, in its schema. */
function outbox(manager: EntityManager): string {
  return libraryObject(manager.connection.driver, OUTBOX_TABLE);
}

export async function insertOutboxRows(
  manager: EntityManager,
  event: { table: string; id: number; position: number; type: string },
  reactors: readonly string[],
): Promise<OutboxRow[]> {
  return manager.query(
    `INSERT INTO ${outbox(manager)} (events_table, event_id, event_position, event_type, reactor)
     SELECT $1, $2, $3, $4, reactor FROM unnest($5::text[]) AS reactor
     RETURNING ${OUTBOX_RETURNING}`,
    [event.table, event.id, event.position, event.type, reactors],
  );
}

export async function deleteOutboxRows(manager: EntityManager, ids: readonly number[]): Promise<void> {
  if (ids.length > 0) await manager.query(`DELETE FROM ${outbox(manager)} WHERE id = ANY($1::bigint[])`, [ids]);
}

/** Notes that the rows' jobs are in the queue (now); the relay looks at them again later. */
export async function markOutboxRowsEnqueued(manager: EntityManager, ids: readonly number[]): Promise<void> {
  if (ids.length > 0) await manager.query(`UPDATE ${outbox(manager)} SET enqueued_at = clock_timestamp() WHERE id = ANY($1::bigint[])`, [ids]);
}

/** After a job completed: its row is done with. */
export async function deleteOutboxRowByJobKey(manager: EntityManager, jobKey: string): Promise<void> {
  await manager.query(`DELETE FROM ${outbox(manager)} WHERE job_key = $1::uuid`, [jobKey]);
}

/**
 * Locks up to `limit` rows not yet in the queue and older than `graceMs`, skipping rows another
 * relay holds. Call inside a transaction; delete or mark the rows before it commits.
 */
export async function claimOutboxRows(manager: EntityManager, graceMs: number, limit: number): Promise<OutboxRow[]> {
  return manager.query(
    `SELECT ${OUTBOX_RETURNING} FROM ${outbox(manager)}
     WHERE enqueued_at IS NULL AND created_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)
     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [graceMs, limit],
  );
}

/** Locks up to `limit` rows whose jobs were enqueued more than `ageMs` ago, to check they still exist. */
export async function claimEnqueuedOutboxRows(manager: EntityManager, ageMs: number, limit: number): Promise<OutboxRow[]> {
  return manager.query(
    `SELECT ${OUTBOX_RETURNING} FROM ${outbox(manager)}
     WHERE enqueued_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)
     ORDER BY enqueued_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [ageMs, limit],
  );
}

/** Rows whose jobs are not in the queue yet. */
export async function countOutboxRows(manager: EntityManager): Promise<number> {
  const [{ count }] = await manager.query(`SELECT count(*)::int AS count FROM ${outbox(manager)} WHERE enqueued_at IS NULL`);
  return count;
}
