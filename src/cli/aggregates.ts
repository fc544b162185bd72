import type { DataSource, EntityMetadata } from 'typeorm';
import { getMetadataStorage } from '../metadata/metadata-storage';
import { CliError } from './errors';

/** An aggregate with events in the DataSource, as the commands address it: by entity name. */
export interface CliAggregate {
  readonly name: string;
  readonly target: Function;
  readonly metadata: EntityMetadata;
  readonly eventsMetadata: EntityMetadata;
  /** The `@AggregateVersion()` property. */
  readonly versionProperty: string | undefined;
}

/**
 * The aggregates with events in a DataSource, from the decorators' records and the DataSource's
 * own metadata: both are shared by every installed copy of the package (the records live on
 * `globalThis`), so this works whichever copy attached the DataSource.
 */
export function aggregatesOf(dataSource: DataSource): CliAggregate[] {
  const found = new Map<Function, CliAggregate>();
  const storage = getMetadataStorage();
  for (const record of storage.eventsOf) {
    if (!dataSource.hasMetadata(record.target)) continue;
    const target = record.aggregate();
    if (found.has(target) || !dataSource.hasMetadata(target)) continue;
    const metadata = dataSource.getMetadata(target);
    const versionProperty = storage.aggregateVersions.find((version) => version.target === target)?.propertyName;
    found.set(target, { name: metadata.name, target, metadata, eventsMetadata: dataSource.getMetadata(record.target), versionProperty });
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The aggregate a command names: its entity name, exactly, or else ignoring case when that is unambiguous. */
export function findAggregate(dataSource: DataSource, name: string): CliAggregate {
  const all = aggregatesOf(dataSource);
  const exact = all.find((aggregate) => aggregate.name === name);
  if (exact) return exact;
  const loose = all.filter((aggregate) => aggregate.name.toLowerCase() === name.toLowerCase());
  if (loose.length === 1) return loose[0];
  const known = all.length > 0 ? `known aggregates: ${all.map((aggregate) => aggregate.name).join(', ')}` : 'the DataSource has no aggregates with events';
  throw new CliError(`unknown aggregate '${name}': ${known}`);
}

const integerTypes = new Set(['smallint', 'integer', 'int', 'int2', 'int4']);

/**
 * The id as the library takes it for the aggregate's primary column: a number for an integer
 * column when the text is one (a bigint column takes the digits as they are, past 2^53 too),
 * the text otherwise. Text that is not an integer is left for the library to refuse with a
 * UsageError naming the column's type.
 */
export function parseId(aggregate: CliAggregate, text: string): unknown {
  const column = aggregate.metadata.primaryColumns[0];
  const type = aggregate.metadata.connection.driver.normalizeType(column);
  if (integerTypes.has(type) && /^-?\d+$/.test(text)) {
    const value = Number(text);
    return Number.isSafeInteger(value) ? value : BigInt(text);
  }
  return text;
}
