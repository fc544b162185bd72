import path from 'node:path';
import { EventSourcing } from 'typeorm-event-sourcing';
import { eventMatchers, resetEventStore } from 'typeorm-event-sourcing/testing';
import { migratedDataSource } from '../../examples/docs/migrations';
import { run as runCommands } from '../../examples/docs/commands';
import { run as runReactors } from '../../examples/docs/reactors';
import { activationScenarios, wrongExpectation } from '../../examples/docs/testing';
import { ActivateSubscription } from '../../examples/subscriptions/commands';
import { run as runReplay } from '../../examples/docs/replay';
import { run as runWritingEvents } from '../../examples/docs/writing-events';
import { allEntities } from '../../examples/subscriptions/entities';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated } from '../../examples/subscriptions/model';
import type { DataSource } from 'typeorm';
import { freshDatabase, testDataSource } from '../support/database';
import { codeBlocks, docFiles, region, root } from '../../scripts/doc-includes';

/**
 * The docs cannot rot: every TypeScript block in README.md and docs/ is a region of a file under
 * examples/ (type-checked with the suite), and those files run here against real PostgreSQL.
 */
const tsBlocks = docFiles().flatMap(codeBlocks).filter((block) => block.language === 'ts' || block.language === 'typescript');

test.each(tsBlocks.map((block) => [`${block.doc}: ${block.include ?? block.code.split('\n')[0]}`, block] as const))(
  'code block %s is a region of a runnable example',
  (_name, block) => {
    // Regenerate with `npm run docs:sync` after changing an example.
    expect(block.include).toBeDefined();
    const [file, name] = block.include!.split('#');
    expect(block.code).toBe(region(path.join(root, file), name));
  },
);

describe('the examples the docs show', () => {
  test('writing events (docs/concepts.md)', async () => {
    const dataSource = await testDataSource('docs_writing', entities);
    const es = await EventSourcing.attach(dataSource);
    try {
      const result = await runWritingEvents(dataSource, es);
      expect(result).toEqual({
        afterActivation: { status: 'active', version: 2, eventVersion: 2 },
        conflict: 'Subscription 1: expected version 1, but it is at version 2',
        final: { status: 'cancelled', version: 5 },
        failed: 'Subscription.Cancelled.apply failed on Subscription 1: subscription is already cancelled',
      });
      const history = await es.history(Subscription, 1);
      expect(history.map((event) => event.type)).toEqual([
        'Subscription.Created',
        'Subscription.Activated',
        'Subscription.Cancelled',
        'Subscription.Activated',
        'Subscription.Cancelled',
      ]);
    } finally {
      await es.close();
      await dataSource.destroy();
    }
  });

  test('reactors (docs/reactors.md)', async () => {
    const dataSource = await testDataSource('docs_reactors', allEntities);
    try {
      const result = await runReactors(dataSource, process.env.REDIS_URL!, `docs-reactors-${Date.now()}`);
      expect(result).toEqual({
        activatedMetadata: { requestId: 'req-42' },
        rewardCount: 1,
        recountMetadata: { requestId: 'req-42', causationId: 'subscription_events/2', correlationId: 'subscription_events/2' },
        mails: ['NewSubscriberNotification creator@example.com', 'SubscriptionConfirmation ada@example.com'],
        workerRunning: true,
      });
    } finally {
      await dataSource.destroy();
    }
  });

  test('commands (docs/commands.md)', async () => {
    const dataSource = await testDataSource('docs_commands', entities);
    const es = await EventSourcing.attach(dataSource);
    try {
      expect(await runCommands(dataSource)).toEqual({
        eventType: 'Subscription.Activated',
        status: 'active',
        again: null,
        invalid: 'ActivateSubscription is invalid: stripeKey should not be empty',
        conflict: 'Subscription 1: expected version 1, but it is at version 2',
        written: 1,
      });
    } finally {
      await es.close();
      await dataSource.destroy();
    }
  });

  describe('testing (docs/testing.md)', () => {
    let dataSource: DataSource;
    let es: EventSourcing;
    // #region setup
    expect.extend(eventMatchers); // adds expect(...).toHaveEmitted(EventClass, data?)

    beforeAll(async () => {
      dataSource = await testDataSource('docs_testing', entities);
      es = await EventSourcing.attach(dataSource);
    });
    afterEach(() => resetEventStore(es)); // empties aggregate, events and outbox tables
    afterAll(async () => {
      await es.close();
      await dataSource.destroy();
    });
    // #endregion setup

    test('the scenarios pass', async () => {
      await activationScenarios();
    });

    test('a wrong expectation fails with a readable diff', async () => {
      await expect(wrongExpectation()).rejects.toThrow(/\+ actual - expected[\s\S]*\+\s+stripeKey: 'sub_66123'[\s\S]*-\s+stripeKey: 'sub_99999'/);
    });

    test('the matcher', async () => {
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
      const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
      // #region matcher
      const result = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });
      expect(result).toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_66123' });
      expect(result).not.toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_1' });
      // #endregion matcher
    });

    test('resetEventStore left nothing from the previous case', async () => {
      expect(await dataSource.manager.count(Subscription)).toBe(0);
    });
  });

  test('replay (docs/replay.md)', async () => {
    const dataSource = await testDataSource('docs_replay', entities);
    const es = await EventSourcing.attach(dataSource);
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const result = await runReplay(dataSource, es);
      expect(result).toEqual({
        history: ['1 Subscription.Created', '2 Subscription.Activated', '3 Subscription.Cancelled'],
        afterActivation: 'active',
        atThatMoment: 'active',
        mismatches: [{ id: 1, column: 'status', stored: 'hacked', replayed: 'cancelled' }],
        afterRebuild: [],
        progress: { processed: 1, total: 1, rebuilt: 0 },
      });
      expect(log).toHaveBeenCalledWith('1/1');
    } finally {
      log.mockRestore();
      await es.close();
      await dataSource.destroy();
    }
  });
});

test('a DataSource migrated as docs/schema.md shows: tables from the generated migration, the rest from eventSourcingMigration', async () => {
  const dataSource = migratedDataSource(await freshDatabase('docs_migrations'));
  await dataSource.initialize();
  try {
    const ran = await dataSource.runMigrations();
    expect(ran.map((migration) => migration.name)).toEqual(['InitialSchema1764000000000', 'EventSourcingSchema1764000000001']);
    // The generated migration matches the entities: nothing left for migration:generate to write.
    expect((await dataSource.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
    const es = await EventSourcing.attach(dataSource);
    try {
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 3 }));
      expect(created.position).toBeGreaterThan(0);
      await expect(dataSource.query(`UPDATE subscription_events SET version = 9`)).rejects.toThrow(/append-only: UPDATE on public.subscription_events refused/);
      await expect(dataSource.query(`DELETE FROM subscription_events`)).rejects.toThrow(/append-only: DELETE on public.subscription_events refused/);
    } finally {
      await es.close();
    }
  } finally {
    await dataSource.destroy();
  }
});
