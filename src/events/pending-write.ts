/**
 * What `build` knows about a write that TypeORM must not see as columns: the caller's aggregate
 * instance and the expected version. Kept beside the event, not on it, so TypeORM never copies,
 * compares or serialises it.
 */
export interface PendingWrite {
  /** The caller's aggregate instance; absent for an event that creates its aggregate. */
  aggregate?: object;
  /** The version the aggregate must be at before this event, if the caller requires one. */
  expectedVersion?: number;
}

const pendingWrites = new WeakMap<object, PendingWrite>();

export function pendingWriteOf(event: object): PendingWrite {
  let pending = pendingWrites.get(event);
  if (!pending) pendingWrites.set(event, (pending = {}));
  return pending;
}
