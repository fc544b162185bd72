import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { EventSourcing, Projection } from '../../src';
import { recordHandled } from '../support/projection-read-model';
import { CommandLoop, env, type Handlers, optionalNumber, runChild, send, sleep } from './child-harness';
import { OrderNoted, OrderPlaced, orderEntities } from './model';

/**
 * A process running the projection 'orders-projected' (every OrderPlaced and OrderNoted into the
 * handled-events table, as `handled_by` = RUNNER), to be SIGKILLed by the projection crash test.
 *
 * Environment: DATABASE_URL, RUNNER (its name in the read model); optional PAUSE_AT: the handler
 * stops inside its batch's open transaction once this process has handled that many events (the
 * `paused` message), so the parent kills it with part of a batch handled, uncommitted; optional
 * HANDLER_DELAY_MS: a sleep in every handler call, so batches take a while.
 *
 * Commands:
 *   {"cmd":"run","batchSize":n,"pollInterval":ms}  starts es.projections.run; replies {"type":"running"}
 *   {"cmd":"stop"}                                  aborts it; replies {"type":"stopped",processed}
 *   {"cmd":"close"}                                 es.close() and dataSource.destroy(); replies {"type":"closed"}
 */

async function main(): Promise<void> {
  const runner = env('RUNNER');
  const pauseAt = optionalNumber('PAUSE_AT');
  const delay = optionalNumber('HANDLER_DELAY_MS') ?? 0;
  const dataSource = new DataSource({ type: 'postgres', url: env('DATABASE_URL'), applicationName: runner, entities: orderEntities, synchronize: false, logging: false });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource, {
    createSchema: false,
    onError: (error) => send({ type: 'error', message: (error as Error)?.message ?? String(error) }),
  });
  let seen = 0;
  const projection = new Projection('orders-projected').on([OrderPlaced, OrderNoted], async (event, manager) => {
    seen += 1;
    if (delay) await sleep(delay);
    await recordHandled(manager, event, runner);
    if (seen !== pauseAt) return;
    send({ type: 'paused', seen, eventId: event.id });
    // Held inside the batch's transaction until the parent's SIGKILL; bounded so an orphan still ends.
    await sleep(60_000);
    throw new Error('PAUSE_AT: the parent never killed this process');
  });
  const commands = new CommandLoop();
  let stop: AbortController | undefined;
  let running: Promise<{ processed: number }> | undefined;
  const handlers: Handlers = {
    async run({ batchSize, pollInterval }) {
      stop = new AbortController();
      running = es.projections.run(projection, { signal: stop.signal, batchSize, pollInterval, retryDelay: 50, maxRetryDelay: 500 });
      return { type: 'running' };
    },
    async stop() {
      stop?.abort();
      return { type: 'stopped', processed: (await running)?.processed ?? 0 };
    },
    async close() {
      return commands.close(es, dataSource);
    },
  };
  commands.serve(handlers);
}

runChild(main);
