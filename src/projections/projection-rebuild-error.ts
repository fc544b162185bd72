import { EventSourcingError } from '../errors/event-sourcing-error';

/**
 * `es.projections.rebuild` refused, or stopped before the swap: a swap was asked for (or chosen)
 * where it cannot keep what the table has (a trigger, a grant, a row security policy, a view on
 * it, a foreign key into it from a table the projection does not own...), another rebuild of the
 * projection is running, or the table changed while it was being rebuilt. Nothing was swapped:
 * the live read model and the projection's checkpoint are as they were, and the fresh tables are
 * gone. The message says why and what to do (often: `{ mode: 'in-place' }`).
 */
export class ProjectionRebuildError extends EventSourcingError {
  constructor(
    /** The projection's name. */
    readonly projection: string,
    /** The table at fault, schema-qualified; `null` when the reason is not one table's. */
    readonly table: string | null,
    /** Why, and what to do instead. */
    readonly reason: string,
  ) {
    super('PROJECTION_REBUILD', `projection '${projection}'${table ? `, table ${table}` : ''}: ${reason}`);
  }
}
