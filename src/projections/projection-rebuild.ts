import { createHash, randomBytes } from 'node:crypto';
import type { DataSource, EntityManager, EntityMetadata, QueryRunner } from 'typeorm';
import { isConnectionLoss } from '../errors/connection-loss';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { ProjectionError } from '../errors/projection-error';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import { tableSql } from '../schema/table-sql';
import type { BatchJob } from './projection-batch';
import type { ProjectionCheckpoints } from './projection-checkpoints';
import { ProjectionRebuildError } from './projection-rebuild-error';
import { closeSession, openSession, projectionLockName, tryAdvisoryLock } from './session-lock';
import type { Checkpoint, StreamedEvent } from './projection-stream';
import {
  foreignKeys,
  ident,
  identitySequences,
  lostGrants,
  ownedSequences,
  pairIndexes,
  resolveTables,
  shapeOf,
  swapBlockers,
  tableProperties,
  useCatalogPath,
  type ForeignKey,
  type LiveTable,
  type SwapBlocker,
} from './rebuild-catalog';

/**
 * How `es.projections.rebuild` rebuilds the tables a projection owns:
 * - `'swap'`: into fresh copies of the tables, swapped in at the end in one transaction; readers
 *   see the old read model until then, and the new one after.
 * - `'in-place'`: the tables are emptied and the projection catches up on them from the first
 *   event; readers see them partly built meanwhile.
 */
export type ProjectionRebuildMode = 'swap' | 'in-place';

/** What `rebuild` did. */
export interface ProjectionRebuildResult {
  /**
   * Events handled by this call: by swap, every event of the projection's types up to the swap;
   * in place, those of them this call's batches handled (a runner of the projection may take a
   * share).
   */
  readonly processed: number;
  /** How it was rebuilt: chosen, or as asked for. */
  readonly mode: ProjectionRebuildMode;
}

/** What a rebuild needs from the projections runtime. */
export interface RebuildSetup {
  readonly dataSource: DataSource;
  readonly registry: EventSourcingRegistry;
  readonly checkpoints: ProjectionCheckpoints;
  /** The projection's batch job: its name, stream, handlers and batch size. */
  readonly job: BatchJob;
  /** `es.projections.rebuild('name')`, for messages. */
  readonly subject: string;
  /** The entity classes of the tables it owns. */
  readonly owned: readonly Function[];
  /** The mode asked for; chosen when undefined. */
  readonly mode: ProjectionRebuildMode | undefined;
  /** Throws once the EventSourcing instance is closing. */
  readonly assertOpen: () => void;
  /** Catches the projection up on its live checkpoint, a batch per transaction, as `catchUp`. */
  readonly catchUp: () => Promise<number>;
}

/** An owned table: its entity and the table its unqualified or qualified name leads to. */
interface OwnedTable {
  readonly metadata: EntityMetadata;
  readonly live: LiveTable;
}

const SHADOW_PREFIX = 'es_rebuild_';

/**
 * The start of the names of a projection's shadow schemas: a hash of the DataSource schema and
 * the projection's name, so a rebuild finds the leftovers of its own crashed predecessors.
 */
export function shadowSchemaPrefix(dataSource: DataSource, name: string): string {
  const schema = (dataSource.driver.options as { schema?: string }).schema ?? '';
  return `${SHADOW_PREFIX}${createHash('sha256').update(`${schema}:${name}`).digest('hex').slice(0, 12)}_`;
}

/**
 * Rebuilds a projection's read model from the first event; see `Projections.rebuild` and
 * docs/projections.md ("Rebuilding").
 */
