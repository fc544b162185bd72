import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { ConcurrencyError, ConnectionLostError, EventSourcing, EventSourcingError } from '../../src';
import { CommandLoop, definedOnly, env, type Handlers, optionalNumber, runChild, send, sleep } from './child-harness';
import { Order, OrderPlaced } from './model';
import { BumpOrder, OrderBumped, outageEntities } from './outage-model';
import { recordingDispatcher } from './reactor-runs';

/**
 * An application process of the outage tests (PostgreSQL or Redis restarted, frozen or gone),
 * driven like app.ts: JSON commands on stdin, one JSON reply per command on stdout.
 *
 * Environment: DATABASE_URL, REDIS_URL, QUEUE_NAME; optional ATTEMPTS, BACKOFF, CLOSE_TIMEOUT,
 * KEEP_OUTBOX_UNTIL, RELAY_GRACE, RELAY_INTERVAL, RECHECK_AFTER.
 *
 * Commands:
 *   {"cmd":"create","count":n}            n new orders, kept in memory; replies {"type":"created","ids":[...]}
 *   {"cmd":"save","count":n}              n new orders, not kept; replies {"type":"saved","durations":[ms per save],"errors":[...]}
 *   {"cmd":"write-loop","mode":"append"|"command"}
 *                                          one loop per order, each bumping its own order until stopped
 *                                          (es.append with the instance's version expected, or BumpOrder.call);
 *                                          replies {"type":"looping"}
 *   {"cmd":"stats"}                        what the loops saw so far (see WriterStats)
 *   {"cmd":"stop-loop"}                    stops the loops, waits for them, replies with the stats
 *   {"cmd":"worker", ...ReactorWorkerOptions}   es.worker(), ready; replies {"type":"worker"}
 *   {"cmd":"close"}                        es.close() and dataSource.destroy(); replies {"type":"closed","ms":...},
 *                                          then the process must exit by itself
 *
 * Every async reactor run inserts one row (phase 'done') into reactor_runs. Library errors nobody
 * awaits (onError) are sent as {"type":"error","name","code","message"}.
 */

/** What the write loops saw; the `stats` and `stop-loop` replies (type-only import for the tests). */
export interface WriterStats {
  attempted: number;
  committed: number;
  /** Failed writes by error class name. */
  errors: Record<string, number>;
  /** One message per error class, for the report. */
  samples: Record<string, string>;
  /** Errors that are not EventSourcingError subclasses: what the library let through unnamed. */
  raw: string[];
  /** Broken promises of the library: an instance or event not put back, an instance ahead of its row. */
  violations: string[];
  /** Failed writes whose transaction had committed after all (the row was found one version further). */
  committedAnyway: number;
  /** Rejections nobody handled: a library call left dangling. */
  unhandled: string[];
}

const stats: WriterStats = { attempted: 0, committed: 0, errors: {}, samples: {}, raw: [], violations: [], committedAnyway: 0, unhandled: [] };

process.on('unhandledRejection', (reason) => {
  stats.unhandled.push((reason as Error)?.stack ?? String(reason));
});

/** The columns the write path changes on the caller's instance. */
function stateOf(order: Order): string {
  return JSON.stringify({ id: order.id, version: order.version, number: order.number, status: order.status });
}

