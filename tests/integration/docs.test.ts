import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { EventSourcing } from 'typeorm-event-sourcing';
import { migratedDataSource } from '../../examples/docs/migrations';
import { run as runCommands } from '../../examples/docs/commands';
import { run as runReactors } from '../../examples/docs/reactors';
import { run as runMigrating } from '../../examples/docs/migrating';
import { run as runNaming } from '../../examples/docs/naming';
import { MonthlySubscribers, run as runProjections, writeEarlierEvents } from '../../examples/docs/projections';
import { horizonPassed } from '../support/projection-read-model';
import { run as runReplay } from '../../examples/docs/replay';
import { run as runWritingEvents } from '../../examples/docs/writing-events';
import { allEntities } from '../../examples/subscriptions/entities';
import { entities, Subscription, SubscriptionCreated } from '../../examples/subscriptions/model';
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

test.each(docFiles().map((doc) => [path.relative(root, doc), doc] as const))(
  '%s shows where every example comes from: its imports, or a link to the whole file',
  (_name, doc) => {
    const text = readFileSync(doc, 'utf8');
    const blocks = codeBlocks(doc).filter((block) => block.include);
    const linked = new Set(
      [...text.matchAll(/\]\(([^)#\s]+\.ts)(?:#[^)]*)?\)/g)].map((match) => path.relative(root, path.resolve(path.dirname(doc), match[1]))),
    );
    const unexplained: string[] = [];
    const seen = new Set<string>();
    for (const block of blocks) {
      const [file, name] = block.include!.split('#');
      if (name === 'imports') seen.add(file);
      else if (!seen.has(file) && !linked.has(file)) unexplained.push(block.include!);
    }
    expect(unexplained).toEqual([]);
    for (const file of linked) expect(existsSync(path.join(root, file))).toBe(true);
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
      const result = await runReactors(dataSource, process.env.REDIS_URL!);
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
        mismatches: [{ reason: 'drift', id: 1, column: 'status', stored: 'hacked', replayed: 'cancelled' }],
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

test('projections (docs/projections.md): a monthly report from existing events, caught up, then run live', async () => {
  const dataSource = await testDataSource('docs_projections', [...entities, MonthlySubscribers]);
  const es = await EventSourcing.attach(dataSource);
  try {
    const month = new Date().toISOString().slice(0, 7);
    await writeEarlierEvents(dataSource, es);
    // Another test file's open transaction would hold the catch-up below back (see projections.md).
    await horizonPassed(dataSource);
    const result = await runProjections(dataSource, es);
    // A month boundary passed during the run would split the counts; the totals hold either way.
    const total = (rows: { activated: number; cancelled: number }[]) =>
      rows.reduce((sum, row) => ({ activated: sum.activated + row.activated, cancelled: sum.cancelled + row.cancelled }), { activated: 0, cancelled: 0 });
    expect(result.processed).toBe(4);
    expect(total(result.afterCatchUp)).toEqual({ activated: 3, cancelled: 1 });
    expect(total(result.afterRun)).toEqual({ activated: 4, cancelled: 1 });
    expect(result.afterRun.map((row) => row.month)).toContain(month);
    expect(result.status).toEqual({ name: 'monthly-subscribers', lag: { events: 0, seconds: 0 }, lastError: null, position: 9 });
    expect(result.rebuilt).toEqual({ processed: 5, mode: 'swap' });
    const byMonth = (rows: { month: string }[]) => [...rows].sort((a, b) => a.month.localeCompare(b.month));
    expect(byMonth(result.afterRebuild)).toEqual(byMonth(result.afterRun));
    // The table was swapped for a fresh one under the same names: migration:generate stays quiet.
    expect((await dataSource.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
  } finally {
    await es.close();
    await dataSource.destroy();
  }
});

test('migrating a CRUD table (docs/migrating-crud-models.md): noEvents, baseline, no drift, lazy adoption', async () => {
  const dataSource = await testDataSource('docs_migrating', entities);
  const es = await EventSourcing.attach(dataSource);
  try {
    expect(await runMigrating(dataSource, es)).toEqual({
      waiting: [
        { reason: 'noEvents', id: 1, column: 'version', stored: 0, replayed: 0 },
        { reason: 'noEvents', id: 2, column: 'version', stored: 0, replayed: 0 },
      ],
      result: { processed: 2, baselined: 2 },
      drift: [],
      again: { processed: 0, baselined: 0 },
      activatedVersion: 2,
      lateHistory: ['1 Subscription.Imported', '2 Subscription.Activated'],
      isActivation: true,
    });
    expect(await es.verify(Subscription)).toEqual([]);
  } finally {
    await es.close();
    await dataSource.destroy();
  }
});

test('a snake_case naming strategy (docs/schema.md): aggregate columns follow it, events tables are snake_case anyway', async () => {
  expect(await runNaming(await freshDatabase('docs_naming'))).toEqual({
    subscription: ['id', 'user_id', 'reward_id', 'status', 'stripe_key', 'activated_at', 'version'],
    subscriptionEvents: ['id', 'version', 'schema_version', 'data', 'metadata', 'created_at', 'position', 'tx_id', 'subscription_id', 'type'],
    stored: [{ stripe_key: 'sub_1', activated: true }],
    mismatches: [],
  });
});

test('a DataSource migrated as docs/schema.md shows: tables from the generated migration, the rest from eventSourcingMigration', async () => {
  const dataSource = migratedDataSource(await freshDatabase('docs_migrations'));
  await dataSource.initialize();
  try {
    const ran = await dataSource.runMigrations();
    expect(ran.map((migration) => migration.name)).toEqual(['InitialSchema1764000000000', 'EventSourcingSchema1764000000001', 'ProjectionOrderIndex1764000000002']);
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
