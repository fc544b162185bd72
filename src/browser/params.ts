import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import { badParameter } from './http-error';

/** A query parameter as given, with an empty value (an empty form field) counted as absent. */
export function optionalParam(query: URLSearchParams, name: string, maxLength = 500): string | undefined {
  const values = query.getAll(name);
  if (values.length > 1) throw badParameter(name, 'is given more than once');
  const value = values[0];
  if (value === undefined || value === '') return undefined;
  if (value.length > maxLength) throw badParameter(name, `is longer than ${maxLength} characters`);
  if (value.includes('\u0000')) throw badParameter(name, 'contains a NUL character');
  return value;
}

/** Row ids, positions and transaction ids are bigint: digits, as text, within range. */
const BIGINT_MAX = 2n ** 63n - 1n;

/** A positive bigint given as digits (an event id, a position), kept as text. */
export function positiveBigint(name: string, text: string): string {
  if (!/^\d{1,19}$/.test(text) || BigInt(text) < 1n || BigInt(text) > BIGINT_MAX) {
    throw badParameter(name, `must be a positive integer, got '${shorten(text)}'`);
  }
  return String(BigInt(text));
}

/** A whole number from `min` to `max`. */
export function intInRange(name: string, text: string, min: number, max: number): number {
  const value = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw badParameter(name, `must be an integer from ${min} to ${max}, got '${shorten(text)}'`);
  return value;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * A moment as `<input type="datetime-local">` sends it, or as ISO 8601: `2026-03-01`,
 * `2026-03-01T14:30`, `2026-03-01T14:30:05.123Z`, `...+02:00`. Without an offset, UTC.
 */
export function moment(name: string, text: string): Date {
  const match = DATE.exec(text);
  if (!match) throw badParameter(name, `must be a date such as 2026-03-01 or 2026-03-01T14:30 (UTC unless an offset is given), got '${shorten(text)}'`);
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '0', offset = 'Z'] = match;
  const utc = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second), Number(fraction.padEnd(3, '0')));
  const check = new Date(utc);
  // Date.UTC rolls 2026-02-31 over into March: a date that does not exist is malformed.
  if (check.getUTCDate() !== Number(day) || check.getUTCMonth() !== Number(month) - 1 || Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) {
    throw badParameter(name, `is not a valid date: '${shorten(text)}'`);
  }
  const sign = offset === 'Z' ? 0 : offset.startsWith('-') ? -1 : 1;
  const offsetMinutes = sign === 0 ? 0 : sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  return new Date(utc - offsetMinutes * 60_000);
}

/** A feed position: the pair `(tx_id, position)` events are ordered by, written `<txId>-<position>`. */
export interface FeedCursor {
  readonly txId: string;
  readonly position: string;
}

export function feedCursor(name: string, text: string): FeedCursor {
  const match = /^(\d{1,19})-(\d{1,19})$/.exec(text);
  if (!match) throw badParameter(name, `must be a cursor of the form <txId>-<position>, as the page's links give, got '${shorten(text)}'`);
  return { txId: positiveBigint(name, match[1]), position: positiveBigint(name, match[2]) };
}

export function cursorText(cursor: FeedCursor): string {
  return `${cursor.txId}-${cursor.position}`;
}

const integerTypes: Record<string, bigint> = { smallint: 2n ** 15n, int2: 2n ** 15n, integer: 2n ** 31n, int: 2n ** 31n, int4: 2n ** 31n, bigint: 2n ** 63n, int8: 2n ** 63n };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An aggregate id from a URL, as the library takes it for the primary column's type: a number for
 * an integer column (bigint ones as digits), a UUID string, or the text itself.
 */
export function aggregateIdParam(definition: AggregateDefinition, name: string, text: string): unknown {
  const column = definition.primaryColumn;
  const type = definition.metadata.connection.driver.normalizeType(column);
  const range = integerTypes[type];
  if (range !== undefined) {
    if (!/^-?\d{1,19}$/.test(text) || BigInt(text) < -range || BigInt(text) >= range) {
      throw badParameter(name, `must be an integer (${definition.name}.${column.propertyName} is ${type}), got '${shorten(text)}'`);
    }
    return range > 2n ** 31n ? String(BigInt(text)) : Number(text);
  }
  if (type === 'uuid' && !UUID.test(text)) throw badParameter(name, `must be a UUID (${definition.name}.${column.propertyName} is uuid), got '${shorten(text)}'`);
  if (text.includes('\u0000')) throw badParameter(name, 'contains a NUL character');
  return text;
}

/** A value as a message quotes it: at most 60 characters. */
export function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
