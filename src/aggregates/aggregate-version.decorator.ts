import { Column } from 'typeorm';
import { getMetadataStorage } from '../metadata/metadata-storage';

/**
 * The aggregate's version: how many events have been applied to it. An integer column,
 * 0 for an aggregate without events, incremented by one with every event written. Use it as the
 * `expectedVersion` of the next write for optimistic concurrency.
 *
 * Unlike TypeORM's `@VersionColumn`, it moves only when an event is written.
 *
 * @example
 * ```ts
 * @AggregateVersion() version!: number;
 * ```
 */
export function AggregateVersion(): PropertyDecorator {
  return (object, propertyName) => {
    Column({ type: 'int', default: 0 })(object, propertyName);
    getMetadataStorage().aggregateVersions.push({ target: object.constructor, propertyName: String(propertyName) });
  };
}
