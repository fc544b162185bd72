import { AggregateNotFoundError } from '../errors/aggregate-not-found-error';
import { UsageError } from '../errors/usage-error';
import type { AggregateDefinition } from './aggregate-definition';

const integerRanges: Record<string, bigint> = { smallint: 2n ** 15n, integer: 2n ** 31n, bigint: 2n ** 63n };
const stringTypes = new Set(['character varying', 'varchar', 'text', 'character', 'char', 'citext']);
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function shown(id: unknown): string {
  if (typeof id === 'string') return `'${id.length > 40 ? `${id.slice(0, 40)}...` : id}'`;
  if (id === null || id === undefined || typeof id !== 'object') return `${String(id)} (${id === null ? 'null' : typeof id})`;
  return Array.isArray(id) ? 'an array' : 'an object';
}

/**
 * Checks an aggregate id given to a public read, a write or a worker against the type of the
 * aggregate's primary column, before any SQL runs: with TypeORM's `invalidWhereValuesBehavior:
 * 'ignore'` an undefined id would otherwise match every row. An integer beyond the column's
 * range names no row at all.
 *
 * @throws UsageError for a missing id or one of the wrong type.
 * @throws AggregateNotFoundError for an integer outside the column's range.
 */
export function assertAggregateId(definition: AggregateDefinition, subject: string, id: unknown): void {
  const column = definition.primaryColumn;
  const type = definition.metadata.connection.driver.normalizeType(column);
  const wrong = (expected: string): never => {
    throw new UsageError(subject, 'id', `must be ${expected} (the type of ${definition.name}.${column.propertyName}), got ${shown(id)}`);
  };
  if (id === undefined || id === null) wrong('given');
  const range = integerRanges[type];
  if (range !== undefined) {
    let value: bigint;
    if (typeof id === 'number' && Number.isSafeInteger(id)) value = BigInt(id);
    else if (typeof id === 'bigint') value = id;
    else if (type === 'bigint' && typeof id === 'string' && /^-?\d{1,19}$/.test(id)) value = BigInt(id);
    else return wrong(type === 'bigint' ? 'an integer (a number, a bigint or a string of digits)' : 'an integer');
    if (value < -range || value >= range) throw new AggregateNotFoundError(definition.name, id);
    return;
  }
  if (type === 'uuid') {
    if (typeof id !== 'string' || !uuidPattern.test(id)) wrong('a UUID string');
    return;
  }
  if (stringTypes.has(type)) {
    if (typeof id !== 'string') wrong('a string');
    if ((id as string).includes('\u0000')) wrong('a string without NUL characters');
    return;
  }
  if (typeof id === 'object' || typeof id === 'function' || typeof id === 'symbol') wrong('a single value');
}
