import { AsyncLocalStorage } from 'node:async_hooks';
import { isPlainObject } from '../aggregates/column-values';
import { UsageError } from '../errors/usage-error';
import type { EventMetadata } from '../events/aggregate-event';

/**
 * Metadata that events written inside a scope receive automatically: request-level context set
 * with `es.withMetadata`, and the causation and correlation ids set while a reactor runs.
 * Metadata given to `build` wins over the scope's.
 */
const scope = new AsyncLocalStorage<EventMetadata>();

export function withMetadata<T>(metadata: EventMetadata, fn: () => T): T {
  if (!isPlainObject(metadata)) throw new UsageError('es.withMetadata', 'metadata', 'must be a plain object');
  return scope.run({ ...scope.getStore(), ...metadata }, fn);
}

export function scopedMetadata(): EventMetadata | undefined {
  return scope.getStore();
}
