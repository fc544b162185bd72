import type { EntityMetadata, ObjectLiteral } from 'typeorm';
import type { AggregateEvent } from '../events/aggregate-event';

/** Where the commands write: stdout for results, stderr for progress and errors. */
export interface CliStreams {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** JSON for scripts: bigints as strings (JSON has no bigint), Dates as ISO strings. */
export function toJson(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_key, inner) => (typeof inner === 'bigint' ? inner.toString() : inner), indent);
}

/** A value in a human table cell: JSON, so that `"null"` and null, `"1"` and 1 stay apart. */
export function cell(value: unknown): string {
  if (value === undefined) return '';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  return toJson(value, 0) ?? String(value);
}

/** Left-aligned columns separated by two spaces, a header line first. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => (row[index] ?? '').length)));
  const line = (row: readonly string[]) =>
    row
      .map((text, index) => (index === row.length - 1 ? text : text.padEnd(widths[index])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** An event as an explicit object: what the row holds, with its type and data, not a class instance. */
export interface EventJson {
  table: string;
  id: number;
  aggregateId: unknown;
  version: number;
  type: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
  createdAt: string;
  position: number;
  txId: number;
}

export function eventJson(table: string, event: AggregateEvent): EventJson {
  return {
    table,
    id: event.id,
    aggregateId: event.aggregateId,
    version: event.version,
    type: event.type,
    data: event.data,
    metadata: event.metadata ?? {},
    createdAt: event.createdAt.toISOString(),
    position: event.position,
    txId: event.txId,
  };
}

/** The column values of an aggregate instance by property path (relations left out). */
export function columnValues(metadata: EntityMetadata, entity: ObjectLiteral): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const column of metadata.columns) {
    if (column.relationMetadata) continue;
    const value = column.getEntityValue(entity);
    values[column.propertyPath] = value instanceof Date ? value.toISOString() : value;
  }
  return values;
}

/** `name  value` lines, names aligned. */
export function properties(values: Record<string, unknown>): string {
  const width = Math.max(0, ...Object.keys(values).map((key) => key.length));
  return Object.entries(values)
    .map(([key, value]) => `${key.padEnd(width)}  ${cell(value)}`)
    .join('\n');
}
