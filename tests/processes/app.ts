import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { ConcurrencyError, Dispatcher, EventSourcing, type ReactorContext } from '../../src';
import { CommandLoop, definedOnly, env, type Handlers, optionalNumber, runChild, send, sleep } from './child-harness';
import { EFFECTS_TABLE, Order, orderEntities, OrderNoted, OrderPlaced, reactorNames } from './model';
import { recordRun } from './reactor-runs';

/**
 * An application process of the reliability tests, driven by its parent: JSON commands on stdin,
 * one per line; JSON messages on stdout, one per line. The database schema exists already (the
 * parent created it).
 *
 * Environment: DATABASE_URL, REDIS_URL (may point at a closed port), QUEUE_NAME,
 * REACTOR_DELAY_MS (how long each reactor run sleeps between its 'started' and 'done' rows),
 * RELAY_GRACE / RELAY_INTERVAL (the queue's relay options).
 *
 * Every reactor run writes a 'started' row to reactor_runs, then its effect (reactor_effects,
 * ON CONFLICT DO NOTHING), sleeps, and writes a 'done' row. A trigger reactor SIGKILLs the process
 * for an OrderPlaced whose data says crash: 'trigger'.
 *
 * Commands:
 *   {"cmd":"save","count":n,"perTransaction":k}  write n OrderPlaced events, k per transaction;
 *                                                 replies {"type":"saved","durations":[ms per transaction],"errors":[...]}
 *   {"cmd":"kill-after-commit"}                   SIGKILL this process in the next after-commit listener call,
 *                                                 i.e. after COMMIT, before the hand-over's Redis I/O
 *   {"cmd":"crash","at":"before-commit"|"trigger","count":n}
 *                                                 n OrderPlaced events in one transaction, then SIGKILL inside it:
 *                                                 after the last es.append returned (before-commit), or in the
 *                                                 trigger reactor of the last event (trigger); says
 *                                                 {"type":"crashing","at":...,"uncommitted":[event ids]} first
 *   {"cmd":"contend","aggregateIds":[..],"count":n,"concurrency":c,"maxRetries":r,"backoff":ms,"backoffCap":ms}
 *                                                 c concurrent writers, each committing n OrderNoted events to
 *                                                 aggregates picked at random from the list: load, es.append with
 *                                                 the loaded version as expectedVersion, retry on ConcurrencyError
 *                                                 up to r times after a random wait below min(backoff * 2^retry,
 *                                                 backoffCap); replies {"type":"contended","writers":[{writer,
 *                                                 committed:{[id]:n},conflicts,gaveUp}],"errors":{[class]:n},"anomalies":[...]}
 *   {"cmd":"worker", ...ReactorWorkerOptions, "waitUntilReady":bool}   es.worker(); replies {"type":"worker"}
 *   {"cmd":"relay","grace":ms,"interval":ms}      es.relay(); replies {"type":"relay"}
 *   {"cmd":"close"}                               es.close() and dataSource.destroy(); replies {"type":"closed","ms":...},
 *                                                 then lets the event loop drain: the process must exit by itself
 */

const delay = optionalNumber('REACTOR_DELAY_MS') ?? 0;

