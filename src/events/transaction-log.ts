import type { ObjectLiteral, QueryRunner } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../aggregates/aggregate-definition';
import type { OutboxRow } from '../reactors/outbox';
import type { AggregateEvent } from './aggregate-event';

/** An event written in a transaction that has not committed yet. */
export interface WrittenEvent {
  readonly event: AggregateEvent;
  readonly definition: AggregateDefinition;
  /** The transaction depth it was written at: 1 for the outermost transaction, more in savepoints. */
  depth: number;
  /** The caller's aggregate instance and its columns before the write, restored on rollback. */
  readonly caller?: ObjectLiteral;
  readonly callerBefore?: Map<ColumnMetadata, unknown>;
  /** Outbox rows written for its async reactors, handed to the queue after COMMIT. */
  outbox?: OutboxRow[];
}

/** TypeORM keeps the depth protected; savepoints are numbered by it, so it is stable to read. */
export function transactionDepthOf(queryRunner: QueryRunner): number {
  const depth = (queryRunner as unknown as { transactionDepth?: number }).transactionDepth;
  return typeof depth === 'number' ? depth : queryRunner.isTransactionActive ? 1 : 0;
}

/**
 * Which events each open transaction has written, savepoint by savepoint. Events written in a
 * savepoint that rolls back are forgotten; what survives the outermost COMMIT is handed to the
 * after-commit listeners.
 */
export class TransactionLog {
  readonly #open = new WeakMap<QueryRunner, WrittenEvent[]>();

  record(queryRunner: QueryRunner, written: WrittenEvent): void {
    let entries = this.#open.get(queryRunner);
    if (!entries) this.#open.set(queryRunner, (entries = []));
    entries.push(written);
  }

  /** Notes the outbox rows written for an event recorded earlier in this transaction. */
  attachOutbox(queryRunner: QueryRunner, event: AggregateEvent, outbox: OutboxRow[]): void {
    const entry = this.#open.get(queryRunner)?.find((written) => written.event === event);
    if (entry) entry.outbox = outbox;
  }

  /** After COMMIT or RELEASE SAVEPOINT: the committed events once the outermost transaction ends. */
  committed(queryRunner: QueryRunner): WrittenEvent[] {
    const entries = this.#open.get(queryRunner);
    if (!entries) return [];
    const depth = transactionDepthOf(queryRunner);
    if (depth > 0) {
      for (const entry of entries) entry.depth = Math.min(entry.depth, depth);
      return [];
    }
    this.#open.delete(queryRunner);
    return entries;
  }

  /** After ROLLBACK or ROLLBACK TO SAVEPOINT: forget what was undone and restore the callers' instances. */
  rolledBack(queryRunner: QueryRunner): void {
    const entries = this.#open.get(queryRunner);
    if (!entries) return;
    const depth = transactionDepthOf(queryRunner);
    const undone = entries.filter((entry) => entry.depth > depth);
    for (const entry of undone.reverse()) {
      if (entry.caller && entry.callerBefore) entry.definition.restore(entry.caller, entry.callerBefore);
    }
    const kept = entries.filter((entry) => entry.depth <= depth);
    if (depth === 0 || kept.length === 0) this.#open.delete(queryRunner);
    else this.#open.set(queryRunner, kept);
  }
}
