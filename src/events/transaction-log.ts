import type { ObjectLiteral, QueryRunner } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import type { OutboxRow } from '../reactors/outbox';
import type { AggregateEvent } from './aggregate-event';
import { pendingWriteOf } from './pending-write';
import { forgetStoredState } from '../aggregates/stored-state';

/** The fields the write path fills in on an event, as they were before its write. */
export type EventFields = Pick<AggregateEvent, 'id' | 'aggregateId' | 'version' | 'schemaVersion' | 'createdAt' | 'metadata' | 'position' | 'txId'>;

export function eventFieldsOf(event: AggregateEvent): EventFields {
  const { id, aggregateId, version, schemaVersion, createdAt, metadata, position, txId } = event;
  return { id, aggregateId, version, schemaVersion, createdAt, metadata, position, txId };
}

/** Puts an event's write-path fields back, so that the unwritten event can be saved again. */
export function restoreEventFields(event: AggregateEvent, fields: EventFields): void {
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) delete (event as unknown as Record<string, unknown>)[key];
    else (event as unknown as Record<string, unknown>)[key] = value;
  }
}

/** An event written in a transaction that has not committed yet. */
export interface WrittenEvent {
  readonly event: AggregateEvent;
  readonly definition: AggregateDefinition;
  /** The transaction depth it was written at: 1 for the outermost transaction, more in savepoints. */
  depth: number;
  /** The event's fields before the write, put back if it rolls back. */
  readonly eventBefore: EventFields;
  /** Outbox rows written for its async reactors, handed to the queue after COMMIT. */
  outbox?: OutboxRow[];
}

/** A caller's aggregate instance as it was before its first write at one transaction depth. */
interface CallerSnapshot {
  readonly caller: ObjectLiteral;
  readonly definition: AggregateDefinition;
  depth: number;
  readonly columns: Map<ColumnMetadata, unknown>;
}

interface OpenTransaction {
  events: WrittenEvent[];
  callers: CallerSnapshot[];
  /** Aggregate instances loaded in the transaction: what they hold is stored only if it commits. */
  loaded: { instance: object; depth: number }[];
  /** Stops watching the connection (see TransactionLog.record). */
  unwatch: () => void;
}

/** TypeORM keeps the depth protected; savepoints are numbered by it, so it is stable to read. */
export function transactionDepthOf(queryRunner: QueryRunner): number {
  const depth = (queryRunner as unknown as { transactionDepth?: number }).transactionDepth;
  return typeof depth === 'number' ? depth : queryRunner.isTransactionActive ? 1 : 0;
}

/**
 * Which events each open transaction has written, savepoint by savepoint, and how to put the
 * callers' objects back if they do not commit. A caller's aggregate instance is copied once per
 * savepoint level (not once per event), so a transaction writing many events of a large row
 * holds one copy of it. Events of a savepoint that rolls back are forgotten; what survives the
 * outermost COMMIT is handed to the after-commit listeners.
 */
export class TransactionLog {
  readonly #open = new WeakMap<QueryRunner, OpenTransaction>();

  /** Whether the write about to happen must copy the caller first (its first write at this depth). */
  needsSnapshot(queryRunner: QueryRunner, caller: ObjectLiteral, depth: number): boolean {
    return !this.#open.get(queryRunner)?.callers.some((snapshot) => snapshot.caller === caller && snapshot.depth === depth);
  }

  /** Notes a written event, and the caller's instance as it was before, when it was copied. */
  record(queryRunner: QueryRunner, written: WrittenEvent, caller?: { instance: ObjectLiteral; columns: Map<ColumnMetadata, unknown> }): void {
    const open = this.#opened(queryRunner);
    open.events.push(written);
    if (caller) open.callers.push({ caller: caller.instance, definition: written.definition, depth: written.depth, columns: caller.columns });
  }

  /**
   * Notes an aggregate instance TypeORM loaded in this transaction, so that its stored state is
   * forgotten if the transaction (or the savepoint it was loaded in) does not commit: it may
   * hold what the transaction wrote.
   */
  noteLoad(queryRunner: QueryRunner, instance: object): void {
    this.#opened(queryRunner).loaded.push({ instance, depth: transactionDepthOf(queryRunner) });
  }

