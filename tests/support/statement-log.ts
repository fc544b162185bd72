import type { Logger, QueryRunner } from 'typeorm';

/** One statement as the DataSource's logger received it. */
export interface LoggedStatement {
  sql: string;
  parameters: unknown[] | undefined;
  /**
   * The query runner TypeORM passes with its own queries; undefined when the statement was logged
   * without one. Statements of one transaction share it.
   */
  runner: QueryRunner | undefined;
}

/**
 * A DataSource logger that keeps every statement, so that tests can count what a write sent.
 * Give it as `logger` (with `logging: true`) to `testDataSource`.
 *
 * @example
 * ```ts
 * const log = new StatementLog();
 * const dataSource = await testDataSource('fast_path', entities, { logger: log, logging: true });
 * const { statements } = await log.during(() => es.append(event));
 * ```
 */
export class StatementLog implements Logger {
  readonly statements: LoggedStatement[] = [];
  /** Failed statements (also in `statements`: TypeORM logs a query before running it). */
  readonly errors: { sql: string; error: unknown }[] = [];
  /** Messages of `log(level, message)`, e.g. the library's warnings. */
  readonly messages: { level: string; message: unknown }[] = [];

  logQuery(query: string, parameters?: unknown, queryRunner?: QueryRunner): void {
    this.statements.push({ sql: query, parameters: Array.isArray(parameters) ? parameters : undefined, runner: queryRunner });
  }

  logQueryError(error: string | Error, query: string): void {
    this.errors.push({ sql: query, error });
  }

  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    this.messages.push({ level, message });
  }

  mark(): number {
    return this.statements.length;
  }

  since(mark: number): LoggedStatement[] {
    return this.statements.slice(mark);
  }

  /** Runs `fn` and returns what it resolved to, with the statements logged meanwhile. */
  async during<T>(fn: () => Promise<T>): Promise<{ value: T; statements: LoggedStatement[] }> {
    const mark = this.mark();
    const value = await fn();
    return { value, statements: this.since(mark) };
  }
}

const escape = (name: string) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether `sql` names the table (quoted or not, schema-qualified or not); `foo` never matches `foo_events`. */
export function names(sql: string, table: string): boolean {
  return new RegExp(`(?<![\\w$])"?${escape(table)}"?(?![\\w$])`, 'i').test(sql);
}

export function inserts(sql: string, table: string): boolean {
  return new RegExp(`\\bINSERT\\s+INTO\\s+(?:"?\\w+"?\\.)?"?${escape(table)}"?(?![\\w$])`, 'i').test(sql);
}

export function updates(sql: string, table: string): boolean {
  return new RegExp(`\\bUPDATE\\s+(?:"?\\w+"?\\.)?"?${escape(table)}"?(?![\\w$])`, 'i').test(sql);
}

const startsTransaction = (sql: string) => /^\s*(START\s+TRANSACTION|BEGIN)\b/i.test(sql);
const commits = (sql: string) => /^\s*COMMIT\b/i.test(sql);
const rollsBack = (sql: string) => /^\s*ROLLBACK\b(?!\s+TO)/i.test(sql);

/**
 * Background statements that are not part of a write: the after-commit hand-over (DELETE /
 * UPDATE of es_outbox rows), the relay's transactions, and the debounced wake-up of projection
 * runners (`pg_notify`, sent 50 ms after commits).
 */