function reactor(name: string) {
  const run = async (event: OrderPlaced, context: ReactorContext) => {
    await recordRun(event, context, 'started');
    // Before the sleep, so that a run interrupted mid-job has made it and its rerun finds it.
    await context.manager.query(`INSERT INTO ${EFFECTS_TABLE} (event_id, reactor, pid, job_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [
      event.id,
      context.reactor,
      process.pid,
      context.job?.id ?? null,
    ]);
    if (delay > 0) await sleep(delay);
    await recordRun(event, context, 'done');
  };
  Object.defineProperty(run, 'name', { value: name });
  return run;
}

async function main(): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url: env('DATABASE_URL'), entities: orderEntities, synchronize: false, logging: false });
  await dataSource.initialize();
  const dispatcher = new Dispatcher();
  for (const name of reactorNames) dispatcher.on(OrderPlaced, { async: reactor(name), name });
  // Ids of the events appended in the current `crash` transaction: what the crash leaves uncommitted.
  const appended: number[] = [];
  const crash = (at: string, uncommitted: number[]) => {
    send({ type: 'crashing', at, uncommitted });
    // stdout is a pipe: synchronous on Linux, so the line is out before the kill.
    process.kill(process.pid, 'SIGKILL');
  };
  dispatcher.on(OrderPlaced, {
    name: 'CrashTrigger',
    trigger: (event: OrderPlaced) => {
      if (event.crash === 'trigger') crash('trigger', [...appended, event.id]);
    },
  });
  const es = await EventSourcing.attach(dataSource, {
    dispatcher,
    createSchema: false,
    queue: {
      connection: env('REDIS_URL'),
      name: env('QUEUE_NAME'),
      attempts: 3,
      backoff: 200,
      relay: definedOnly({ grace: optionalNumber('RELAY_GRACE'), interval: optionalNumber('RELAY_INTERVAL') }),
    },
    onError: (error) => send({ type: 'error', message: (error as Error)?.message ?? String(error) }),
  });

  const commands = new CommandLoop();
  const handlers: Handlers = {
    async save({ count, perTransaction = 1 }) {
      const durations: number[] = [];
      const errors: string[] = [];
      for (let done = 0; done < count; done += perTransaction) {
        const size = Math.min(perTransaction, count - done);
        const started = performance.now();
        try {
          await dataSource.transaction(async (manager) => {
            for (let i = 0; i < size; i += 1) await es.append(OrderPlaced.build({ number: done + i }), { manager });
          });
        } catch (error) {
          errors.push((error as Error)?.stack ?? String(error));
        }
        durations.push(performance.now() - started);
      }
      return { type: 'saved', durations, errors };
    },
    async 'kill-after-commit'() {
      es.afterCommit(() => process.kill(process.pid, 'SIGKILL'));
      return { type: 'armed' };
    },
    async crash({ at, count }) {
      if (at !== 'before-commit' && at !== 'trigger') throw new Error(`crash: unknown point ${at}`);
      await dataSource.transaction(async (manager) => {
        for (let i = 0; i < count; i += 1) {
          const last = i === count - 1;
          const event = await es.append(OrderPlaced.build({ number: i, ...(last && at === 'trigger' ? { crash: 'trigger' as const } : {}) }), { manager });
          appended.push(event.id);
        }
        crash(at, [...appended]);
      });
      throw new Error(`crash at ${at}: still alive`);
    },
    async contend({ aggregateIds, count, concurrency, maxRetries = 1000, backoff = 10, backoffCap = 2000 }) {
      const ids = aggregateIds as number[];
      const repository = dataSource.getRepository(Order);
      const errors: Record<string, number> = {};
      const anomalies: string[] = [];
      const started = performance.now();
      const writers = await Promise.all(
        Array.from({ length: concurrency as number }, async (_, index) => {
          const writer = `${process.pid}-${index}`;
          const result = { writer, committed: {} as Record<number, number>, conflicts: 0, gaveUp: 0 };
          for (let seq = 0; seq < count; seq += 1) {
            const id = ids[Math.floor(Math.random() * ids.length)];
            for (let attempt = 0; ; attempt += 1) {
              const order = await repository.findOneByOrFail({ id });
              const loaded = order.version;
              const event = OrderNoted.build({ order, writer, seq });
              try {
                await es.append(event, { expectedVersion: loaded });
                result.committed[id] = (result.committed[id] ?? 0) + 1;
                if (event.version !== loaded + 1 || order.version !== loaded + 1) anomalies.push(`${writer}: committed version ${event.version}/${order.version} after ${loaded}`);
                break;
              } catch (error) {
                const name = (error as Error)?.constructor?.name ?? typeof error;
                errors[name] = (errors[name] ?? 0) + 1;
                if (!(error instanceof ConcurrencyError)) {
                  anomalies.push(`${writer}: ${(error as Error)?.stack ?? String(error)}`);
                  break;
                }
                // The conflict as documented, and nothing of the failed write left on the caller's objects.
                const expected = `Order ${id}: expected version ${loaded}, but it is at version ${error.actualVersion}`;
                const consistent =
                  error.code === 'CONCURRENCY' &&
                  error.retryable === false &&
                  error.aggregateId === id &&
                  error.expectedVersion === loaded &&
                  typeof error.actualVersion === 'number' &&
                  error.actualVersion > loaded &&
                  error.message === expected &&
                  order.version === loaded &&
                  event.id === undefined &&
                  event.version === undefined;
                if (!consistent) anomalies.push(`${writer}: inconsistent conflict ${error.message} (order at ${order.version}, event ${event.id}/${event.version})`);
                result.conflicts += 1;
                if (attempt >= maxRetries) {
                  result.gaveUp += 1;
                  break;
                }
                // Exponential backoff with full jitter: without it the losers of one round all
                // collide again in the next, and 64 writers on one row waste most of their work.
                await sleep(Math.random() * Math.min(2 ** Math.min(attempt, 10) * backoff, backoffCap));
              }
            }
          }
          return result;
        }),
      );
      return { type: 'contended', writers, errors, anomalies, ms: performance.now() - started };
    },
    async worker({ waitUntilReady = true, cmd: _cmd, ...options }) {
      const worker = es.worker(options);
      if (waitUntilReady) await worker.waitUntilReady();
      return { type: 'worker' };
    },
    async relay({ cmd: _cmd, ...options }) {
      es.relay(options);
      return { type: 'relay' };
    },
    async close() {
      return commands.close(es, dataSource);
    },
  };

  commands.serve(handlers);
}

runChild(main);
