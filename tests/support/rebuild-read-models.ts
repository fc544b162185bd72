import 'reflect-metadata';
import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, PrimaryGeneratedColumn, type DataSource, type EntityManager } from 'typeorm';
import type { AggregateEvent } from 'typeorm-event-sourcing';

/**
 * Read models of the rebuild tests (tests/integration/projections-rebuild.test.ts).
 */

/** A table no projection owns, referenced by {@link UserTotal}. */
@Entity('rebuild_customers')
export class RebuildCustomer {
  @PrimaryColumn({ type: 'int' }) id!: number;
  @Column({ type: 'varchar' }) name!: string;
}

/**
 * Owned: one row per user: a serial primary key, a unique constraint, a unique index, a plain
 * index, a check, an enum column, and a foreign key out to a table the projection does not own.
 * Everything `migration:generate` compares by name.
 */
@Entity('rebuild_user_totals')
@Check('CHK_rebuild_user_totals_total', '"total" >= 0')
export class UserTotal {
  @PrimaryGeneratedColumn() id!: number;
  @Index({ unique: true }) @Column({ type: 'int' }) userId!: number;
  @Column({ type: 'varchar', unique: true }) label!: string;
  @Index() @Column({ type: 'int', default: 0 }) total!: number;
  @Column({ type: 'enum', enum: ['new', 'regular'], default: 'new' }) kind!: 'new' | 'regular';
  @Column({ type: 'int', nullable: true }) customerId!: number | null;
  @ManyToOne(() => RebuildCustomer, { nullable: true, onDelete: 'SET NULL' }) @JoinColumn({ name: 'customerId' }) customer?: RebuildCustomer | null;
}

/** Owned as well: an identity primary key and a foreign key to the other owned table. */
@Entity('rebuild_user_lines')
export class UserLine {
  @PrimaryGeneratedColumn('identity', { generatedIdentity: 'BY DEFAULT' }) id!: number;
  @Index({ unique: true }) @Column({ type: 'int' }) eventId!: number;
  @Column({ type: 'int' }) totalId!: number;
  @ManyToOne(() => UserTotal, { onDelete: 'CASCADE' }) @JoinColumn({ name: 'totalId' }) totalRow?: UserTotal;
}

/** The classes of a marks table: one row per handled event and copy, unique. */
export interface MarkTable {
  readonly entity: Function;
  readonly table: string;
}

/**
 * A table of marks, one entity class per test so each test has a table of its own: a serial
 * id, and `(event_id, copy)` unique, so an event handled twice fails its batch.
 */
export function markTable(table: string): MarkTable {
  @Entity(table)
  @Index(['eventId', 'copy'], { unique: true })
  class Mark {
    @PrimaryGeneratedColumn() id!: number;
    @Column({ name: 'event_id', type: 'int' }) eventId!: number;
    @Column({ type: 'int', default: 0 }) copy!: number;
  }
  return { entity: Mark, table };
}

/** Marks an event, `copies` rows, by raw SQL with the table's unqualified name (as handlers write it). */
export async function mark(manager: EntityManager, table: string, event: AggregateEvent, copies = 1, sleep = 0): Promise<void> {
  if (sleep > 0) await manager.query(`SELECT pg_sleep($1)`, [sleep]);
  for (let copy = 0; copy < copies; copy += 1) await manager.query(`INSERT INTO ${table} (event_id, copy) VALUES ($1, $2)`, [event.id, copy]);
}

export async function countOf(dataSource: DataSource, table: string): Promise<number> {
  const [{ n }]: { n: number }[] = await dataSource.query(`SELECT count(*)::int AS n FROM ${table}`);
  return n;
}

/** The rebuild's shadow schemas in the database now. */
export async function shadowSchemas(dataSource: DataSource): Promise<string[]> {
  const rows: { name: string }[] = await dataSource.query(`SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE 'es\\_rebuild\\_%' ORDER BY 1`);
  return rows.map((row) => row.name);
}

/** Index and constraint names of a table, sorted. */
export async function namesOn(dataSource: DataSource, table: string): Promise<{ indexes: string[]; constraints: string[] }> {
  const indexes: { name: string }[] = await dataSource.query(`SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1`, [table]);
  const constraints: { name: string }[] = await dataSource.query(`SELECT conname AS name FROM pg_constraint WHERE conrelid = $1::regclass ORDER BY 1`, [table]);
  return { indexes: indexes.map((row) => row.name), constraints: constraints.map((row) => row.name) };
}
