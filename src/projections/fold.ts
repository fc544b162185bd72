import type { DataSource } from 'typeorm';
import type { AggregateClass } from '../event-sourcing';
import { assertObjectArgument, UsageError } from '../errors/usage-error';
import type { EventSourcingRegistry } from '../metadata/event-sourcing-registry';
import type { EventClass } from './projection';
import { EventStream, sourcesOf, type RangeCursor, type StreamRange } from './projection-stream';

/** Which events `es.fold` reads. */
export interface FoldQuery<C extends EventClass = EventClass> {
  /** The event classes to read: one, or several, of one aggregate or of many. */
  events: C | readonly C[];
  /**
   * Only the events of one aggregate (every class must be an event of its type): read in version
   * order. Without it, events come in the order projections see them, `(txId, position)`.
   */
  aggregate?: FoldAggregate;
  /** Events created at or after this moment. */
  from?: Date;
  /** Events created before this moment. */
  to?: Date;
  /** Events at this global position or later. */
  fromPosition?: number;
  /** Events at this global position or earlier. */
  toPosition?: number;
  /**
   * Events read per query: at most this many event instances are held at once.
   * @defaultValue 1000
   */
  batchSize?: number;
}

/** One aggregate whose events `es.fold` reads. */
export interface FoldAggregate {
  /** The aggregate class, e.g. `Subscription`. */
  type: AggregateClass<object>;
  /** The aggregate's primary key. */
  id: unknown;
}

/** Folds one event into the report's state; may be async. */
export type FoldReducer<T, E> = (state: T, event: E) => T | Promise<T>;

const DEFAULT_FOLD_BATCH = 1000;

/**
 * A one-off report over history, without a table: every event the query selects, in order,
 * through `reducer`, a batch at a time. All batches read one REPEATABLE READ, READ ONLY snapshot:
 * the report is exact as of the moment it started, events written meanwhile are not in it, and
 * the transaction holds no transaction id (so it holds back no projection).
 */
export async function foldEvents<C extends EventClass, T>(
  dataSource: DataSource,
  registry: EventSourcingRegistry,
  query: FoldQuery<C>,
  reducer: FoldReducer<T, InstanceType<C>>,
  initial: T,
): Promise<T> {
  const subject = 'es.fold';
  assertObjectArgument(subject, 'query', query);
  if (typeof reducer !== 'function') throw new UsageError(subject, 'reducer', `must be a function, got ${typeof reducer}`);
  const classes: readonly unknown[] = Array.isArray(query.events) ? query.events : query.events === undefined ? [] : [query.events];
  if (classes.length === 0) throw new UsageError(subject, 'events', 'must name at least one event class');
  for (const candidate of classes) {
    if (typeof candidate !== 'function') throw new UsageError(subject, 'events', `must be event classes, got ${String(candidate)}`);
  }
  const batchSize = query.batchSize ?? DEFAULT_FOLD_BATCH;
  if (typeof batchSize !== 'number' || !Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new UsageError(subject, 'batchSize', `must be a positive integer, got ${String(batchSize)}`);
  }
  const sources = sourcesOf(dataSource, registry, subject, classes as Function[]);
  const range: { -readonly [K in keyof StreamRange]: StreamRange[K] } = {};
  for (const key of ['from', 'to'] as const) {
    const value = query[key];
    if (value === undefined) continue;
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new UsageError(subject, key, `must be a valid Date, got ${String(value)}`);
    range[key] = value;
  }
  for (const key of ['fromPosition', 'toPosition'] as const) {
    const value = query[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new UsageError(subject, key, `must be an integer, got ${String(value)}`);
    range[key] = value;
  }
  if (query.aggregate !== undefined) {
    const { type, id } = query.aggregate ?? ({} as { type?: undefined; id?: undefined });
    const definition = typeof type === 'function' ? registry.aggregate(type) : undefined;
    if (!definition) throw new UsageError(subject, 'aggregate', 'must be { type: AggregateClass, id }');
    const foreign = sources.find((source) => source.definition !== definition);
    if (foreign) {
      throw new UsageError(subject, 'aggregate', `is a ${definition.name}, but the query reads events of ${foreign.definition.name} too`);
    }
    if (id === undefined || id === null) throw new UsageError(subject, 'aggregate', `needs the id of the ${definition.name}`);
    range.aggregateId = dataSource.driver.preparePersistentValue(id, definition.primaryColumn);
  }
  const stream = new EventStream(dataSource.driver, sources);
  return dataSource.transaction('REPEATABLE READ', async (manager) => {
    await manager.query('SET TRANSACTION READ ONLY');
    let state = initial;
    let after: RangeCursor | null = null;
    for (;;) {
      const batch = await stream.readRange(manager, range, after, batchSize);
      for (const { event } of batch) state = await reducer(state, event as InstanceType<C>);
      if (batch.length < batchSize) return state;
      const last = batch[batch.length - 1].event;
      after = { txId: last.txId, position: last.position, version: last.version };
    }
  });
}