export async function rebuildProjection(setup: RebuildSetup): Promise<ProjectionRebuildResult> {
  const owned = ownedMetadata(setup);
  await setup.checkpoints.register(setup.dataSource.manager, setup.job.name);
  const session = await RebuildSession.open(setup.dataSource);
  try {
    if (!(await session.tryLock(setup.dataSource, setup.job.name))) {
      throw new ProjectionRebuildError(setup.job.name, null, 'another rebuild of it is running, in this process or another: wait for it to end');
    }
    const prefix = shadowSchemaPrefix(setup.dataSource, setup.job.name);
    await dropLeftovers(session.manager, prefix);
    const tables = await liveTablesOf(setup, session.manager, owned);
    const mode = await chooseMode(setup, session.manager, tables);
    const processed = mode === 'swap' ? await swap(setup, session, tables, prefix) : await inPlace(setup, session, tables);
    return { processed, mode };
  } finally {
    await session.close();
  }
}

/**
 * The owned tables' metadata, each table once.
 *
 * @throws EventSourcingConfigError for a class that is no entity of this DataSource, or is an
 * aggregate or events table.
 */
function ownedMetadata({ dataSource, registry, subject, owned, job }: RebuildSetup): EntityMetadata[] {
  const byTable = new Map<string, EntityMetadata>();
  for (const target of owned) {
    const named = `${target.name || 'an anonymous class'} (in the tables of projection '${job.name}')`;
    if (!dataSource.hasMetadata(target)) throw new EventSourcingConfigError(`${subject}: ${named} is not an entity of this DataSource: list it in the DataSource's entities`);
    const metadata = dataSource.getMetadata(target);
    if (metadata.tableType === 'view') throw new EventSourcingConfigError(`${subject}: ${named} is a view entity, not a table`);
    if (registry.forEventsMetadata(metadata) || registry.forAggregateMetadata(metadata)) {
      throw new EventSourcingConfigError(`${subject}: ${named} is an aggregate's or its events' table: a projection owns its read model only`);
    }
    byTable.set(tableSql(dataSource.driver, metadata), metadata);
  }
  return [...byTable.values()];
}

/**
 * The tables the owned entities' names lead to, each once.
 *
 * @throws EventSourcingConfigError for a name that leads to no table.
 */
async function liveTablesOf(setup: RebuildSetup, manager: EntityManager, owned: readonly EntityMetadata[]): Promise<OwnedTable[]> {
  const names = owned.map((metadata) => tableSql(setup.dataSource.driver, metadata));
  const live = await resolveTables(manager, names);
  const tables: OwnedTable[] = [];
  owned.forEach((metadata, index) => {
    const table = live[index];
    if (!table) {
      throw new EventSourcingConfigError(`${setup.subject}: the table ${names[index]} of ${metadata.name} does not exist: create it (a migration) before rebuilding`);
    }
    if (!tables.some((known) => known.live.oid === table.oid)) tables.push({ metadata, live: table });
  });
  return tables;
}

/**
 * Swap when it can be done, in place otherwise: a table another table references by foreign key
 * cannot be dropped, and a table whose entity names its schema (or the DataSource's `schema`)
 * is written schema-qualified, out of reach of the search_path.
 */
async function chooseMode(setup: RebuildSetup, manager: EntityManager, tables: readonly OwnedTable[]): Promise<ProjectionRebuildMode> {
  const name = setup.job.name;
  if (tables.length === 0) {
    if (setup.mode === 'swap') {
      throw new ProjectionRebuildError(name, null, `declares no tables to swap (new Projection(name, { tables: [...] })); rebuild without a mode to replay it from the first event`);
    }
    return 'in-place';
  }
  const qualified = tables.find(({ metadata }) => metadata.schema !== undefined);
  const oids = tables.map(({ live }) => live.oid);
  const into = (await foreignKeys(manager, oids, 'into')).find((key) => !oids.includes(key.fromOid));
  const reason = qualified
    ? {
        table: qualified.live.qualified,
        why: `its entity ${qualified.metadata.name} is schema-qualified (an entity schema or the DataSource's schema option), so its handlers' statements cannot be led to a fresh copy`,
      }
    : into
      ? { table: into.to, why: `foreign key ${into.name} of table ${into.from}, which the projection does not own, references it, so it cannot be dropped` }
      : undefined;
  if (setup.mode === 'swap' && reason) {
    throw new ProjectionRebuildError(name, reason.table, `cannot be rebuilt by swap: ${reason.why}; rebuild with { mode: 'in-place' } (readers see it partly built until it has caught up)`);
  }
  return setup.mode ?? (reason ? 'in-place' : 'swap');
}