  #opened(queryRunner: QueryRunner): OpenTransaction {
    let open = this.#open.get(queryRunner);
    if (!open) this.#open.set(queryRunner, (open = { events: [], callers: [], loaded: [], unwatch: this.#watch(queryRunner) }));
    return open;
  }

  /** Notes the outbox rows written for an event recorded earlier in this transaction. */
  attachOutbox(queryRunner: QueryRunner, event: AggregateEvent, outbox: OutboxRow[]): void {
    const entry = this.#open.get(queryRunner)?.events.find((written) => written.event === event);
    if (entry) entry.outbox = outbox;
  }

  /** Whether this transaction has written (and so locked) the given aggregate. */
  holds(queryRunner: QueryRunner, definition: AggregateDefinition, id: unknown): boolean {
    return Boolean(this.#open.get(queryRunner)?.events.some((written) => written.definition === definition && String(written.event.aggregateId) === String(id)));
  }

  /** After COMMIT or RELEASE SAVEPOINT: the committed events once the outermost transaction ends. */
  committed(queryRunner: QueryRunner): WrittenEvent[] {
    const open = this.#open.get(queryRunner);
    if (!open) return [];
    const depth = transactionDepthOf(queryRunner);
    if (depth > 0) {
      for (const entry of open.events) entry.depth = Math.min(entry.depth, depth);
      for (const entry of open.loaded) entry.depth = Math.min(entry.depth, depth);
      // The released savepoint's copies merge into the enclosing level: a copy that level took
      // itself is older and wins; otherwise the released copy is that level's state before its
      // first write (a copy at a shallower level says nothing about this one).
      for (const snapshot of open.callers.filter((s) => s.depth > depth)) {
        const older = open.callers.some((other) => other !== snapshot && other.caller === snapshot.caller && other.depth === depth);
        if (older) open.callers.splice(open.callers.indexOf(snapshot), 1);
        else snapshot.depth = depth;
      }
      return [];
    }
    this.#close(queryRunner, open);
    for (const entry of open.events) pendingWriteOf(entry.event).state = 'written';
    return open.events;
  }

  /**
   * Before ROLLBACK or ROLLBACK TO SAVEPOINT, so that a ROLLBACK that fails (the connection is
   * gone) still puts the callers' objects back: events and instances of the undone levels.
   */
  rollingBack(queryRunner: QueryRunner): void {
    const open = this.#open.get(queryRunner);
    if (open) this.#undo(queryRunner, open, Math.max(transactionDepthOf(queryRunner), 1));
  }

  #undo(queryRunner: QueryRunner, open: OpenTransaction, fromDepth: number): void {
    const undone = open.events.filter((entry) => entry.depth >= fromDepth);
    for (const entry of undone.reverse()) {
      restoreEventFields(entry.event, entry.eventBefore);
      pendingWriteOf(entry.event).state = undefined;
    }
    // The shallowest copy of each instance is its state before the first undone write.
    const restored = new Set<ObjectLiteral>();
    for (const snapshot of [...open.callers].filter((s) => s.depth >= fromDepth).sort((a, b) => a.depth - b.depth)) {
      if (restored.has(snapshot.caller)) continue;
      restored.add(snapshot.caller);
      snapshot.definition.restore(snapshot.caller, snapshot.columns);
      // The write it remembered did not happen; what the row holds is read again next time.
      forgetStoredState(snapshot.caller);
    }
    for (const entry of open.loaded) if (entry.depth >= fromDepth) forgetStoredState(entry.instance);
    open.events = open.events.filter((entry) => entry.depth < fromDepth);
    open.callers = open.callers.filter((snapshot) => snapshot.depth < fromDepth);
    open.loaded = open.loaded.filter((entry) => entry.depth < fromDepth);
    if (fromDepth <= 1 || (open.events.length === 0 && open.callers.length === 0 && open.loaded.length === 0)) this.#close(queryRunner, open);
  }

  #close(queryRunner: QueryRunner, open: OpenTransaction): void {
    open.unwatch();
    this.#open.delete(queryRunner);
  }

  /**
   * A connection that ends while its transaction is open has not committed it (or never heard
   * its COMMIT answered), whatever TypeORM reports afterwards: put everything back at once. An
   * instance left behind a COMMIT that did happen is safe (its next write meets the new version);
   * one left ahead of a write that never happened is not.
   */
  #watch(queryRunner: QueryRunner): () => void {
    const connection = (queryRunner as unknown as { databaseConnection?: { on?: Function; off?: Function } }).databaseConnection;
    if (!connection?.on || !connection.off) return () => undefined;
    const lost = () => {
      const open = this.#open.get(queryRunner);
      if (open) this.#undo(queryRunner, open, 1);
    };
    connection.on('end', lost);
    connection.on('error', lost);
    return () => {
      connection.off!('end', lost);
      connection.off!('error', lost);
    };
  }
}
