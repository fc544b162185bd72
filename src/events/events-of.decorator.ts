import { DefaultNamingStrategy, getMetadataArgsStorage, Index, ManyToOne } from 'typeorm';
import { getMetadataStorage } from '../metadata/metadata-storage';

/** Options of {@link EventsOf}. */
export interface EventsOfOptions {
  /**
   * The events table.
   * @defaultValue the aggregate's table name followed by `_events`, e.g. `subscription_events`
   */
  table?: string;
  /**
   * The column holding the aggregate's primary key.
   * @defaultValue the aggregate's class name in snake case followed by `_id`, e.g. `subscription_id`
   */
  foreignKey?: string;
}

const naming = new DefaultNamingStrategy();

/**
 * Makes an abstract class the events table of one aggregate. Every event of that aggregate
 * extends it and is stored in its table (single-table inheritance on the `type` column), with a
 * foreign key to the aggregate that refuses deletes while events exist.
 *
 * List it, and every concrete event class, in the DataSource's `entities`.
 *
 * @example
 * ```ts
 * @EventsOf(() => Subscription)
 * export abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}
 * ```
 */
export function EventsOf(aggregate: () => Function, options: EventsOfOptions = {}): ClassDecorator {
  return (target) => {
    // The aggregate class may not exist yet while this decorator runs (import cycles):
    // TypeORM reads these names only when a DataSource builds its metadata.
    const aggregateName = () => aggregate().name;
    const tableName = () => {
      if (options.table) return options.table;
      const aggregateTable = getMetadataArgsStorage().tables.find((table) => table.target === aggregate());
      return `${naming.tableName(aggregateName(), aggregateTable?.name)}_events`;
    };
    const foreignKey = () => options.foreignKey ?? `${naming.tableName(aggregateName(), undefined)}_id`;
    const args = getMetadataArgsStorage();
    args.tables.push({
      target,
      get name() {
        return tableName();
      },
      type: 'regular',
    });
    args.inheritances.push({ target, pattern: 'STI', column: { name: 'type', type: 'varchar', length: 255 } });
    args.columns.push({
      target,
      propertyName: 'aggregateId',
      mode: 'regular',
      options: {
        get name() {
          return foreignKey();
        },
        nullable: false,
      },
    });
    ManyToOne(aggregate, { nullable: false, onDelete: 'RESTRICT' })(target.prototype, 'aggregate');
    args.joinColumns.push({
      target,
      propertyName: 'aggregate',
      get name() {
        return foreignKey();
      },
    });
    Index(['aggregateId', 'version'], { unique: true })(target);
    // Projections read every events table in (tx_id, position) order from a checkpoint.
    Index(['txId', 'position'])(target);
    getMetadataStorage().eventsOf.push({ target, aggregate });
  };
}
