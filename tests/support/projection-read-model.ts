import type { DataSource, EntityManager } from 'typeorm';
// Relative, not the package name: the projection child process (tests/processes) compiles this
// file too, and must load the same src/ as its caller.
import type { AggregateEvent } from '../../src';

/**
 * The read model of the projection tests: one row per handled event, keyed by (table, id), so a
 * second handling of an event fails its batch instead of passing unnoticed; `seq` records the
 * order of handling and `handled_by` who handled it.
 */
export const HANDLED_TABLE = 'projection_handled';

export async function createHandledTable(dataSource: DataSource): Promise<void> {
  await dataSource.query(`CREATE TABLE IF NOT EXISTS ${HANDLED_TABLE} (
    events_table text NOT NULL,
    event_id bigint NOT NULL,
    event_type text NOT NULL,
    tx_id bigint NOT NULL,
    position bigint NOT NULL,
    handled_by text NOT NULL,
    seq bigserial NOT NULL,
    PRIMARY KEY (events_table, event_id)
  )`);
}

/** Records one handled event in the batch's transaction. */
export async function recordHandled(manager: EntityManager, event: AggregateEvent, handledBy = 'test'): Promise<void> {
  const table = manager.connection.getMetadata(event.constructor).tableName;
  await manager.query(`INSERT INTO ${HANDLED_TABLE} (events_table, event_id, event_type, tx_id, position, handled_by) VALUES ($1, $2, $3, $4, $5, $6)`, [
    table,
    event.id,
    event.type,
    event.txId,
    event.position,
    handledBy,
  ]);
}

export interface HandledRow {
  table: string;
  id: number;
  type: string;
  txId: number;
  position: number;
  by: string;
}

/** The handled events, in the order they were handled. */
export async function handledRows(dataSource: DataSource): Promise<HandledRow[]> {
  const rows: Record<string, string>[] = await dataSource.query(
    `SELECT events_table, event_id::text, event_type, tx_id::text, position::text, handled_by FROM ${HANDLED_TABLE} ORDER BY seq`,
  );
  return rows.map((row) => ({
    table: row.events_table,
    id: Number(row.event_id),
    type: row.event_type,
    txId: Number(row.tx_id),
    position: Number(row.position),
    by: row.handled_by,
  }));
}

/** Every stored event of some tables, as the read model would record it, in (tx_id, position) order. */
export async function storedEvents(dataSource: DataSource, tables: readonly string[], types?: readonly string[]): Promise<Omit<HandledRow, 'by'>[]> {
  const union = tables
    .map((table) => `SELECT '${table}' AS events_table, id, type, tx_id, position FROM "${table}"${types ? ' WHERE type = ANY($1)' : ''}`)
    .join(' UNION ALL ');
  const rows: Record<string, string>[] = await dataSource.query(
    `SELECT events_table, id::text, type, tx_id::text, position::text FROM (${union}) e ORDER BY tx_id, position`,
    types ? [types] : [],
  );
  return rows.map((row) => ({ table: row.events_table, id: Number(row.id), type: row.type, txId: Number(row.tx_id), position: Number(row.position) }));
}

/** A promise and the function resolving it, to hold a transaction open until the test says so. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** The number of advisory locks held in the database right now (the projection runners' locks). */
export async function advisoryLocks(dataSource: DataSource): Promise<{ pid: number }[]> {
  return dataSource.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
}

/**
 * Waits until every transaction running now, in any database of the server, has ended: the
 * horizon projections read below is cluster-wide, so another test file's open transaction holds
 * it back for a while. Call it before a catchUp whose exact result a test asserts, with none of
 * the test's own transactions open.
 */
export async function horizonPassed(dataSource: DataSource): Promise<void> {
  const [{ xmax }]: { xmax: string }[] = await dataSource.query('SELECT txid_snapshot_xmax(txid_current_snapshot())::text AS xmax');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [{ passed }]: { passed: boolean }[] = await dataSource.query('SELECT txid_snapshot_xmin(txid_current_snapshot()) >= $1::bigint AS passed', [xmax]);
    if (passed) return;
    if (Date.now() > deadline) throw new Error(`a transaction older than ${xmax} is still open after 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
