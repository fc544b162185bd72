import { getMetadataStorage } from '../metadata/metadata-storage';

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
    getMetadataStorage().aggregates.push({ target, exclude: [...(options.exclude ?? [])] });
  };
}
