/**
 * What `build` knows about a write that TypeORM must not see as columns: the caller's aggregate
 * instance, the expected version, and where the event is in its life. Kept beside the event, not
 * on it, so TypeORM never copies, compares or serialises it.
 */
export interface PendingWrite {
  /** The caller's aggregate instance; absent for an event that creates its aggregate. */
  aggregate?: object;
  /** The version the aggregate must be at before this event, if the caller requires one. */
  expectedVersion?: number;
  /** Whether `build` made the event (TypeORM's `create` and `new` leave `@Data` out). */
  built?: boolean;
  /** `'in flight'` from the start of its write until COMMIT or rollback, then `'written'` or unset. */
  state?: 'in flight' | 'written';
  /** Whether its last write got past its own statements (and its trigger reactors) to COMMIT. */
  awaitingCommit?: boolean;
}

const pendingWrites = new WeakMap<object, PendingWrite>();

export function pendingWriteOf(event: object): PendingWrite {
  let pending = pendingWrites.get(event);
  if (!pending) pendingWrites.set(event, (pending = {}));
  return pending;
}
