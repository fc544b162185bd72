import { getMetadataArgsStorage, type EntityManager } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { assertObjectArgument, UsageError } from '../errors/usage-error';
import type { AggregateEvent } from '../events/aggregate-event';
import { getMetadataStorage } from '../metadata/metadata-storage';

/** A concrete event class (one decorated with `@EventType`). */
export type EventClass<E extends AggregateEvent = AggregateEvent> = new (...args: any[]) => E;

/**
 * Maintains a read model from one event: called once per event, in the projection's order, with
 * the manager of the batch's transaction. Write the read model through that manager, so the
 * writes commit together with the checkpoint (exactly once), or not at all.
 */
export type ProjectionHandler<E> = (event: E, manager: EntityManager) => Promise<void> | void;

/** Options of a {@link Projection}. */
export interface ProjectionOptions {
  /**
   * The entity classes of the tables the projection owns: its read model, written by its
   * handlers and by nothing else. `es.projections.rebuild` builds them afresh from the first
   * event (in fresh tables swapped in at the end, or emptied in place; see docs/projections.md).
   * Without them, a rebuild starts the checkpoint over and replays every event onto the tables
   * as they are.
   * @defaultValue []
   */
  tables?: readonly Function[];
}

/** What a projection handles, for the readers and the batch runner of src/projections. */
interface HandlerTable {
  /** The handlers of each event class, in the order `on` was called. */
  readonly byClass: Map<Function, ProjectionHandler<AggregateEvent>[]>;
  /** The entity classes of the tables it owns. */
  readonly owned: readonly Function[];
}
const tables = new WeakMap<Projection, HandlerTable>();

/**
 * A read model kept up to date from events: a name (its checkpoint's key in `es_projections`)
 * and a handler per event class, across any number of aggregates' events tables. Run it with
 * `es.projections.catchUp(projection)` or `es.projections.run(projection, { signal })`. A new
 * projection starts from the first event ever written: that is how existing events are viewed
 * in a new way.
 *
 * @example
 * ```ts
 * export const activeByMonth = new Projection('active-subscribers-by-month', { tables: [ActiveSubscribers] })
 *   .on(SubscriptionActivated, async (event, manager) => {
 *     await manager.increment(ActiveSubscribers, { month: monthOf(event.createdAt) }, 'count', 1);
 *   })
 *   .on([SubscriptionCancelled], async (event, manager) => { ... });
 * ```
 */
export class Projection {
  /** The projection's name, unique per database (schema): its checkpoint row's key. */
  readonly name: string;

  /**
   * @param name - Its identity in the database: keep it stable.
   * @param options - The tables it owns (`tables`), for `es.projections.rebuild`.
   * @throws UsageError for a name that is not a non-empty string, or options or `tables` of the
   * wrong shape.
   * @throws EventSourcingConfigError for an entry of `tables` that is not an entity class
   * (`@Entity`), or is an event class.
   */
  constructor(name: string, options: ProjectionOptions = {}) {
    if (typeof name !== 'string' || name.trim().length === 0) {
      throw new UsageError('new Projection', 'name', `must be a non-empty string, got ${JSON.stringify(name) ?? String(name)}`);
    }
    const subject = `new Projection('${name}')`;
    assertObjectArgument(subject, 'options', options);
    this.name = name;
    tables.set(this, { byClass: new Map(), owned: ownedTables(subject, name, options.tables) });
  }

  /**
   * Handles events of one class, or of each class of a list, with `handler`. Several handlers of
   * one class run in the order they were added. Returns the projection, for chaining.
   *
   * @throws EventSourcingConfigError for a class that is not an event class (`@EventType`).
   * @throws UsageError for a handler that is not a function, or an empty list.
   */
  on<C extends EventClass>(classes: C | readonly C[], handler: ProjectionHandler<InstanceType<C>>): this {
    const list: readonly unknown[] = Array.isArray(classes) ? classes : [classes];
    const subject = `projection '${this.name}': on`;
    if (list.length === 0) throw new UsageError(subject, 'classes', 'must name at least one event class');
    if (typeof handler !== 'function') throw new UsageError(subject, 'handler', `must be a function, got ${typeof handler}`);
    const storage = getMetadataStorage();
    for (const candidate of list) {
      if (typeof candidate !== 'function' || !storage.eventTypeOf(candidate)) {
        const named = typeof candidate === 'function' ? candidate.name || 'an anonymous class' : String(candidate);
        throw new EventSourcingConfigError(`projection '${this.name}': ${named} is not an event class (a class decorated with @EventType)`);
      }
    }
    const { byClass } = tables.get(this)!;
    for (const eventClass of new Set(list as Function[])) {
      const handlers = byClass.get(eventClass) ?? [];
      handlers.push(handler as ProjectionHandler<AggregateEvent>);
      byClass.set(eventClass, handlers);
    }
    return this;
  }
}

/** Checks `tables` of a projection's options: entity classes, each once. */
function ownedTables(subject: string, name: string, owned: unknown): Function[] {
  if (owned === undefined) return [];
  if (!Array.isArray(owned)) throw new UsageError(subject, 'tables', `must be an array of entity classes, got ${typeof owned}`);
  const entities = getMetadataArgsStorage().tables;
  for (const candidate of owned) {
    if (typeof candidate !== 'function') throw new UsageError(subject, 'tables', `must be an array of entity classes, got ${String(candidate)} in it`);
    const named = candidate.name || 'an anonymous class';
    const entity = entities.find((table) => table.target === candidate);
    if (!entity || entity.type === 'view') {
      throw new EventSourcingConfigError(`projection '${name}': ${named} in its tables is not an entity class (a class decorated with @Entity)`);
    }
    if (getMetadataStorage().eventTypeOf(candidate)) {
      throw new EventSourcingConfigError(`projection '${name}': ${named} in its tables is an event class: a projection owns its read model, never events`);
    }
  }
  return [...new Set(owned as Function[])];
}

/** The entity classes of the tables a projection owns (`new Projection(name, { tables })`). */
export function ownedTablesOf(projection: Projection): readonly Function[] {
  return handlerTableOf(projection).owned;
}

/** The event classes a projection handles, in the order they were first named. */
export function eventClassesOf(projection: Projection): Function[] {
  return [...handlerTableOf(projection).byClass.keys()];
}

/** The handlers of an event, by its class; none for a class the projection does not handle. */
export function handlersFor(projection: Projection, event: AggregateEvent): readonly ProjectionHandler<AggregateEvent>[] {
  return handlerTableOf(projection).byClass.get(event.constructor) ?? [];
}

function handlerTableOf(projection: Projection): HandlerTable {
  const table = tables.get(projection);
  if (!table) throw new UsageError('es.projections', 'projection', 'must be made with new Projection(name)');
  return table;
}
