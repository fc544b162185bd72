import type { Driver, EntityManager } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { libraryObject, PROJECTIONS_TABLE } from '../schema/event-sourcing-schema';
import type { Checkpoint } from './projection-stream';

/**
 * Why a projection stopped last: the event its handler failed on and the handler's message.
 * The event fields are `null` when the failure was not a handler's (reading the batch failed).
 */
export interface ProjectionFailure {
  /** The error's message. */
  readonly message: string;
  /** The stored type of the event the handler failed on. */
  readonly eventType: string | null;
  /** Its id in its events table. */
  readonly eventId: number | null;
  /** Its events table. */
  readonly table: string | null;
  /** Its global position. */
  readonly position: number | null;
  /** When the failure happened. */
  readonly at: Date;
}

/** A row of `es_projections` as the library reads it. */
export interface CheckpointRow {
  readonly name: string;
  readonly checkpoint: Checkpoint | null;
  readonly lastError: ProjectionFailure | null;
  /** When the checkpoint last moved (or the row was made). */
  readonly updatedAt: Date;
}

interface RawRow {
  name: string;
  tx_id: string | null;
  position: string | null;
  updated_at: Date;
  last_error: (Omit<ProjectionFailure, 'at'> & { at: string }) | null;
}

/** PostgreSQL's "undefined_table": the schema was made before projections existed, or not at all. */
const UNDEFINED_TABLE = '42P01';

/**
 * The `es_projections` table: one row per projection with its checkpoint and last error. The
 * row is also the projection's lock: every batch takes it FOR UPDATE, so two batches of one
 * projection (a runner and a catchUp, or two catchUps) never overlap and never handle an event
 * twice, whatever runs where.
 */
export class ProjectionCheckpoints {
  readonly #table: string;

  constructor(driver: Driver) {
    this.#table = libraryObject(driver, PROJECTIONS_TABLE);
  }

  /**
   * Makes the projection's row if it has none (checkpoint null: from the first event).
   *
   * @throws EventSourcingConfigError when the table is missing from the database.
   */
  async register(manager: EntityManager, name: string): Promise<void> {
    try {
      await manager.query(`INSERT INTO ${this.#table} (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [name]);
    } catch (error) {
      if ((error as { driverError?: { code?: string } }).driverError?.code === UNDEFINED_TABLE || (error as { code?: string }).code === UNDEFINED_TABLE) {
        throw new EventSourcingConfigError(
          `the table ${PROJECTIONS_TABLE} is missing: create the library's schema with es.schema.create() or a migration (eventSourcingMigration), see docs/schema.md`,
        );
      }
      throw error;
    }
  }

  /**
   * Locks the projection's row for the rest of `manager`'s transaction, waiting for a batch of
   * another process that holds it, and returns its checkpoint and whether it has an error.
   */
  async lock(manager: EntityManager, name: string): Promise<{ checkpoint: Checkpoint | null; failed: boolean }> {
    const select = `SELECT tx_id::text AS tx_id, position::text AS position, last_error IS NOT NULL AS failed FROM ${this.#table} WHERE name = $1 FOR UPDATE`;
    let rows: { tx_id: string | null; position: string | null; failed: boolean }[] = await manager.query(select, [name]);
    if (rows.length === 0) {
      // Deleted since it was registered (someone starting the projection over): made again.
      await manager.query(`INSERT INTO ${this.#table} (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [name]);
      rows = await manager.query(select, [name]);
    }
    const [row] = rows;
    return { checkpoint: checkpointOf(row.tx_id, row.position), failed: row.failed };
  }

  /** Moves the checkpoint and clears the last error, in the batch's transaction. */
  async advance(manager: EntityManager, name: string, checkpoint: Checkpoint): Promise<void> {
    await manager.query(`UPDATE ${this.#table} SET tx_id = $2, position = $3, last_error = NULL, updated_at = clock_timestamp() WHERE name = $1`, [
      name,
      String(checkpoint.txId),
      String(checkpoint.position),
    ]);
  }

  /**
   * Sets the checkpoint (`null`: before the first event) and clears the last error, in a
   * rebuild's transaction that holds the row's lock.
   */
  async moveTo(manager: EntityManager, name: string, checkpoint: Checkpoint | null): Promise<void> {
    await manager.query(`UPDATE ${this.#table} SET tx_id = $2, position = $3, last_error = NULL, updated_at = clock_timestamp() WHERE name = $1`, [
      name,
      checkpoint ? String(checkpoint.txId) : null,
      checkpoint ? String(checkpoint.position) : null,
    ]);
  }

  /** Clears the last error after a batch that succeeded with nothing to handle. */
  async clearError(manager: EntityManager, name: string): Promise<void> {
    await manager.query(`UPDATE ${this.#table} SET last_error = NULL WHERE name = $1`, [name]);
  }

  /**
   * Records a failure, in a statement of its own, after the batch rolled back. The checkpoint
   * stays where it was.
   */
  async recordFailure(manager: EntityManager, name: string, failure: ProjectionFailure): Promise<void> {
    await manager.query(
      `INSERT INTO ${this.#table} (name, last_error) VALUES ($1, $2::jsonb) ON CONFLICT (name) DO UPDATE SET last_error = EXCLUDED.last_error`,
      [name, JSON.stringify(failure)],
    );
  }

  /** Every projection's row, by name. */
  async rows(manager: EntityManager): Promise<CheckpointRow[]> {
    const rows: RawRow[] = await manager.query(
      `SELECT name, tx_id::text AS tx_id, position::text AS position, updated_at, last_error FROM ${this.#table} ORDER BY name`,
    );
    return rows.map((row) => ({
      name: row.name,
      checkpoint: checkpointOf(row.tx_id, row.position),
      lastError: row.last_error ? { ...row.last_error, at: new Date(row.last_error.at) } : null,
      updatedAt: row.updated_at,
    }));
  }
}

function checkpointOf(txId: string | null, position: string | null): Checkpoint | null {
  return txId === null || position === null ? null : { txId: Number(txId), position: Number(position) };
}
