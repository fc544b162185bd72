import { EventSchemaVersionError } from '../errors/event-schema-version-error';
import { EventUpcastError } from '../errors/event-upcast-error';
import { UsageError } from '../errors/usage-error';
import { isPlainObject } from '../aggregates/column-values';
import type { EventTypeRecord } from '../metadata/metadata-storage';

/**
 * The stored data of an event row as its class's current version reads it: upcast step by step
 * from the row's `schema_version`. Rows are never rewritten; every read upcasts again.
 *
 * @param storedVersion - the row's `schema_version`; undefined when a partial select left it out,
 *   which only a class that never changed version can afford.
 */
export function upcastStoredData(record: EventTypeRecord | undefined, className: string, stored: unknown, storedVersion: unknown, eventId: unknown): unknown {
  const current = record?.version ?? 1;
  const type = record?.name ?? className;
  if (storedVersion === undefined || storedVersion === null) {
    if (current === 1) return stored;
    throw new UsageError(type, 'schemaVersion', `was not selected with data: ${className} is at version ${current}, and data is upcast from the version its row was stored with`);
  }
  if (storedVersion === current) return stored;
  if (typeof storedVersion !== 'number' || !Number.isSafeInteger(storedVersion) || storedVersion < 1 || storedVersion > current) {
    throw new EventSchemaVersionError(type, eventId, storedVersion, current);
  }
  if (stored === null || stored === undefined) return stored;
  let data = stored;
  for (let from = storedVersion; from < current; from += 1) {
    let next: unknown;
    try {
      next = record!.upcast[from](data as Record<string, unknown>);
    } catch (error) {
      throw new EventUpcastError(type, eventId, from, `threw: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (!isPlainObject(next)) {
      throw new EventUpcastError(type, eventId, from, `returned ${next === null ? 'null' : Array.isArray(next) ? 'an array' : typeof next}, not a data object`);
    }
    data = next;
  }
  return data;
}
