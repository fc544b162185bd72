import type { ObjectLiteral } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from './aggregate-definition';
import { cloneValue } from './column-values';

/**
 * What the library knows an aggregate instance's row holds in the database: recorded when
 * TypeORM loads the instance with all its columns, and after each write the library makes with
 * it. The fast write path applies events to a copy of this, never to the instance's own
 * (possibly edited) fields, and makes its UPDATE conditional on the version it records.
 */
export interface StoredState {
  readonly definition: AggregateDefinition;
  readonly version: number;
  /** A private copy of every column value. */
  readonly columns: ReadonlyMap<ColumnMetadata, unknown>;
}

const storedStates = new WeakMap<object, StoredState>();

/**
 * Records the instance's current column values as its stored state. Instances missing a sourced
 * column (a partial `select`) are forgotten instead: their row is not fully known.
 */
export function rememberStoredState(definition: AggregateDefinition, instance: ObjectLiteral): void {
  const columns = new Map<ColumnMetadata, unknown>();
  for (const column of definition.metadata.columns) {
    const value = column.getEntityValue(instance);
    if (value === undefined && definition.requiredForStoredState.has(column)) {
      storedStates.delete(instance);
      return;
    }
    columns.set(column, cloneValue(value));
  }
  storedStates.set(instance, { definition, version: definition.versionOf(instance), columns });
}

/**
 * Sets stored column values read back from the database (RETURNING) on the instance, and
 * records them as its stored state (when they hold every column it needs).
 */
export function rememberReturnedState(definition: AggregateDefinition, instance: ObjectLiteral, columns: Map<ColumnMetadata, unknown>): void {
  for (const [column, value] of columns) column.setEntityValue(instance, cloneValue(value));
  // A sourced column the row did not give back (`select: false`) is not known from it.
  if ([...definition.requiredForStoredState].every((column) => columns.has(column))) rememberStoredState(definition, instance);
  else storedStates.delete(instance);
}

export function storedStateOf(instance: object): StoredState | undefined {
  return storedStates.get(instance);
}

/** The instance may no longer match its row (a TypeORM save of it, a rolled-back write). */
export function forgetStoredState(instance: object): void {
  storedStates.delete(instance);
}

/** After one instance's values were copied onto another (a command reloading its aggregate). */
export function copyStoredState(from: object, to: object): void {
  const state = storedStates.get(from);
  if (state) storedStates.set(to, state);
  else storedStates.delete(to);
}

/**
 * A fresh entity holding the stored state, for `apply` to change, behind a proxy that notes
 * whether `apply` read a property the stored state cannot vouch for: a column events do not
 * decide (excluded, create/update dates, database-generated), which may have changed in the row
 * without the version moving, or a relation. Such a write must read the locked row instead.
 */
export function workingCopy(state: StoredState): { aggregate: ObjectLiteral; target: ObjectLiteral; readUnvouched: () => boolean } {
  const target = state.definition.metadata.create() as ObjectLiteral;
  for (const [column, value] of state.columns) column.setEntityValue(target, cloneValue(value));
  const unvouched = state.definition.unvouchedProperties;
  let read = false;
  const note = (property: string | symbol) => {
    if (typeof property === 'string' && unvouched.has(property)) read = true;
  };
  const aggregate = new Proxy(target, {
    get(object, property, receiver) {
      note(property);
      return Reflect.get(object, property, receiver);
    },
    has(object, property) {
      note(property);
      return Reflect.has(object, property);
    },
    getOwnPropertyDescriptor(object, property) {
      note(property);
      return Reflect.getOwnPropertyDescriptor(object, property);
    },
    ownKeys(object) {
      // Copying or spreading the whole entity reads everything.
      if (unvouched.size > 0) read = true;
      return Reflect.ownKeys(object);
    },
  });
  return { aggregate, target, readUnvouched: () => read };
}
