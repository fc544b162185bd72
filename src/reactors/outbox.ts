import type { EntityManager } from 'typeorm';
import { OUTBOX_TABLE } from '../schema/event-sourcing-schema';

/**
 * The outbox: one row per (event, async reactor), written in the event's transaction and deleted
 * once the job is in the queue. Rows that outlive the normal after-commit hand-over (a crash
 * between COMMIT and enqueue, Redis down) are what the relay delivers.
 */
export interface OutboxRow {
  id: number;
  eventsTable: string;
  eventId: number;
  position: number;
  eventType: string;
  reactor: string;
}

const columns = `id::float8 AS id, events_table AS "eventsTable", event_id::float8 AS "eventId",
  event_position::float8 AS position, event_type AS "eventType", reactor`;

export async function insertOutboxRows(
  manager: EntityManager,
  event: { table: string; id: number; position: number; type: string },
  reactors: readonly string[],
): Promise<OutboxRow[]> {
  return manager.query(
    `INSERT INTO ${OUTBOX_TABLE} (events_table, event_id, event_position, event_type, reactor)
     SELECT $1, $2, $3, $4, reactor FROM unnest($5::text[]) AS reactor
     RETURNING ${columns}`,
    [event.table, event.id, event.position, event.type, reactors],
  );
}

export async function deleteOutboxRows(manager: EntityManager, ids: readonly number[]): Promise<void> {
  if (ids.length > 0) await manager.query(`DELETE FROM ${OUTBOX_TABLE} WHERE id = ANY($1::bigint[])`, [ids]);
}

/**
 * Locks up to `limit` rows older than `graceMs`, skipping rows another relay holds. Call inside
 * a transaction; delete the rows before it commits.
 */
export async function claimOutboxRows(manager: EntityManager, graceMs: number, limit: number): Promise<OutboxRow[]> {
  return manager.query(
    `SELECT ${columns} FROM ${OUTBOX_TABLE}
     WHERE created_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)
     ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [graceMs, limit],
  );
}

export async function countOutboxRows(manager: EntityManager): Promise<number> {
  const [{ count }] = await manager.query(`SELECT count(*)::int AS count FROM ${OUTBOX_TABLE}`);
  return count;
}
