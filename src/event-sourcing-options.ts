import type { EntityManager } from 'typeorm';
import type { Command } from './commands/command';
import type { Instrumentation } from './observability/instrumentation';
import type { Dispatcher } from './reactors/dispatcher';
import type { ReactorQueueOptions } from './reactors/reactor-queue-options';

/** Options of {@link EventSourcing.attach}. */
export interface EventSourcingOptions {
  /**
   * Create the database objects the library needs besides TypeORM's tables (position sequence,
   * outbox, append-only triggers) while attaching. Production schemas get them from a migration.
   * @defaultValue the DataSource's `synchronize` option
   */
  createSchema?: boolean;
  /** Which reactors run for which events. */
  dispatcher?: Dispatcher;
  /** Where async reactor jobs go; required when the dispatcher has async reactors. */
  queue?: ReactorQueueOptions;
  /**
   * Receives errors nobody awaits: a failed hand-over to the queue (the relay retries it), a
   * worker or relay error, a throwing after-commit listener; and the `DirectWriteError`s of
   * aggregates with `directWrites: 'warn'`.
   * @defaultValue a warning through the DataSource's logger; direct writes through
   * `process.emitWarning` (type `DirectWriteWarning`), which Node prints to stderr
   */
  onError?: (error: unknown) => void;
  /**
   * Let `es.append` and commands write event, aggregate row and outbox rows in one statement
   * when the aggregate instance's stored state is known (loaded by TypeORM, or last written by
   * the library); see docs/concepts.md, "The fast path". `false` writes every event under the row
   * lock (`SELECT ... FOR UPDATE`), also through `manager.save(event)`, whose UPDATE is otherwise
   * conditional on the stored version.
   * @defaultValue true
   */
  fastPath?: boolean;
  /**
   * How the one-statement write is sent: as a named prepared statement, parsed and planned once
   * per connection, or `'unnamed'`, for connection poolers in transaction mode (PgBouncer) that
   * cannot keep a session's prepared statements.
   * @defaultValue 'named'
   */
  statements?: 'named' | 'unnamed';
  /**
   * Traces and metrics of the library's work: `openTelemetry()` from
   * `typeorm-event-sourcing/opentelemetry` (optional peer `@opentelemetry/api`); see
   * docs/observability.md. BullMQ's own job spans come from `queue.telemetry`.
   * @defaultValue none: nothing is recorded
   */
  instrumentation?: Instrumentation;
  /**
   * The EntityManager of the transaction the caller is in, for `es.append` and commands called
   * without a `manager`: they then write in that transaction, and commit or roll back with it.
   * Return undefined outside one. With `@nestjs-cls/transactional`:
   * `() => txHost.isTransactionActive() ? txHost.tx : undefined` (see docs/nestjs.md).
   * @defaultValue none: each call writes in a transaction of its own
   */
  currentManager?: () => EntityManager | undefined;
  /**
   * Builds the command instance of each `Command.call`, e.g. from a dependency-injection container
   * (a transient provider, so that every call gets its own instance). The NestJS module sets it.
   * @defaultValue `new CommandClass()`
   */
  commandFactory?: (command: new (...args: any[]) => Command<any>) => Command<any> | Promise<Command<any>>;
}

/** Options of {@link EventSourcing.append}. */
export interface AppendOptions {
  /** The version the aggregate must be at before this event; see `ConcurrencyError`. */
  expectedVersion?: number;
  /** Write in this manager's transaction instead of a transaction of its own. */
  manager?: EntityManager;
}
