import type { AggregateEvent } from '../events/aggregate-event';
import { getMetadataStorage } from '../metadata/metadata-storage';

/**
 * What a TypeORM write that bypasses events (`save`, `update`, `insert`, a QueryBuilder update)
 * may do to sourced columns and the version: pass, pass with a warning, or be refused.
 */
export type DirectWritesMode = 'allow' | 'warn' | 'reject';

/** Options of {@link Aggregate}. */
export interface AggregateOptions {
  /**
   * Properties whose columns are not derived from events: `verify` does not compare them and
   * `rebuild` does not write them (a cached counter kept by other code, a column filled by a
   * database trigger...). The primary key, the version and create/update-date columns are never
   * sourced and need not be listed.
   * @defaultValue `[]`
   */
  exclude?: string[];
  /**
   * How a row from before the model was sourced (version 0, no events) becomes its first event:
   * called with the row, it builds an event of a type declared `{ creates: true }` whose `apply`
   * gives back the row's sourced columns (`sourcedValues(row)` gives them). Used by
   * `es.baseline()` and, lazily, by the first event written to such a row. A thunk, so the event
   * class may be declared later in the file.
   */
  baseline?: (row: any) => AggregateEvent<any, any>;
  /**
   * What a TypeORM write outside the event path that changes a sourced column or the version
   * does: `'allow'` lets it through; `'warn'` lets it through and reports a `DirectWriteError`
   * through `onError` (without one, through `process.emitWarning`); `'reject'` throws the
   * `DirectWriteError` and writes nothing, and makes the schema statements install a trigger that
   * refuses such UPDATEs from raw SQL and other programs too. Writes of excluded columns always
   * pass.
   * @defaultValue `'warn'`
   */
  directWrites?: DirectWritesMode;
}

/**
 * Marks a TypeORM entity as an aggregate: a model whose sourced columns are the result of its
 * events. Put it next to `@Entity()`; the entity stays an ordinary TypeORM entity that is read
 * with plain queries.
 *
 * @example
 * ```ts
 * @Aggregate({ exclude: ['viewCount'] })
 * @Entity()
 * export class Subscription {
 *   @PrimaryGeneratedColumn() id!: number;
 *   @Column({ type: 'varchar', default: 'pending' }) status!: string;
 *   @Column({ type: 'int', default: 0 }) viewCount!: number;
 *   @AggregateVersion() version!: number;
 *   @HasEvents(() => SubscriptionEvent) events!: SubscriptionEvent[];
 * }
 * ```
 */
export function Aggregate(options: AggregateOptions = {}): ClassDecorator {
  return (target) => {
    getMetadataStorage().aggregates.push({
      target,
      exclude: [...(options.exclude ?? [])],
      baseline: options.baseline,
      directWrites: options.directWrites ?? 'warn',
    });
  };
}
