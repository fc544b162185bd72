import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { TraceContext } from '../observability/instrumentation';
import { libraryObject, OUTBOX_TABLE } from '../schema/event-sourcing-schema';

/**
 * The outbox: one row per (event, async reactor), written in the event's transaction. A row is
 * deleted once its job is in the queue, or, with `keepOutboxUntil: 'completed'`, once the job has
 * completed. Rows that outlive the normal after-commit hand-over (a crash between COMMIT and
 * enqueue, Redis down) are what the relay delivers; a relay claims them for a while
 * (`claimed_until`) rather than keeping them locked in a transaction.
 */
export interface OutboxRow {
  id: number;
  eventsTable: string;
  eventId: number;
  position: number;
  eventType: string;
  reactor: string;
  /** The row's key, part of the job id: see {@link jobKeySql}. */
  jobKey: string;
  /** The trace context of the span that wrote the event, for the job's data (hand-over only). */
  trace?: TraceContext;
}

/**
 * The SQL of an outbox row's job key: a hash of the events table, the event's id, the id of the
 * transaction that wrote it and the reactor. No two rows ever share one (a transaction id is never
 * reused by a PostgreSQL cluster, whatever happens to event ids and positions), and anyone who
 * reads the event row can compute it again ({@link jobKeyOf}), so its jobs are found in the queue
 * by id.
 */
export function jobKeySql(table: string, eventId: string, txId: string, reactor: string): string {
  return `md5(${table} || '.' || ${eventId} || '.' || ${txId} || '.' || ${reactor})::uuid`;
}

/** The job key {@link jobKeySql} gives the outbox row of an event row for a reactor. */
export function jobKeyOf(event: { table: string; id: number | string; txId: number | string }, reactor: string): string {
  const hex = createHash('md5').update(`${event.table}.${event.id}.${event.txId}.${reactor}`, 'utf8').digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
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
    `INSERT INTO ${outbox(manager)} (events_table, event_id, event_position, event_type, reactor, job_key)
     SELECT $1::text, $2::bigint, $3, $4, reactor, ${jobKeySql('$1::text', '$2::bigint::text', 'txid_current()::text', 'reactor')} FROM unnest($5::text[]) AS reactor
     RETURNING ${OUTBOX_RETURNING}`,
    [event.table, event.id, event.position, event.type, reactors],
  );
}

export async function deleteOutboxRows(manager: EntityManager, ids: readonly number[]): Promise<void> {
  if (ids.length > 0) await manager.query(`DELETE FROM ${outbox(manager)} WHERE id = ANY($1::bigint[])`, [ids]);
}

/**
 * Notes that the rows' jobs are in the queue (now), and lets go of any claim on them; the relay
 * looks at them again after `recheckAfter`.
 */
export async function markOutboxRowsEnqueued(manager: EntityManager, ids: readonly number[]): Promise<void> {
  if (ids.length > 0) {
    await manager.query(`UPDATE ${outbox(manager)} SET enqueued_at = clock_timestamp(), claimed_until = NULL WHERE id = ANY($1::bigint[])`, [ids]);
  }
}

/** After a job completed: its row is done with. */
export async function deleteOutboxRowByJobKey(manager: EntityManager, jobKey: string): Promise<void> {
  await manager.query(`DELETE FROM ${outbox(manager)} WHERE job_key = $1::uuid`, [jobKey]);
}

/**
 * Rows a relay took for itself until `until`: no other relay takes them before then, whatever
 * happens to this one. Nothing stays locked: the claim is a column, committed at once.
 */
export interface OutboxClaim {
  rows: OutboxRow[];
  /** `claimed_until` as PostgreSQL wrote it, to release exactly this claim and no later one. */
  until: string | undefined;
}

/** The rows no relay holds: never claimed, released, or whose claim expired (its relay died or hung). */
const UNCLAIMED = `(claimed_until IS NULL OR claimed_until < clock_timestamp())`;

/**
 * Claims, in one statement that commits at once, up to `limit` rows matching `where` that no
 * other relay holds: `FOR UPDATE SKIP LOCKED` keeps two relays claiming at the same moment from
 * taking the same row, and `claimed_until` keeps the others off it for `leaseMs` afterwards.
 */
async function claim(manager: EntityManager, where: string, order: string, params: unknown[], limit: number, leaseMs: number): Promise<OutboxClaim> {
  const table = outbox(manager);
  const n = params.length;
  // The statement's own timestamp, not clock_timestamp(): one value for the whole batch, which is
  // what `until` names.
  // TypeORM answers an UPDATE with [rows, count].
  const [rows]: [(OutboxRow & { until: string })[], number] = await manager.query(
    `UPDATE ${table} SET claimed_until = statement_timestamp() + make_interval(secs => $${n + 2}::float8 / 1000)
     FROM (SELECT id AS claimed_id FROM ${table} WHERE ${where} AND ${UNCLAIMED} ORDER BY ${order} LIMIT $${n + 1} FOR UPDATE SKIP LOCKED) AS claimable
     WHERE id = claimed_id
     RETURNING ${OUTBOX_RETURNING}, claimed_until::text AS until`,
    [...params, limit, leaseMs],
  );
  const until = rows[0]?.until;
  return { rows: rows.map(({ until: _until, ...row }) => row).sort((a, b) => a.id - b.id), until };
}

/**
 * Claims up to `limit` rows not yet in the queue, older than `graceMs` (the after-commit
 * hand-over is still at them before that), for `leaseMs`. Hand the rows to the queue outside any
 * transaction, then delete or mark them; on failure, {@link releaseOutboxClaim}.
 */
export async function claimOutboxRows(manager: EntityManager, options: { graceMs: number; limit: number; leaseMs: number }): Promise<OutboxClaim> {
  return claim(
    manager,
    `enqueued_at IS NULL AND created_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)`,
    'id',
    [options.graceMs],
    options.limit,
    options.leaseMs,
  );
}

/** Claims up to `limit` rows whose jobs were enqueued more than `ageMs` ago, to check they still exist. */
export async function claimEnqueuedOutboxRows(manager: EntityManager, options: { ageMs: number; limit: number; leaseMs: number }): Promise<OutboxClaim> {
  return claim(
    manager,
    `enqueued_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000)`,
    'enqueued_at',
    [options.ageMs],
    options.limit,
    options.leaseMs,
  );
}

/**
 * Gives claimed rows back at once (the queue did not take them), so that the next relay to look
 * retries them without waiting for the lease. Rows another relay claimed since (this claim
 * expired) are left alone.
 */
export async function releaseOutboxClaim(manager: EntityManager, claimed: OutboxClaim): Promise<void> {
  if (claimed.rows.length === 0 || claimed.until === undefined) return;
  await manager.query(`UPDATE ${outbox(manager)} SET claimed_until = NULL WHERE id = ANY($1::bigint[]) AND claimed_until = $2::timestamptz`, [
    claimed.rows.map((row) => row.id),
    claimed.until,
  ]);
}

/** Rows whose jobs are not in the queue yet, claimed by a relay or not. */
export async function countOutboxRows(manager: EntityManager): Promise<number> {
  const [{ count }] = await manager.query(`SELECT count(*)::int AS count FROM ${outbox(manager)} WHERE enqueued_at IS NULL`);
  return count;
}