/**
 * In place: one short transaction locks the checkpoint row (waiting for a batch of a live
 * runner), empties the tables and starts the checkpoint over; then batches catch up as
 * `catchUp` does.
 */
async function inPlace(setup: RebuildSetup, session: RebuildSession, tables: readonly OwnedTable[]): Promise<number> {
  const { checkpoints, job } = setup;
  await session.transaction(async (manager) => {
    await checkpoints.lock(manager, job.name);
    await checkpoints.moveTo(manager, job.name, null);
    // Last: it leaves the search_path at pg_catalog.
    if (tables.length > 0) await emptyTables(manager, job.name, tables);
  });
  return setup.catchUp();
}

/**
 * TRUNCATE, all tables in one statement; but TRUNCATE refuses a table other tables reference,
 * and cascading it would empty tables the projection does not own: then DELETE, referencing
 * tables first, and the references from outside follow their ON DELETE rule.
 */
async function emptyTables(manager: EntityManager, name: string, tables: readonly OwnedTable[]): Promise<void> {
  const oids = tables.map(({ live }) => live.oid);
  await useCatalogPath(manager);
  const into = await foreignKeys(manager, oids, 'into');
  if (into.every((key) => oids.includes(key.fromOid))) {
    await manager.query(`TRUNCATE ${tables.map(({ live }) => live.qualified).join(', ')}`);
    return;
  }
  for (const table of referencingFirst(tables, into)) {
    try {
      await manager.query(`DELETE FROM ${table.live.qualified}`);
    } catch (error) {
      throw new ProjectionRebuildError(name, table.live.qualified, `could not be emptied for an in-place rebuild: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/** The tables, each after every other owned table that references it (as far as there is no cycle). */
function referencingFirst(tables: readonly OwnedTable[], keys: readonly ForeignKey[]): OwnedTable[] {
  const left = [...tables];
  const ordered: OwnedTable[] = [];
  while (left.length > 0) {
    const free = left.findIndex(({ live }) => !keys.some((key) => key.toOid === live.oid && key.fromOid !== live.oid && left.some((other) => other.live.oid === key.fromOid)));
    ordered.push(...left.splice(free < 0 ? 0 : free, 1));
  }
  return ordered;
}

/** What the swap needs of the shadow schema's set-up. */
interface ShadowPlan {
  /** The shadow copies' oids, in the tables' order. */
  readonly copies: string[];
  /** Each live table's shape when it was copied. */
  readonly shapes: string[];
}

/**
 * By swap: fresh copies of the tables in a shadow schema, filled by batches that find them first
 * on the search_path, then swapped in by one transaction. The shadow schema is dropped at the
 * end whatever happened.
 */
async function swap(setup: RebuildSetup, session: RebuildSession, tables: readonly OwnedTable[], prefix: string): Promise<number> {
  const { checkpoints, job } = setup;
  const shadow = `${prefix}${randomBytes(4).toString('hex')}`;
  try {
    const plan = await session.transaction((manager) => createShadow(manager, job.name, shadow, tables));
    let checkpoint: Checkpoint | null = null;
    let processed = 0;
    for (;;) {
      setup.assertOpen();
      const handled: StreamedEvent[] = await session.transaction(async (manager) => {
        await leadTo(manager, shadow);
        return handleBatch(setup, manager, checkpoint);
      });
      processed += handled.length;
      checkpoint = checkpointAfter(handled, checkpoint);
      if (handled.length < job.batchSize) break;
    }
    setup.assertOpen();
    return await session.transaction(async (manager) => {
      // From here a live runner's batches wait: nothing moves the live checkpoint meanwhile.
      await checkpoints.lock(manager, job.name);
      const path = await leadTo(manager, shadow);
      for (;;) {
        const handled = await handleBatch(setup, manager, checkpoint);
        processed += handled.length;
        checkpoint = checkpointAfter(handled, checkpoint);
        if (handled.length < job.batchSize) break;
      }
      await manager.query(`SELECT set_config('search_path', $1, true)`, [path]);
      await checkpoints.moveTo(manager, job.name, checkpoint);
      await swapIn(manager, job.name, shadow, tables, plan);
      return processed;
    });
  } finally {
    await session.dropSchema(setup.dataSource, shadow);
  }
}

/**
 * Makes the shadow schema and a copy of each table in it: `LIKE ... INCLUDING ALL` (columns,
 * defaults, constraints, indexes, identity, comments, statistics), the table's persistence,
 * storage options, owner and comment, its foreign keys under their names (those between owned
 * tables pointing at the copies), and its indexes' and identity sequences' names. Refuses first
 * what a copy would lose.
 */
async function createShadow(manager: EntityManager, name: string, shadow: string, tables: readonly OwnedTable[]): Promise<ShadowPlan> {
  await useCatalogPath(manager);
  const oids = tables.map(({ live }) => live.oid);
  refuse(name, await swapBlockers(manager, oids));
  await manager.query(`CREATE SCHEMA ${ident(shadow)}`);
  const copyOf = (table: LiveTable) => `${ident(shadow)}.${ident(table.name)}`;
  for (const { live } of tables) {
    const properties = await tableProperties(manager, live.oid);
    await manager.query(
      `CREATE ${properties.unlogged ? 'UNLOGGED ' : ''}TABLE ${copyOf(live)} (LIKE ${live.qualified} INCLUDING ALL)${properties.options ? ` WITH (${properties.options})` : ''}`,
    );
    if (!properties.ownedByMe) await manager.query(`ALTER TABLE ${copyOf(live)} OWNER TO ${ident(properties.owner)}`);
    if (properties.comment !== null) {
      const [{ statement }]: { statement: string }[] = await manager.query(`SELECT format('COMMENT ON TABLE %s IS %L', $1::text, $2::text) AS "statement"`, [copyOf(live), properties.comment]);
      await manager.query(statement);
    }
  }
  const copies = (await resolveTables(manager, tables.map(({ live }) => copyOf(live)))).map((copy) => copy!.oid);
  refuse(name, await grantsLost(manager, tables, copies));

  for (const key of await foreignKeys(manager, oids, 'outOf')) {
    const from = tables.find(({ live }) => live.oid === key.fromOid)!.live;
    const to = tables.find(({ live }) => live.oid === key.toOid)?.live;
    // pg_get_constraintdef prints `REFERENCES schema.table(`; a key between owned tables points
    // at the target's copy, which takes the target's place in the swap.
    const definition = to ? key.definition.replace(`REFERENCES ${key.to}(`, `REFERENCES ${copyOf(to)}(`) : key.definition;
    await manager.query(`ALTER TABLE ${copyOf(from)} ADD CONSTRAINT ${ident(key.name)} ${definition}`);
  }

  // The copies' indexes (and the constraints they back) and identity sequences take the live
  // names, through names of their own first: a copy's generated name may be a name another
  // copy's index is about to take.
  const renames: { kind: 'INDEX' | 'SEQUENCE'; copy: string; name: string }[] = (await pairIndexes(manager, oids, copies)).map((pair) => ({ kind: 'INDEX', ...pair }));
  const [liveSequences, copySequences] = [await identitySequences(manager, oids), await identitySequences(manager, copies)];
  for (const sequence of copySequences) {
    const table = tables[copies.indexOf(sequence.table)].live;
    const original = liveSequences.find((candidate) => candidate.table === table.oid && candidate.column === sequence.column);
    if (original) renames.push({ kind: 'SEQUENCE', copy: sequence.name, name: original.name });
  }
  const moved = renames.filter((rename) => rename.copy !== rename.name);
  const passing = (index: number) => ident(`${shadow}_${index}`);
  for (const [index, { kind, copy }] of moved.entries()) await manager.query(`ALTER ${kind} ${ident(shadow)}.${ident(copy)} RENAME TO ${passing(index)}`);
  for (const [index, { kind, name }] of moved.entries()) await manager.query(`ALTER ${kind} ${ident(shadow)}.${passing(index)} RENAME TO ${ident(name)}`);

  const shapes: string[] = [];
  for (const oid of oids) shapes.push(await shapeOf(manager, oid));
  return { copies, shapes };
}

/** Every privilege on a live table its copy lacks, as blockers. */
async function grantsLost(manager: EntityManager, tables: readonly OwnedTable[], copies: readonly string[]): Promise<SwapBlocker[]> {
  const blockers: SwapBlocker[] = [];
  for (const [index, { live }] of tables.entries()) {
    const lost = await lostGrants(manager, live.oid, copies[index]);
    if (lost.length > 0) blockers.push({ table: live.qualified, what: `its grants (${lost.join(', ')}) would be lost` });
  }
  return blockers;
}

/** @throws ProjectionRebuildError naming the first table in the way, and everything about it. */
function refuse(name: string, blockers: readonly SwapBlocker[]): void {
  if (blockers.length === 0) return;
  const table = blockers[0].table;
  const reasons = blockers.filter((blocker) => blocker.table === table).map((blocker) => blocker.what);
  throw new ProjectionRebuildError(
    name,
    table,
    `cannot be rebuilt by swap: ${reasons.join('; ')}. Rebuild with { mode: 'in-place' } (readers see it partly built until it has caught up), or remove that for the rebuild and restore it after`,
  );
}

/**
 * The swap, at the end of the transaction that caught the copies up: locks the live tables
 * (readers wait from here to the commit), checks again under that lock that nothing came in the
 * way and that no migration changed them since they were copied, hands the serial sequences
 * over, drops the live tables and moves the copies into their schema.
 */
async function swapIn(manager: EntityManager, name: string, shadow: string, tables: readonly OwnedTable[], plan: ShadowPlan): Promise<void> {
  await useCatalogPath(manager);
  const oids = tables.map(({ live }) => live.oid);
  await manager.query(`LOCK TABLE ${tables.map(({ live }) => live.qualified).join(', ')} IN ACCESS EXCLUSIVE MODE`);
  const now = await resolveTables(manager, tables.map(({ live }) => live.qualified));
  for (const [index, { live }] of tables.entries()) {
    if (now[index]?.oid !== live.oid || (await shapeOf(manager, live.oid)) !== plan.shapes[index]) {
      throw new ProjectionRebuildError(name, live.qualified, 'changed while it was being rebuilt (a migration?), so the rebuilt copy is out of date: nothing was swapped; rebuild again');
    }
  }
  refuse(name, [...(await swapBlockers(manager, oids)), ...(await grantsLost(manager, tables, plan.copies))]);

  // A serial column's sequence belongs to the live table, and LIKE copied the column's default
  // (nextval of that sequence): it is handed to the copy's column. It cannot be owned by a
  // table of another schema, so it goes free for the DROP and is owned again after the move.
  const sequences = await ownedSequences(manager, oids);
  for (const { sequence } of sequences) await manager.query(`ALTER SEQUENCE ${sequence} OWNED BY NONE`);
  await manager.query(`DROP TABLE ${tables.map(({ live }) => live.qualified).join(', ')}`);
  for (const { live } of tables) await manager.query(`ALTER TABLE ${ident(shadow)}.${ident(live.name)} SET SCHEMA ${ident(live.schema)}`);
  for (const { table, column, sequence } of sequences) {
    const live = tables.find((candidate) => candidate.live.oid === table)!.live;
    await manager.query(`ALTER SEQUENCE ${sequence} OWNED BY ${live.qualified}.${ident(column)}`);
  }
  await manager.query(`DROP SCHEMA ${ident(shadow)} CASCADE`);
}

/**
 * Puts the shadow schema first on the search_path for the rest of the transaction, before the
 * session's own path: the handlers' unqualified table names (TypeORM's and raw SQL's) find the
 * copies of the owned tables, and every other table where they always do. Returns the path as
 * it was.
 */
async function leadTo(manager: EntityManager, shadow: string): Promise<string> {
  const [{ path }]: { path: string }[] = await manager.query(`SELECT current_setting('search_path') AS "path"`);
  await manager.query(`SELECT set_config('search_path', $1, true)`, [`${ident(shadow)}, ${path}`]);
  return path;
}

/**
 * Reads the events after `after` and hands each to the projection's handlers, in the caller's
 * transaction. No checkpoint row is involved: the rebuild's checkpoint is the caller's to keep.
 *
 * @throws ProjectionError when a handler throws.
 */
async function handleBatch({ job }: RebuildSetup, manager: EntityManager, after: Checkpoint | null): Promise<StreamedEvent[]> {
  const events = await job.stream.read(manager, after, job.batchSize);
  for (const streamed of events) {
    try {
      await job.handle(streamed, manager);
    } catch (error) {
      if (isConnectionLoss(error)) throw error;
      const { event, table } = streamed;
      throw new ProjectionError(job.name, event.type, event.id, table, event.position, event.txId, error);
    }
  }
  return events;
}

function checkpointAfter(handled: readonly StreamedEvent[], before: Checkpoint | null): Checkpoint | null {
  const last = handled.at(-1)?.event;
  return last ? { txId: last.txId, position: last.position } : before;
}

/** Drops the shadow schemas a crashed rebuild of the projection left (the caller holds its rebuild lock). */
async function dropLeftovers(manager: EntityManager, prefix: string): Promise<void> {
  const rows: { name: string }[] = await manager.query(`SELECT nspname AS "name" FROM pg_catalog.pg_namespace WHERE left(nspname, length($1)) = $1`, [prefix]);
  for (const { name } of rows) await manager.query(`DROP SCHEMA IF EXISTS ${ident(name)} CASCADE`);
}

/**
 * The rebuild's connection, for as long as it runs: it holds the projection's rebuild lock (a
 * session advisory lock, distinct from the runner's) and runs every transaction of the rebuild.
 */
class RebuildSession {
  readonly #queryRunner: QueryRunner;
  #locked = false;

  private constructor(queryRunner: QueryRunner) {
    this.#queryRunner = queryRunner;
  }

  static async open(dataSource: DataSource): Promise<RebuildSession> {
    return new RebuildSession(await openSession(dataSource));
  }

  get manager(): EntityManager {
    return this.#queryRunner.manager;
  }

  /** Takes the projection's rebuild lock if no session holds it. */
  async tryLock(dataSource: DataSource, name: string): Promise<boolean> {
    this.#locked = await tryAdvisoryLock(this.#queryRunner, projectionLockName(dataSource, 'projection-rebuild', name));
    return this.#locked;
  }

  /** Runs `work` in a READ COMMITTED transaction of this session. */
  async transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const queryRunner = this.#queryRunner;
    await queryRunner.startTransaction('READ COMMITTED');
    try {
      const result = await work(queryRunner.manager);
      await queryRunner.commitTransaction();
      return result;
    } catch (error) {
      if (queryRunner.isTransactionActive) await queryRunner.rollbackTransaction().catch(() => undefined);
      throw error;
    }
  }

  /** Drops a schema if it is there, on this session or, when it is broken, on the pool. */
  async dropSchema(dataSource: DataSource, schema: string): Promise<void> {
    const statement = `DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`;
    await this.#queryRunner.query(statement).catch(() => dataSource.query(statement).catch(() => undefined));
  }

  /** Lets the lock go and the connection back to the pool (or ends it, when the unlock failed). */
  async close(): Promise<void> {
    await closeSession(this.#queryRunner, { unlock: this.#locked, discard: false, reason: 'projection rebuild lost its connection' });
  }
}