function isBackground(statement: LoggedStatement, all: LoggedStatement[]): boolean {
  if (/^\s*(DELETE|UPDATE)\b/i.test(statement.sql) && names(statement.sql, 'es_outbox')) return true;
  if (/^\s*SELECT pg_notify\(/i.test(statement.sql)) return true;
  if (!statement.runner) return false;
  // A relay transaction: its runner claims outbox rows and touches nothing else of ours.
  const same = all.filter((other) => other.runner === statement.runner);
  return same.some((other) => names(other.sql, 'es_outbox') && /SKIP\s+LOCKED/i.test(other.sql));
}

/** What a write sent, sorted out for the assertions of the fast-path tests. */
export interface WriteShape {
  /** The statements of the write, without the outbox's background statements. */
  statements: LoggedStatement[];
  /** Statements naming the aggregate table. */
  aggregateStatements: LoggedStatement[];
  /** Statements inserting into the events table. */
  eventInserts: LoggedStatement[];
  /** Transactions started (START TRANSACTION / BEGIN), savepoints not included. */
  transactions: LoggedStatement[];
  commits: LoggedStatement[];
  rollbacks: LoggedStatement[];
  /** `SELECT ... FOR UPDATE` (or FOR NO KEY UPDATE) of the aggregate table: the locked path's read. */
  lockedReads: LoggedStatement[];
  /** Statements that write the aggregate row and insert the event at once: the fast path's statement. */
  oneStatementWrites: LoggedStatement[];
}

export function writeShape(statements: LoggedStatement[], tables: { aggregate: string; events: string }): WriteShape {
  const own = statements.filter((statement) => !isBackground(statement, statements));
  const aggregateStatements = own.filter((s) => names(s.sql, tables.aggregate));
  // Transaction control counts when its connection wrote ours (a worker's or relay's does not);
  // logged without a query runner it cannot be told apart, so it counts.
  const writers = new Set(own.filter((s) => names(s.sql, tables.aggregate) || inserts(s.sql, tables.events)).map((s) => s.runner));
  const ours = (s: LoggedStatement) => s.runner === undefined || writers.has(s.runner);
  return {
    statements: own,
    aggregateStatements,
    eventInserts: own.filter((s) => inserts(s.sql, tables.events)),
    transactions: own.filter((s) => startsTransaction(s.sql) && ours(s)),
    commits: own.filter((s) => commits(s.sql) && ours(s)),
    rollbacks: own.filter((s) => rollsBack(s.sql) && ours(s)),
    lockedReads: aggregateStatements.filter((s) => /^\s*SELECT\b/i.test(s.sql) && /\bFOR\s+(NO\s+KEY\s+)?UPDATE\b/i.test(s.sql)),
    oneStatementWrites: aggregateStatements.filter(
      (s) => (updates(s.sql, tables.aggregate) || inserts(s.sql, tables.aggregate)) && inserts(s.sql, tables.events),
    ),
  };
}

/** A short, readable listing of statements for failure messages. */
export function listing(statements: LoggedStatement[]): string {
  return statements.map((s, i) => `${i + 1}. ${s.sql.replace(/\s+/g, ' ').slice(0, 220)}`).join('\n');
}

export interface Tables {
  aggregate: string;
  events: string;
}

/**
 * The write was the one-statement fast path: no transaction started by it, one statement naming
 * the aggregate table, which also inserts the event (and the outbox rows, with `outbox`).
 * `only`: nothing else at all was logged (tests without a queue or other traffic).
 */
export function expectOneStatementWrite(statements: LoggedStatement[], tables: Tables, options: { outbox?: boolean; only?: boolean } = {}): LoggedStatement {
  const shape = writeShape(statements, tables);
  const summary = {
    transactions: shape.transactions.length,
    lockedReads: shape.lockedReads.length,
    aggregateStatements: shape.aggregateStatements.length,
    oneStatementWrites: shape.oneStatementWrites.length,
    outboxInsert: shape.oneStatementWrites.some((s) => inserts(s.sql, 'es_outbox')),
    statements: options.only ? shape.statements.length : 1,
  };
  withListing(shape, () =>
    expect(summary).toEqual({ transactions: 0, lockedReads: 0, aggregateStatements: 1, oneStatementWrites: 1, outboxInsert: Boolean(options.outbox), statements: 1 }),
  );
  return shape.oneStatementWrites[0];
}

/** The write took the locked path: a transaction, and the aggregate row read FOR UPDATE. */
export function expectLockedWrite(statements: LoggedStatement[], tables: Tables): WriteShape {
  const shape = writeShape(statements, tables);
  withListing(shape, () =>
    expect({
      transactionStarted: shape.transactions.length >= 1,
      lockedRead: shape.lockedReads.length >= 1,
      committedOrRolledBack: shape.commits.length + shape.rollbacks.length >= 1,
    }).toEqual({ transactionStarted: true, lockedRead: true, committedOrRolledBack: true }),
  );
  return shape;
}

/** Runs an assertion about a write; its failure message lists the write's statements. */
export function withListing(shape: WriteShape, assertion: () => void): void {
  try {
    assertion();
  } catch (error) {
    if (error instanceof Error) error.message += `\n\nStatements of the write:\n${listing(shape.statements)}`;
    throw error;
  }
}

/** The library's SELECT of an aggregate's column defaults (`SELECT (default)::type AS "d0", ...`), made before creating a row. */
export function isColumnDefaultsQuery(sql: string): boolean {
  return /^\s*SELECT\s+\(.*?\s+AS\s+"d0"/is.test(sql) && !/\bFROM\b/i.test(sql);
}

/**
 * The write went through a transaction of its own, committed once, without the one-statement
 * path: under the row lock (SELECT ... FOR UPDATE), or with manager.save's UPDATE conditional on
 * the version.
 */
export function expectTransactionalWrite(statements: LoggedStatement[], tables: Tables): WriteShape {
  const shape = writeShape(statements, tables);
  withListing(shape, () =>
    expect({
      transactions: shape.transactions.length,
      commits: shape.commits.length,
      oneStatementWrites: shape.oneStatementWrites.length,
      eventInserted: shape.eventInserts.length >= 1,
    }).toEqual({ transactions: 1, commits: 1, oneStatementWrites: 0, eventInserted: true }),
  );
  return shape;
}