async function main(): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url: env('DATABASE_URL'), entities: outageEntities, synchronize: false, logging: false });
  await dataSource.initialize();
  const closeTimeout = optionalNumber('CLOSE_TIMEOUT');
  const es = await EventSourcing.attach(dataSource, {
    dispatcher: recordingDispatcher(),
    createSchema: false,
    queue: {
      connection: env('REDIS_URL'),
      name: env('QUEUE_NAME'),
      attempts: optionalNumber('ATTEMPTS') ?? 3,
      backoff: optionalNumber('BACKOFF') ?? 200,
      ...(process.env.KEEP_OUTBOX_UNTIL ? { keepOutboxUntil: process.env.KEEP_OUTBOX_UNTIL as 'enqueued' | 'completed' } : {}),
      ...(closeTimeout === undefined ? {} : { closeTimeout }),
      relay: definedOnly({ grace: optionalNumber('RELAY_GRACE'), interval: optionalNumber('RELAY_INTERVAL'), recheckAfter: optionalNumber('RECHECK_AFTER') }),
    },
    onError: (error) =>
      send({ type: 'error', name: (error as Error)?.constructor?.name, code: (error as EventSourcingError)?.code, message: (error as Error)?.message ?? String(error) }),
  });

  const orders = new Map<number, Order>();
  let stopping = false;
  let loops: Promise<void>[] = [];

  /** The row's version, or undefined while the database cannot be reached. */
  async function storedVersion(id: number): Promise<number | undefined> {
    try {
      const [row] = await dataSource.query(`SELECT version FROM reliability_orders WHERE id = $1`, [id]);
      return row.version;
    } catch {
      return undefined;
    }
  }

  async function reload(order: Order): Promise<void> {
    const fresh = await dataSource.manager.findOneByOrFail(Order, { id: order.id });
    Object.assign(order, { version: fresh.version, number: fresh.number, status: fresh.status });
  }

  /** After a failed write: the library's promises about the instance and the event, then the row. */
  /** Orders with a write reported in doubt whose outcome no check has seen yet. */
  const inDoubt = new Set<number>();

  async function afterFailure(order: Order, before: string, event: OrderBumped | undefined, error: unknown): Promise<void> {
    const name = (error as Error)?.constructor?.name ?? typeof error;
    stats.errors[name] = (stats.errors[name] ?? 0) + 1;
    stats.samples[name] ??= (error as Error)?.message ?? String(error);
    if (!(error instanceof EventSourcingError)) stats.raw.push((error as Error)?.stack ?? String(error));
    if (error instanceof ConnectionLostError && error.retryable !== true) stats.violations.push(`ConnectionLostError not retryable: ${error.message}`);
    // A command reloads its instance after a conflict before retrying, so only a plain append
    // must leave it exactly as before; the row comparison below covers both.
    if (event && stateOf(order) !== before) stats.violations.push(`order ${order.id} not put back after ${name}: ${stateOf(order)}, was ${before}`);
    if (event && (event.id !== undefined || event.version !== undefined || event.createdAt !== undefined)) {
      stats.violations.push(`event of order ${order.id} not put back after ${name}: id ${event.id}, version ${event.version}`);
    }
    // An instance ahead of its row is the phantom state: the next write would trust a version the
    // database never reached. A conflict with a lower actual version says the same.
    if (error instanceof ConcurrencyError && error.expectedVersion !== undefined && error.actualVersion !== undefined && error.actualVersion < error.expectedVersion) {
      stats.violations.push(`order ${order.id}: instance at version ${error.expectedVersion} ahead of its row at ${error.actualVersion}`);
    }
    // A write reported in doubt may be found committed only by a later failure's check, when the
    // database was away during its own: that later error owes no inDoubt of its own.
    if (error instanceof ConnectionLostError && error.inDoubt) inDoubt.add(order.id);
    const stored = await storedVersion(order.id);
    if (stored === undefined) return; // the database is away: the expected version checks the instance on the next write
    if (order.version > stored) stats.violations.push(`order ${order.id}: instance at version ${order.version} ahead of its row at ${stored}`);
    if (stored > order.version) {
      stats.committedAnyway += 1;
      // A write that committed although it was reported lost must have said it might have.
      if (error instanceof ConnectionLostError && !error.inDoubt && !inDoubt.has(order.id)) {
        stats.violations.push(`order ${order.id}: committed, but its ConnectionLostError was not inDoubt: ${error.message}`);
      }
      await reload(order).catch(() => undefined);
    }
    inDoubt.delete(order.id);
  }

  async function loop(order: Order, mode: 'append' | 'command'): Promise<void> {
    while (!stopping) {
      const before = stateOf(order);
      const event = mode === 'append' ? OrderBumped.build({ order, by: 1 }) : undefined;
      stats.attempted += 1;
      try {
        if (event) await es.append(event, { expectedVersion: order.version });
        else await BumpOrder.call({ order, by: 1 });
        stats.committed += 1;
        // Written at the version the instance held: an earlier write in doubt did not commit.
        inDoubt.delete(order.id);
        if (order.version <= JSON.parse(before).version) stats.violations.push(`order ${order.id}: write resolved but the instance stayed at ${order.version}`);
      } catch (error) {
        await afterFailure(order, before, event, error);
        await sleep(50);
      }
    }
  }

  const commands = new CommandLoop();
  const handlers: Handlers = {
    async create({ count }) {
      const ids: number[] = [];
      for (let i = 0; i < count; i += 1) {
        const placed = await es.append(OrderPlaced.build({ number: 0 }));
        const order = await dataSource.manager.findOneByOrFail(Order, { id: placed.aggregateId });
        orders.set(order.id, order);
        ids.push(order.id);
      }
      return { type: 'created', ids };
    },
    async save({ count }) {
      const durations: number[] = [];
      const errors: string[] = [];
      for (let i = 0; i < count; i += 1) {
        const started = performance.now();
        try {
          await es.append(OrderPlaced.build({ number: i }));
        } catch (error) {
          errors.push((error as Error)?.stack ?? String(error));
        }
        durations.push(performance.now() - started);
      }
      return { type: 'saved', durations, errors };
    },
    async 'write-loop'({ mode }) {
      stopping = false;
      loops = [...orders.values()].map((order) => loop(order, mode));
      return { type: 'looping', loops: loops.length };
    },
    async stats() {
      return { type: 'stats', ...stats };
    },
    async 'stop-loop'() {
      stopping = true;
      await Promise.all(loops);
      return { type: 'stats', ...stats };
    },
    async worker({ cmd: _cmd, ...options }) {
      const worker = es.worker(options);
      await worker.waitUntilReady();
      return { type: 'worker' };
    },
    async close() {
      const closed = await commands.close(es, dataSource);
      // Still here a while later: say what keeps the process alive, for the parent's failure message.
      setTimeout(() => {
        const handles = (process as unknown as { _getActiveHandles(): Array<{ constructor: { name: string }; remoteAddress?: string; remotePort?: number }> })._getActiveHandles();
        process.stderr.write(`alive after close: ${JSON.stringify(handles.map((handle) => [handle.constructor.name, handle.remoteAddress, handle.remotePort]))}\n`);
      }, 3000).unref();
      return closed;
    },
  };

  // Commands run one at a time, in order; the write loops run beside them.
  commands.serve(handlers);
}

runChild(main);
