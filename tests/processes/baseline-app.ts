import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing } from '../../src';
import { CommandLoop, env, type Handlers, optionalNumber, runChild, send, sleep } from './child-harness';
import { LegacyAccount, LegacyAccountImported, legacyEntities } from '../support/legacy-models';

/**
 * A process running es.baseline, to be SIGKILLed part-way by the resume test.
 *
 * Environment: DATABASE_URL, APPLICATION_NAME (its connections' name in pg_stat_activity);
 * optional PAUSE_AT: the baseline events of this run are then dispatched to a trigger reactor,
 * which stops inside the batch's open transaction once it has seen that many events (the
 * `paused` message), so the parent kills the process with part of a batch written, uncommitted.
 *
 * Commands:
 *   {"cmd":"baseline","batchSize":n}   es.baseline; sends {"type":"progress",processed,total,baselined,at}
 *                                      after each batch, then replies {"type":"baselined",processed,baselined}
 *   {"cmd":"close"}                    es.close() and dataSource.destroy(); replies {"type":"closed"}
 */

async function main(): Promise<void> {
  const pauseAt = optionalNumber('PAUSE_AT');
  const dataSource = new DataSource({
    type: 'postgres',
    url: env('DATABASE_URL'),
    applicationName: env('APPLICATION_NAME'),
    entities: legacyEntities,
    synchronize: false,
    logging: false,
  });
  await dataSource.initialize();
  let seen = 0;
  const dispatcher = new Dispatcher().on(LegacyAccountImported, {
    name: 'PauseInsideBatch',
    trigger: async (event: LegacyAccountImported) => {
      seen += 1;
      if (seen !== pauseAt) return;
      send({ type: 'paused', seen, aggregateId: event.aggregateId });
      // Held inside the transaction until the parent's SIGKILL; bounded so an orphan still ends.
      await sleep(60_000);
      throw new Error('PAUSE_AT: the parent never killed this process');
    },
  });
  const es = await EventSourcing.attach(dataSource, { dispatcher, createSchema: false });
  const commands = new CommandLoop();
  const handlers: Handlers = {
    async baseline({ batchSize }) {
      const result = await es.baseline(LegacyAccount, {
        batchSize,
        dispatch: pauseAt !== undefined,
        onProgress: (progress) => send({ type: 'progress', ...progress, at: Date.now() }),
      });
      return { type: 'baselined', ...result };
    },
    async close() {
      return commands.close(es, dataSource);
    },
  };
  commands.serve(handlers);
}

runChild(main);
