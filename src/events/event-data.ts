import { InvalidEventDataError } from '../errors/invalid-event-data-error';
import { isDate, isPlainObject } from '../aggregates/column-values';
import type { DataRecord } from '../metadata/metadata-storage';

/**
 * Event data and metadata live in jsonb. These functions make sure what is written reads back as
 * the same value, and that stored JSON becomes typed properties again.
 */

const scalarTypes = new Map<unknown, string>([
  [String, 'string'],
  [Number, 'number'],
  [Boolean, 'boolean'],
]);

/** The declared type of a `@Data` property: the explicit one, else TypeScript's `design:type`. */
export function declaredType(record: DataRecord): unknown {
  return record.type ? record.type() : record.designType;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return `a ${typeof value}`;
}

/** Nesting deeper than this is refused: JSON.stringify and PostgreSQL's jsonb parser both recurse. */
export const MAX_JSON_DEPTH = 1000;

/** A string with a lone UTF-16 surrogate, which jsonb refuses (and UTF-8 cannot encode). */
function hasLoneSurrogate(value: string): boolean {
  return !(value as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * Throws {@link InvalidEventDataError} unless JSON stores `value` faithfully, so that what is
 * written reads back equal: plain objects, arrays, well-formed strings without NUL, finite numbers
 * other than -0, booleans and null, nested at most {@link MAX_JSON_DEPTH} levels. `undefined`
 * object properties are left out, as JSON does. Dates are refused here: nested in JSON they come
 * back as strings (a top-level `@Data` declared as Date is revived; see {@link assertDataValue}).
 */
export function assertJsonFaithful(eventType: string, path: string, value: unknown, ancestors: object[] = []): void {
  const fail = (reason: string): never => {
    throw new InvalidEventDataError(eventType, path, reason);
  };
  switch (typeof value) {
    case 'string':
      if (value.includes('\u0000')) fail('contains a NUL character, which jsonb cannot store');
      if (hasLoneSurrogate(value)) fail('contains a lone UTF-16 surrogate, which jsonb cannot store');
      return;
    case 'number':
      if (!Number.isFinite(value)) fail(`is ${value}, which JSON cannot store`);
      if (Object.is(value, -0)) fail('is -0, which JSON stores as 0');
      return;
    case 'boolean':
      return;
    case 'undefined':
      return;
    case 'bigint':
      fail('is a BigInt, which JSON cannot store (use a string)');
      return;
    case 'function':
    case 'symbol':
      fail(`is ${describe(value)}, which JSON cannot store`);
      return;
  }
  if (value === null) return;
  const object = value as object;
  if (isDate(object)) {
    fail(
      Number.isNaN(object.getTime())
        ? 'is an invalid Date'
        : 'is a Date, which would read back as a string: store date.toISOString(), or make it a top-level @Data({ type: () => Date })',
    );
  }
  if (ancestors.includes(object)) fail('refers to itself (a circular reference)');
  if (ancestors.length >= MAX_JSON_DEPTH) {
    throw new InvalidEventDataError(eventType, `${path.slice(0, 60)}...`, `nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  const inner = [...ancestors, object];
  if (Array.isArray(object)) {
    object.forEach((item, index) => {
      if (item === undefined) throw new InvalidEventDataError(eventType, `${path}[${index}]`, 'is undefined, which JSON stores as null');
      assertJsonFaithful(eventType, `${path}[${index}]`, item, inner);
    });
    return;
  }
  if (!isPlainObject(object)) {
    fail(`is ${describe(object)}; only plain objects, arrays, strings, finite numbers, booleans, null and Dates are stored`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) fail('has symbol keys, which JSON cannot store');
  for (const [key, item] of Object.entries(object)) {
    if (key.includes('\u0000')) fail('has a key with a NUL character, which jsonb cannot store');
    if (hasLoneSurrogate(key)) fail('has a key with a lone UTF-16 surrogate, which jsonb cannot store');
    assertJsonFaithful(eventType, `${path}.${key}`, item, inner);
  }
}

/** Checks a value against its declared `@Data` type (for scalars and Dates) and JSON. */
export function assertDataValue(eventType: string, record: DataRecord, value: unknown): void {
  const type = declaredType(record);
  if (value !== undefined && value !== null) {
    const scalar = scalarTypes.get(type);
    if (scalar && typeof value !== scalar) {
      throw new InvalidEventDataError(eventType, record.propertyName, `is ${describe(value)}, but is declared as ${scalar}`);
    }
    if (type === Date && !isDate(value)) {
      throw new InvalidEventDataError(eventType, record.propertyName, `is ${describe(value)}, but is declared as Date`);
    }
    // A top-level Date declared as such is stored as an ISO string and revived on load.
    if (type === Date) {
      if (Number.isNaN((value as Date).getTime())) throw new InvalidEventDataError(eventType, record.propertyName, 'is an invalid Date');
      return;
    }
  }
  assertJsonFaithful(eventType, record.propertyName, value);
}

/**
 * The jsonb object of an event's `@Data` properties. An ordinary object (TypeORM compares column
 * values with `hasOwnProperty`, which a null-prototype object lacks), its keys defined rather than
 * assigned so that no property name can reach the prototype.
 */
export function collectData(event: object, records: readonly DataRecord[]): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const record of records) {
    const value = (event as Record<string, unknown>)[record.propertyName];
    if (value !== undefined) {
      Object.defineProperty(data, record.propertyName, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return data;
}

/**
 * Turns stored data back into typed properties. Only declared properties are copied, so a stored
 * `__proto__` or unknown key never reaches the event.
 */
export function hydrateData(
  eventType: string,
  event: object,
  records: readonly DataRecord[],
  stored: unknown,
): void {
  if (stored === null || stored === undefined) return;
  if (typeof stored !== 'object' || Array.isArray(stored)) {
    throw new InvalidEventDataError(eventType, 'data', `is ${describe(stored)}, but must be a JSON object`);
  }
  const target = event as Record<string, unknown>;
  for (const record of records) {
    if (!Object.prototype.hasOwnProperty.call(stored, record.propertyName)) continue;
    const raw = (stored as Record<string, unknown>)[record.propertyName];
    target[record.propertyName] = hydrateValue(eventType, record, raw);
  }
}

function hydrateValue(eventType: string, record: DataRecord, raw: unknown): unknown {
  if (raw === null) return null;
  const type = declaredType(record);
  if (type === Date) {
    const date = typeof raw === 'string' || typeof raw === 'number' ? new Date(raw) : undefined;
    if (!date || Number.isNaN(date.getTime())) {
      throw new InvalidEventDataError(eventType, record.propertyName, `is stored as ${describe(raw)}, which is not a Date`);
    }
    return date;
  }
  const scalar = scalarTypes.get(type);
  if (scalar && typeof raw !== scalar) {
    throw new InvalidEventDataError(eventType, record.propertyName, `is stored as ${describe(raw)}, but is declared as ${scalar}`);
  }
  return raw;
}
