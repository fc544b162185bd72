import { cloneValue } from '../aggregates/column-values';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { latestDefinitionOf } from '../metadata/event-sourcing-registry';

/**
 * The values of a row's sourced columns, by property name, for the `build` of its baseline event:
 * what replaying that event must give back. Values are copies, as TypeORM reads them: Dates stay
 * Dates (declare those attributes `@Data({ type: () => Date })`), numeric and bigint columns the
 * exact strings PostgreSQL returns, json columns their parsed value, nulls null. Columns JSON
 * cannot hold (bytea) are refused by `build` with the attribute named. Typed as the entity, so
 * that TypeScript checks the spread against the event's `@Data` types; only the sourced columns
 * are present (no primary key, version, dates kept by TypeORM, excluded columns or relations).
 *
 * @example
 * ```ts
 * @Aggregate({ baseline: (row: Subscription) => SubscriptionImported.build({ subscription: row, ...sourcedValues(row) }) })
 * ```
 * @throws EventSourcingConfigError when the row is not an aggregate of an attached DataSource.
 */
export function sourcedValues<A extends object>(row: A): A {
  const definition = row && typeof row === 'object' ? latestDefinitionOf(row.constructor) : undefined;
  if (!definition) {
    throw new EventSourcingConfigError(
      `sourcedValues: ${row && typeof row === 'object' ? row.constructor.name : String(row)} is not an aggregate of a DataSource with EventSourcing attached`,
    );
  }
  const values: Record<string, unknown> = {};
  for (const column of definition.sourcedColumns) values[column.propertyName] = cloneValue(column.getEntityValue(row));
  return values as A;
}
