import { Queue, type Job, type Worker } from 'bullmq';
import { DataSource, type EntityManager } from 'typeorm';
import {
  AggregateEvent,
  Dispatcher,
  EventSourcing,
  EventSourcingConfigError,
  ReactorError,
  type DispatcherOptions,
  type Reactor,
  type ReactorContext,
  type ReactorQueueOptions,
  type ReactorWorkerOptions,
} from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { freshDatabase, testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionEvent,
  SubscriptionNoteAdded,
  SubscriptionRenamed,
  subscriptionEntities,
} from '../support/subscription-model';
import { columnsOf, countEvents, eventRows, loadSubscription, subscriptionRow } from '../support/write-path-lint';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
/** Queue names unique to this run, so parallel test files and earlier runs never share jobs. */
const run = `${process.pid}-${Date.now()}`;
const queueName = (suffix: string) => `es-reactors-${run}-${suffix}`;

/** Removes a queue's keys from Redis once every EventSourcing using it is closed. */
async function obliterate(name: string): Promise<void> {
  const url = new URL(redisUrl);
  const queue = new Queue(name, { connection: { host: url.hostname, port: Number(url.port || 6379) } });
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
  }
}

const allStates = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;

/** Every job of the queue, in any state. */
async function allJobs(es: EventSourcing): Promise<Job[]> {
  return es.queue.getJobs([...allStates]);
}

/** The jobs of one event of subscription_events. */
async function jobsOf(es: EventSourcing, event: AggregateEvent): Promise<Job[]> {
  return (await allJobs(es)).filter((job) => job.data.table === 'subscription_events' && job.data.id === event.id);
}

async function identityOf(dataSource: DataSource): Promise<string> {
  const [{ id }] = await dataSource.query('SELECT id::text AS id FROM es_identity');
  return id;
}

async function outboxCount(dataSource: DataSource | EntityManager): Promise<number> {
  const [{ count }] = await dataSource.query('SELECT count(*)::int AS count FROM es_outbox');
  return count;
}

/** Polls until `condition` holds; a guard against hanging, not a timing assertion. */
async function waitUntil(condition: () => Promise<boolean>, what: string, attempts = 500): Promise<void> {
  for (let i = 0; i < attempts; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting until ${what}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A subscription created through the plain path, loaded fresh. */
async function createSubscription(dataSource: DataSource, userId = 1): Promise<Subscription> {
  const created = await dataSource.manager.save(SubscriptionCreated.build({ userId }));
  return loadSubscription(dataSource, created.aggregateId);
}

interface ReactorSuite {
  dataSource: DataSource;
  es: EventSourcing;
  worker?: Worker;
}

/**
 * A fresh database attached with `dispatcher`, a queue of its own on the shared Redis and, unless
 * `worker: false`, a running worker; all closed after the describe block.
 */
function reactorSuite(
  database: string,
  dispatcher: () => Dispatcher,
  options: { queue?: Partial<ReactorQueueOptions> | false; worker?: ReactorWorkerOptions | false } = {},
): ReactorSuite {
  const suite = {} as ReactorSuite;
  beforeAll(async () => {
    suite.dataSource = await testDataSource(database, subscriptionEntities);
    const queue = options.queue === false ? undefined : { connection: redisUrl, name: queueName(database), ...options.queue };
    suite.es = await EventSourcing.attach(suite.dataSource, { dispatcher: dispatcher(), queue });
    if (queue && options.worker !== false) suite.worker = suite.es.worker(options.worker ?? {});
  });
  afterAll(async () => {
    await suite.es?.close();
    await suite.dataSource?.destroy();
    if (options.queue !== false) await obliterate(queueName(database));
  });
  return suite;
}

describe('trigger reactors', () => {
  const seen: { reactor: string; mode: string; attempt: number; job: unknown; type: string; inTransaction: boolean; queryRunner: unknown }[] = [];
  const thrown: Error[] = [];

  /** Adds a note in the same transaction; refuses the stripe key 'sub_declined' after writing it. */
  class AddActivationNote implements Reactor<SubscriptionActivated> {
    async call(event: SubscriptionActivated, ctx: ReactorContext) {
      seen.push({
        reactor: ctx.reactor,
        mode: ctx.mode,
        attempt: ctx.attempt,
        job: ctx.job,
        type: event.type,
        inTransaction: ctx.manager.queryRunner?.isTransactionActive === true,
        queryRunner: ctx.manager.queryRunner,
      });
      const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: event.aggregateId });
      await ctx.manager.save(SubscriptionNoteAdded.build({ subscription, note: `activated with ${event.stripeKey}` }));
      if (event.stripeKey === 'sub_declined') {
        const error = new Error('card declined');
        thrown.push(error);
        throw error;
      }
    }
  }

  const suite = reactorSuite('reactors_trigger', () => new Dispatcher().on(SubscriptionActivated, { trigger: AddActivationNote }), {
    queue: false,
  });

  beforeEach(() => {
    seen.length = 0;
    thrown.length = 0;
  });

  test('an event saved by a trigger reactor through ctx.manager commits atomically with the first', async () => {
    const { dataSource } = suite;
    const subscription = await createSubscription(dataSource, 11);

    const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_ok' }));

    expect(seen).toEqual([
      { reactor: 'AddActivationNote', mode: 'trigger', attempt: 1, job: undefined, type: 'Subscription.Activated', inTransaction: true, queryRunner: expect.anything() },
    ]);
    const rows = await eventRows(dataSource, subscription.id);
    expect(rows.map((row) => [row.version, row.type])).toEqual([
      [1, 'Subscription.Created'],
      [2, 'Subscription.Activated'],
      [3, 'Subscription.NoteAdded'],
    ]);
    // One transaction wrote both.
    expect(rows[2].tx_id).toBe(rows[1].tx_id);
    expect(Number(rows[1].id)).toBe(activated.id);
    expect(rows[1].metadata).toEqual({});
    expect(rows[2].metadata).toEqual({
      causationId: `subscription_events/${activated.id}`,
      correlationId: `subscription_events/${activated.id}`,
    });
    expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({
      status: 'active',
      stripeKey: 'sub_ok',
      notes: ['activated with sub_ok'],
      version: 3,
    });
    expect(await suite.es.verify(Subscription, { id: subscription.id })).toEqual([]);
  });

  test("ctx.manager is the caller's transaction when the event is saved in one", async () => {
    const { dataSource } = suite;
    const subscription = await createSubscription(dataSource);
    let callerQueryRunner: unknown;

    await dataSource.transaction(async (manager) => {
      callerQueryRunner = manager.queryRunner;
      await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_tx' }));
      // The reactor's note is visible inside the transaction, not outside.
      const [{ count }] = await manager.query(`SELECT count(*)::int AS count FROM subscription_events WHERE subscription_id = $1`, [subscription.id]);
      expect(count).toBe(3);
      expect(await eventRows(dataSource, subscription.id)).toHaveLength(1);
    });

    expect(seen).toHaveLength(1);
    expect(seen[0].queryRunner).toBe(callerQueryRunner);
    expect(await eventRows(dataSource, subscription.id)).toHaveLength(3);
  });

  test('a throwing trigger reactor rolls back both events and the aggregate: ReactorError naming reactor, event and aggregate', async () => {
    const { dataSource } = suite;
    const subscription = await createSubscription(dataSource, 12);
    const rowBefore = await subscriptionRow(dataSource, subscription.id);
    const before = columnsOf(subscription);
    const eventsBefore = await countEvents(dataSource);

    const error = await rejectionOf(dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_declined' })));

    expect(error).toBeInstanceOf(ReactorError);
    expect(error.message).toBe(`reactor AddActivationNote failed on Subscription.Activated of aggregate ${subscription.id}: card declined`);
    expect(error).toMatchObject({ reactor: 'AddActivationNote', eventType: 'Subscription.Activated', aggregateId: subscription.id, code: 'REACTOR' });
    expect(thrown).toHaveLength(1);
    expect(error.cause).toBe(thrown[0]);
    expect(await countEvents(dataSource)).toBe(eventsBefore);
    expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
    expect(columnsOf(subscription)).toEqual(before);
    expect(subscription.status).toBe('pending');
  });

  test('es.append and a user transaction fail the same way, and the user transaction rolls back as a whole', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource, 13);
    const before = columnsOf(subscription);

    const appendError = await rejectionOf(es.append(SubscriptionActivated.build({ subscription, stripeKey: 'sub_declined' })));
    expect(appendError).toBeInstanceOf(ReactorError);
    expect(appendError.message).toBe(`reactor AddActivationNote failed on Subscription.Activated of aggregate ${subscription.id}: card declined`);

    const txError = await rejectionOf(
      dataSource.transaction(async (manager) => {
        await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'before the activation' }));
        await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_declined' }));
      }),
    );
    expect(txError).toBeInstanceOf(ReactorError);
    expect((await eventRows(dataSource, subscription.id)).map((row) => row.type)).toEqual(['Subscription.Created']);
    expect(columnsOf(subscription)).toEqual(before);
  });
});

describe('trigger reactors: matching, names and factories', () => {
  const calls: string[] = [];
  const built: string[] = [];

  /** Registered on the abstract base class: every subscription event. */
  class AuditEverything implements Reactor<SubscriptionEvent> {
    call(event: SubscriptionEvent, ctx: ReactorContext) {
      calls.push(`${ctx.reactor}:${event.type}:v${event.version}:${typeof event.aggregateId}`);
    }
  }

  /** Built by the dispatcher's factory, with a dependency. */
  class PrefixedAudit implements Reactor<SubscriptionCancelled> {
    constructor(private readonly prefix: string) {}
    call(event: SubscriptionCancelled, ctx: ReactorContext) {
      calls.push(`${this.prefix}${ctx.reactor}:${event.reason}`);
    }
  }

  const factory: DispatcherOptions['factory'] = (reactor) => {
    built.push(reactor.name);
    return reactor === PrefixedAudit ? new PrefixedAudit('factory/') : new reactor();
  };

  const suite = reactorSuite(
    'reactors_trigger_matching',
    () =>
      new Dispatcher({ factory })
        .on(SubscriptionEvent, { trigger: AuditEverything })
        // Overlapping: the same reactor again, for a subclass.
        .on([SubscriptionActivated, SubscriptionCancelled], { trigger: AuditEverything })
        .on(SubscriptionCancelled, { trigger: PrefixedAudit })
        .on(SubscriptionNoteAdded, { trigger: (event, ctx) => void calls.push(`${ctx.reactor}:${event.note}`), name: 'note-audit' }),
    { queue: false },
  );

  beforeEach(() => {
    calls.length = 0;
    built.length = 0;
  });

  test('a reactor on the base events class runs for every concrete event, once even when registered twice', async () => {
    const { dataSource } = suite;
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 5 }));
    const subscription = await loadSubscription(dataSource, created.aggregateId);
    await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_m' }));
    await dataSource.manager.save(SubscriptionRenamed.build({ subscription, stripeKey: 'sub_n' }));

    expect(calls).toEqual([
      'AuditEverything:Subscription.Created:v1:number',
      'AuditEverything:Subscription.Activated:v2:number',
      'AuditEverything:Subscription.Renamed:v3:number',
    ]);
  });

  test('class reactors are built by the factory for every call; function reactors run under their name option', async () => {
    const { dataSource } = suite;
    const subscription = await createSubscription(dataSource);
    calls.length = 0;
    built.length = 0;

    await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'hello' }));
    await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'moving' }));

    expect(calls).toEqual([
      'AuditEverything:Subscription.NoteAdded:v2:number',
      'note-audit:hello',
      'AuditEverything:Subscription.Cancelled:v3:number',
      'factory/PrefixedAudit:moving',
    ]);
    expect(built).toEqual(['AuditEverything', 'AuditEverything', 'PrefixedAudit']);
  });
});

describe('trigger reactor write path: what the write-path lint does not check', () => {
  // The write-path lint runs this path (a trigger reactor saving the event through ctx.manager)
  // in tests/integration/write-path-lint-paths.test.ts. What is left here is specific to it: the
  // event's place after its source, and the causation metadata the trigger adds.
  const targets = new WeakMap<AggregateEvent, AggregateEvent>();
  const saved = new WeakMap<AggregateEvent, AggregateEvent>();

  /** Saves the event its source was given in the source's transaction. */
  class SaveTargetEvent implements Reactor<SubscriptionCreated> {
    async call(event: SubscriptionCreated, ctx: ReactorContext) {
      const target = targets.get(event);
      if (target) saved.set(event, await ctx.manager.save(target));
    }
  }

  const suite = reactorSuite('reactors_trigger_path', () => new Dispatcher().on(SubscriptionCreated, { trigger: SaveTargetEvent }), {
    queue: false,
  });

  /** The write path: a source event (a new aggregate of its own) whose trigger reactor saves `event`. */
  async function viaTrigger<E extends AggregateEvent>(event: E): Promise<{ event: E; source: SubscriptionCreated }> {
    const source = SubscriptionCreated.build({ userId: 9000 });
    targets.set(source, event);
    await suite.dataSource.manager.save(source);
    return { event: saved.get(source) as E, source };
  }

  test('the event follows its source in the same transaction and carries the source as causation and correlation', async () => {
    const { dataSource } = suite;
    const { event, source } = await viaTrigger(SubscriptionCreated.build({ userId: 41 }));

    expect(event.version).toBe(1);
    expect(event.aggregateId).not.toBe(source.aggregateId);
    expect(event.txId).toBe(source.txId);
    expect(event.position).toBeGreaterThan(source.position);
    const [stored] = await eventRows(dataSource, event.aggregateId);
    expect(stored).toMatchObject({
      id: String(event.id),
      data: { userId: 41 },
      metadata: { causationId: `subscription_events/${source.id}`, correlationId: `subscription_events/${source.id}` },
      tx_id: String(source.txId),
    });
  });

  test('metadata given to build wins over the causation metadata of the trigger', async () => {
    const { dataSource } = suite;
    const subscription = await createSubscription(dataSource, 42);
    const { event, source } = await viaTrigger(
      SubscriptionActivated.build({ subscription, stripeKey: 'sub_lint', metadata: { notificationId: 7, correlationId: 'mine' } }),
    );

    const rows = await eventRows(dataSource, subscription.id);
    expect(rows.map((row) => [row.version, row.type])).toEqual([
      [1, 'Subscription.Created'],
      [2, 'Subscription.Activated'],
    ]);
    expect(rows[1].metadata).toEqual({ notificationId: 7, correlationId: 'mine', causationId: `subscription_events/${source.id}` });
    expect(event.metadata).toEqual(rows[1].metadata);
  });
});

describe('async reactors', () => {
  interface Run {
    reactor: string;
    eventId: number;
    type: string;
    attempt: number;
    mode: string;
    jobId: string | undefined;
    freshManager: boolean;
    instance: boolean;
  }
  const runs: Run[] = [];
  const built: string[] = [];
  let flakyAttempts: number[] = [];

  const record = (event: SubscriptionEvent, ctx: ReactorContext) =>
    runs.push({
      reactor: ctx.reactor,
      eventId: event.id,
      type: event.type,
      attempt: ctx.attempt,
      mode: ctx.mode,
      jobId: ctx.job?.id,
      freshManager: ctx.manager === suite.dataSource.manager,
      instance: event instanceof SubscriptionEvent,
    });
  const runsOf = (event: AggregateEvent, reactor?: string) =>
    runs.filter((entry) => entry.eventId === event.id && (reactor === undefined || entry.reactor === reactor));

  class SendConfirmation implements Reactor<SubscriptionActivated> {
    call(event: SubscriptionActivated, ctx: ReactorContext) {
      record(event, ctx);
    }
  }
  class CountEverything implements Reactor<SubscriptionEvent> {
    call(event: SubscriptionEvent, ctx: ReactorContext) {
      record(event, ctx);
    }
  }
  class Mailer implements Reactor<SubscriptionCancelled> {
    constructor(private readonly from: string) {}
    call(event: SubscriptionCancelled, ctx: ReactorContext) {
      record(event, { ...ctx, reactor: `${ctx.reactor}<${this.from}>` });
    }
  }
  class FlakyReactor implements Reactor<SubscriptionCancelled> {
    call(event: SubscriptionCancelled, ctx: ReactorContext) {
      flakyAttempts.push(ctx.attempt);
      if (ctx.attempt === 1) throw new Error('temporary failure');
      record(event, ctx);
    }
  }
  class BrokenReactor implements Reactor<SubscriptionRenamed> {
    call(event: SubscriptionRenamed, ctx: ReactorContext) {
      record(event, ctx);
      throw new Error(`mail server down for ${event.stripeKey}`);
    }
  }

  const suite = reactorSuite('reactors_async', () =>
    new Dispatcher({
      factory: (reactor) => {
        built.push(reactor.name);
        return reactor === Mailer ? new Mailer('billing@example.com') : new reactor();
      },
    })
      .on(SubscriptionActivated, { async: SendConfirmation })
      .on(SubscriptionEvent, { async: CountEverything })
      .on([SubscriptionNoteAdded, SubscriptionActivated], { async: CountEverything })
      .on(SubscriptionNoteAdded, { async: (event, ctx) => void record(event, ctx), name: 'note-audit' })
      .on(SubscriptionCancelled, { async: Mailer })
      .on(SubscriptionCancelled, { async: FlakyReactor, attempts: 3, backoff: 10 })
      .on(SubscriptionRenamed, { async: BrokenReactor, attempts: 2, backoff: 10 }),
  );

  beforeEach(() => {
    runs.length = 0;
    built.length = 0;
    flakyAttempts = [];
  });

  test('runs exactly once, after COMMIT, with the event loaded by id and a fresh manager', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);
    await waitForReactors(es);
    runs.length = 0;

    const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_async' }));
    await waitForReactors(es);

    expect(runsOf(activated, 'SendConfirmation')).toEqual([
      {
        reactor: 'SendConfirmation',
        eventId: activated.id,
        type: 'Subscription.Activated',
        attempt: 1,
        mode: 'async',
        jobId: expect.any(String),
        freshManager: true,
        instance: true,
      },
    ]);
    const jobs = await jobsOf(es, activated);
    expect(jobs.map((job) => job.name).sort()).toEqual(['CountEverything', 'SendConfirmation']);
    expect(await Promise.all(jobs.map((job) => job.getState()))).toEqual(['completed', 'completed']);
    expect(await outboxCount(dataSource)).toBe(0);
  });

  test('nothing is enqueued or run for a transaction that rolls back', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);
    await waitForReactors(es); // the creation's own hand-over is not what this test counts
    let event!: SubscriptionActivated;
    let written!: AggregateEvent;

    const error = await rejectionOf(
      dataSource.transaction(async (manager) => {
        event = await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_rollback' }));
        written = { ...event } as unknown as AggregateEvent;
        expect(await outboxCount(manager)).toBe(2);
        throw new Error('the user changed their mind');
      }),
    );
    expect(error.message).toBe('the user changed their mind');
    await waitForReactors(es);

    // The rolled-back event is unwritten again; the id it had inside the transaction has no job.
    expect(event.id).toBeUndefined();
    expect(typeof written.id).toBe('number');
    expect(runsOf(written)).toEqual([]);
    expect(await jobsOf(es, written)).toEqual([]);
    expect(await outboxCount(dataSource)).toBe(0);
  });

  test("a rolled-back savepoint's event enqueues nothing; the outer transaction's events are enqueued after its COMMIT", async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);
    let outer!: SubscriptionActivated;
    let inner!: SubscriptionNoteAdded;
    let released!: SubscriptionNoteAdded;

    await dataSource.transaction(async (manager) => {
      outer = await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_outer' }));
      await rejectionOf(
        manager.transaction(async (savepoint) => {
          inner = await savepoint.save(SubscriptionNoteAdded.build({ subscription, note: 'rolled back' }));
          throw new Error('roll back the savepoint');
        }),
      );
      await manager.transaction(async (savepoint) => {
        released = await savepoint.save(SubscriptionNoteAdded.build({ subscription, note: 'released' }));
      });
      // RELEASE SAVEPOINT is not a commit: nothing is in the queue yet.
      expect(await jobsOf(es, outer)).toEqual([]);
      expect(await jobsOf(es, released)).toEqual([]);
    });
    await waitForReactors(es);

    expect(runsOf(inner)).toEqual([]);
    expect(await jobsOf(es, inner)).toEqual([]);
    expect(runsOf(outer).map((entry) => entry.reactor).sort()).toEqual(['CountEverything', 'SendConfirmation']);
    expect(runsOf(released).map((entry) => entry.reactor).sort()).toEqual(['CountEverything', 'note-audit']);
  });

  test('while the transaction is open, the queue has no job for its event, even as other events go through', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);
    const other = await createSubscription(dataSource);
    let held!: SubscriptionActivated;
    let passing!: SubscriptionActivated;

    await dataSource.transaction(async (manager) => {
      held = await manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_held' }));
      // Another event commits and its reactors run to completion while this transaction is open.
      passing = await dataSource.manager.save(SubscriptionActivated.build({ subscription: other, stripeKey: 'sub_passing' }));
      await waitForReactors(es);
      expect(runsOf(passing, 'SendConfirmation')).toHaveLength(1);
      expect(await jobsOf(es, held)).toEqual([]);
      expect(runsOf(held)).toEqual([]);
      // The outbox row is there, but only this transaction can see it.
      expect(await outboxCount(manager)).toBe(2);
      expect(await outboxCount(dataSource)).toBe(0);
    });
    await waitForReactors(es);

    expect(runsOf(held, 'SendConfirmation')).toHaveLength(1);
  });

  test('job shape: an id with the database identity and the reactor name and no ":", references only in the data', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);
    const identity = await identityOf(dataSource);

    const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_shape' }));
    await waitForReactors(es);

    const [job] = (await jobsOf(es, activated)).filter((candidate) => candidate.name === 'SendConfirmation');
    expect(job.id).not.toContain(':');
    expect(job.id).toContain(identity);
    expect(job.id).toContain('SendConfirmation');
    expect(job.data).toEqual({
      table: 'subscription_events',
      id: activated.id,
      type: 'Subscription.Activated',
      reactor: 'SendConfirmation',
      position: activated.position,
      key: expect.stringMatching(/^[0-9a-f-]{36}$/),
      signature: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(job.id).toBe(`${identity}.${activated.position}.SendConfirmation.${job.data.key}`);
    expect(runsOf(activated, 'SendConfirmation')[0].jobId).toBe(job.id);
    // One job per (event, reactor): the two reactors of this event have two ids.
    const ids = (await jobsOf(es, activated)).map((candidate) => candidate.id);
    expect(new Set(ids).size).toBe(2);
    // The queue's default attempts, and the reactor's own where it has some.
    expect(job.opts.attempts).toBe(3);
  });

  test('a reactor on the base events class runs once per event, also where it is registered twice', async () => {
    const { dataSource, es } = suite;
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 3 }));
    const subscription = await loadSubscription(dataSource, created.aggregateId);
    const note = await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'n' }));
    const activated = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_twice' }));
    await waitForReactors(es);

    expect(runsOf(created).map((entry) => entry.reactor)).toEqual(['CountEverything']);
    expect(runsOf(note).map((entry) => entry.reactor).sort()).toEqual(['CountEverything', 'note-audit']);
    expect(runsOf(activated).map((entry) => entry.reactor).sort()).toEqual(['CountEverything', 'SendConfirmation']);
    expect((await jobsOf(es, note)).map((job) => job.name).sort()).toEqual(['CountEverything', 'note-audit']);
  });

  test('retry then success: the reactor sees attempt 1, then 2; the job completes', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);

    const cancelled = await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'flaky' }));
    await waitForReactors(es);

    expect(flakyAttempts).toEqual([1, 2]);
    expect(runsOf(cancelled, 'FlakyReactor').map((entry) => entry.attempt)).toEqual([2]);
    const [job] = (await jobsOf(es, cancelled)).filter((candidate) => candidate.name === 'FlakyReactor');
    expect(await job.getState()).toBe('completed');
    expect(job.opts.attempts).toBe(3);
    expect(job.opts.backoff).toEqual({ type: 'exponential', delay: 10 });
  });

  test('class reactors are built by the dispatcher factory, for every run', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);
    await waitForReactors(es);
    built.length = 0;

    const cancelled = await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'factory' }));
    await waitForReactors(es);

    expect(runsOf(cancelled, 'Mailer<billing@example.com>')).toHaveLength(1);
    // Mailer once, CountEverything once, FlakyReactor twice (a retry).
    expect(built.sort()).toEqual(['CountEverything', 'FlakyReactor', 'FlakyReactor', 'Mailer']);
  });

  test('exhausted retries: the job stays failed with the error and every attempt; waitForReactors resolves when told to allow failures', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);

    const renamed = await dataSource.manager.save(SubscriptionRenamed.build({ subscription, stripeKey: 'sub_broken' }));
    await waitForReactors(es, { allowFailures: true });

    expect(runsOf(renamed, 'BrokenReactor').map((entry) => entry.attempt)).toEqual([1, 2]);
    const [job] = (await jobsOf(es, renamed)).filter((candidate) => candidate.name === 'BrokenReactor');
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toBe('mail server down for sub_broken');
    expect(job.attemptsMade).toBe(2);
    expect(job.opts.attempts).toBe(2);
    expect(await es.pendingReactorJobs()).toBe(0);
    // The other reactor of the event is unaffected.
    expect(runsOf(renamed, 'CountEverything')).toHaveLength(1);
  });
});

describe('causation, correlation and request metadata', () => {
  /** A -> R1 saves B -> R2 saves C, each async. */
  class FirstFollowUp implements Reactor<SubscriptionActivated> {
    async call(event: SubscriptionActivated, ctx: ReactorContext) {
      const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: event.aggregateId });
      await ctx.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'from R1' }));
    }
  }
  class SecondFollowUp implements Reactor<SubscriptionNoteAdded> {
    async call(event: SubscriptionNoteAdded, ctx: ReactorContext) {
      if (event.note !== 'from R1') return;
      const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: event.aggregateId });
      await ctx.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'from R2' }));
    }
  }
  /** In the transaction: a note for every cancellation. */
  class NoteCancellation implements Reactor<SubscriptionCancelled> {
    async call(event: SubscriptionCancelled, ctx: ReactorContext) {
      const subscription = await ctx.manager.findOneByOrFail(Subscription, { id: event.aggregateId });
      await ctx.manager.save(SubscriptionNoteAdded.build({ subscription, note: `cancelled: ${event.reason}` }));
    }
  }

  const suite = reactorSuite('reactors_causation', () =>
    new Dispatcher()
      .on(SubscriptionActivated, { async: FirstFollowUp })
      .on(SubscriptionNoteAdded, { async: SecondFollowUp })
      .on(SubscriptionCancelled, { trigger: NoteCancellation }),
  );

  test('a chain across two async reactors: causation is the previous event, correlation the first', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);

    const a = await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_chain' }));
    await waitForReactors(es);

    const rows = await eventRows(dataSource, subscription.id);
    expect(rows.map((row) => [row.type, row.data.note ?? null])).toEqual([
      ['Subscription.Created', null],
      ['Subscription.Activated', null],
      ['Subscription.NoteAdded', 'from R1'],
      ['Subscription.NoteAdded', 'from R2'],
    ]);
    const [, rowA, rowB, rowC] = rows;
    const ref = (row: Record<string, any>) => `subscription_events/${row.id}`;
    expect(Number(rowA.id)).toBe(a.id);
    expect(rowA.metadata).toEqual({});
    expect(rowB.metadata).toEqual({ causationId: ref(rowA), correlationId: ref(rowA) });
    expect(rowC.metadata).toEqual({ causationId: ref(rowB), correlationId: ref(rowA) });
    // Three different transactions.
    expect(new Set([rowA.tx_id, rowB.tx_id, rowC.tx_id]).size).toBe(3);
  });

  test('es.withMetadata puts request metadata on the event and on events of its trigger reactors; build metadata wins', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);

    const cancelled = await es.withMetadata({ userId: 7, requestId: 'req-1' }, () =>
      dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'moving', metadata: { requestId: 'explicit' } })),
    );

    const rows = await eventRows(dataSource, subscription.id);
    expect(rows.map((row) => row.type)).toEqual(['Subscription.Created', 'Subscription.Cancelled', 'Subscription.NoteAdded']);
    expect(rows[0].metadata).toEqual({});
    expect(rows[1].metadata).toEqual({ userId: 7, requestId: 'explicit' });
    expect(rows[2].metadata).toEqual({
      userId: 7,
      requestId: 'req-1',
      causationId: `subscription_events/${cancelled.id}`,
      correlationId: `subscription_events/${cancelled.id}`,
    });
    await waitForReactors(es);
  });

  test('es.withMetadata scopes do not leak: nested scopes merge, and nothing remains outside', async () => {
    const { dataSource, es } = suite;
    const subscription = await createSubscription(dataSource);

    await es.withMetadata({ userId: 7 }, () =>
      es.withMetadata({ tenant: 'eu' }, () => dataSource.manager.save(SubscriptionRenamed.build({ subscription, stripeKey: 'sub_nested' }))),
    );
    await dataSource.manager.save(SubscriptionRenamed.build({ subscription, stripeKey: 'sub_outside' }));

    const rows = await eventRows(dataSource, subscription.id);
    expect(rows.slice(1).map((row) => row.metadata)).toEqual([{ userId: 7, tenant: 'eu' }, {}]);
  });
});

describe('two databases sharing one Redis and one queue name', () => {
  const shared = queueName('shared');
  const runs: { database: string; jobId: string | undefined; eventId: number; stripeKey: string }[] = [];

  class Confirm implements Reactor<SubscriptionActivated> {
    call(event: SubscriptionActivated, ctx: ReactorContext) {
      const database = ctx.manager.connection === first ? 'first' : ctx.manager.connection === second ? 'second' : 'unknown';
      runs.push({ database, jobId: ctx.job?.id, eventId: event.id, stripeKey: event.stripeKey });
    }
  }

  let first: DataSource;
  let second: DataSource;
  let esFirst: EventSourcing;
  let esSecond: EventSourcing;

  beforeAll(async () => {
    first = await testDataSource('reactors_shared_a', subscriptionEntities);
    second = await testDataSource('reactors_shared_b', subscriptionEntities);
    const dispatcher = () => new Dispatcher().on(SubscriptionActivated, { async: Confirm });
    esFirst = await EventSourcing.attach(first, { dispatcher: dispatcher(), queue: { connection: redisUrl, name: shared } });
    // The second database to attach under the name is refused...
    const refused = await rejectionOf(EventSourcing.attach(second, { dispatcher: dispatcher(), queue: { connection: redisUrl, name: shared } }));
    expect(refused).toBeInstanceOf(EventSourcingConfigError);
    expect(refused.message).toBe(
      `queue '${shared}' is used by another database (identity ${await identityOf(first)}, attached within the last 60 s): give each database a queue name of its own`,
    );
    // ...unless Redis could not tell it (it was unreachable then): the worker is the last wall.
    await (await esFirst.queue.getBackend().client).del(`bull:${shared}:typeorm-es-database`);
    esSecond = await EventSourcing.attach(second, { dispatcher: dispatcher(), queue: { connection: redisUrl, name: shared } });
  });

  afterAll(async () => {
    await esFirst?.close();
    await esSecond?.close();
    await first?.destroy();
    await second?.destroy();
    await obliterate(shared);
  });

  test('identical event ids and positions in both databases give two distinct jobs; each runs against its own database', async () => {
    const one = await first.manager.save(SubscriptionActivated.build({ subscription: await createSubscription(first), stripeKey: 'sub_first' }));
    const two = await second.manager.save(SubscriptionActivated.build({ subscription: await createSubscription(second), stripeKey: 'sub_second' }));
    expect([one.id, one.position]).toEqual([two.id, two.position]);
    // The after-commit hand-over has put both in the queue.
    await waitUntil(async () => (await outboxCount(first)) + (await outboxCount(second)) === 0, 'both outboxes are empty');

    const jobs = await esFirst.queue.getJobs(['waiting']);
    expect(jobs).toHaveLength(2);
    const [idFirst, idSecond] = [await identityOf(first), await identityOf(second)];
    expect(idFirst).not.toBe(idSecond);
    const byDatabase = new Map(jobs.map((job) => [job.id!.includes(idFirst) ? 'first' : job.id!.includes(idSecond) ? 'second' : 'neither', job]));
    expect([...byDatabase.keys()].sort()).toEqual(['first', 'second']);
    const { key: _k1, signature: _s1, ...refFirst } = byDatabase.get('first')!.data;
    const { key: _k2, signature: _s2, ...refSecond } = byDatabase.get('second')!.data;
    expect(refFirst).toEqual(refSecond);

    // One worker at a time, so each database's worker is the only one that can take a job:
    // a worker must never run another database's job against its own rows.
    const workerFirst = esFirst.worker({ relay: false });
    await waitForReactors(esFirst, { allowFailures: true }); // it refuses the other database's job
    await workerFirst.close();
    // The first database's worker took both jobs and refused the other database's.
    const jobSecond = (await esSecond.queue.getJob(byDatabase.get('second')!.id!))!;
    expect(await jobSecond.getState()).toBe('failed');
    expect(jobSecond.failedReason).toBe(
      `job ${jobSecond.id} was added by another database than this worker's (${idFirst}): give each database a queue name of its own`,
    );
    expect(runs).toHaveLength(1);
    await jobSecond.retry();
    esSecond.worker({ relay: false });
    await waitForReactors(esSecond);

    expect(runs.sort((a, b) => a.database.localeCompare(b.database))).toEqual([
      { database: 'first', jobId: byDatabase.get('first')!.id, eventId: one.id, stripeKey: 'sub_first' },
      { database: 'second', jobId: byDatabase.get('second')!.id, eventId: two.id, stripeKey: 'sub_second' },
    ]);
  });
});

describe('a database reset under one queue name', () => {
  const name = queueName('reset');
  const runs: { jobId: string | undefined; eventId: number; stripeKey: string }[] = [];

  class Confirm implements Reactor<SubscriptionActivated> {
    call(event: SubscriptionActivated, ctx: ReactorContext) {
      runs.push({ jobId: ctx.job?.id, eventId: event.id, stripeKey: event.stripeKey });
    }
  }
  const attach = (dataSource: DataSource) =>
    EventSourcing.attach(dataSource, { dispatcher: new Dispatcher().on(SubscriptionActivated, { async: Confirm }), queue: { connection: redisUrl, name } });

  let dataSource: DataSource | undefined;
  let es: EventSourcing | undefined;

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
    await obliterate(name);
  });

  test("a new event with the same id and position after a reset gets a job of its own and runs once; the old database's jobs never run against it", async () => {
    dataSource = await testDataSource('reactors_reset', subscriptionEntities);
    es = await attach(dataSource);
    es.worker();
    const before = await dataSource.manager.save(SubscriptionActivated.build({ subscription: await createSubscription(dataSource), stripeKey: 'sub_before' }));
    await waitForReactors(es);
    // A second event whose job is still waiting when the database goes away (no worker).
    await es.close();
    es = await attach(dataSource);
    const unfinished = await dataSource.manager.save(SubscriptionActivated.build({ subscription: await createSubscription(dataSource), stripeKey: 'sub_unfinished' }));
    await waitUntil(async () => (await outboxCount(dataSource!)) === 0, 'the outbox is empty');
    const oldIdentity = await identityOf(dataSource);
    const oldJobs = await allJobs(es);
    expect(oldJobs.map((job) => job.data.id).sort()).toEqual([before.id, unfinished.id]);
    await es.close();
    await dataSource.destroy();

    // The reset: the same database name, dropped and created again.
    dataSource = await testDataSource('reactors_reset', subscriptionEntities);
    es = await attach(dataSource);
    expect(await identityOf(dataSource)).not.toBe(oldIdentity);
    const after = await dataSource.manager.save(SubscriptionActivated.build({ subscription: await createSubscription(dataSource), stripeKey: 'sub_after' }));
    const again = await dataSource.manager.save(SubscriptionActivated.build({ subscription: await createSubscription(dataSource), stripeKey: 'sub_again' }));
    expect([after.id, after.position]).toEqual([before.id, before.position]);
    expect([again.id, again.position]).toEqual([unfinished.id, unfinished.position]);
    // Every job is in the queue, the old database's waiting one first, before a worker starts.
    await waitUntil(async () => (await outboxCount(dataSource!)) === 0, 'the outbox is empty');
    es.worker();
    await waitForReactors(es, { allowFailures: true }); // the old database's jobs are refused

    const jobs = await allJobs(es);
    const newJobs = jobs.filter((job) => !job.id!.includes(oldIdentity));
    expect(newJobs).toHaveLength(2);
    expect(new Set(jobs.map((job) => job.id)).size).toBe(4);
    expect(await Promise.all(newJobs.map((job) => job.getState()))).toEqual(['completed', 'completed']);
    const afterReset = runs.slice(1);
    expect(runs[0]).toEqual({ jobId: oldJobs.find((job) => job.data.id === before.id)!.id, eventId: before.id, stripeKey: 'sub_before' });
    // Each new event ran once, from its own job; the old database's waiting job did not run them again.
    expect(afterReset.sort((a, b) => a.eventId - b.eventId)).toEqual([
      { jobId: newJobs.find((job) => job.data.id === after.id)!.id, eventId: after.id, stripeKey: 'sub_after' },
      { jobId: newJobs.find((job) => job.data.id === again.id)!.id, eventId: again.id, stripeKey: 'sub_again' },
    ]);
    const stale = jobs.find((job) => job.data.id === unfinished.id && job.id!.includes(oldIdentity))!;
    expect(await stale.getState()).toBe('failed');
    expect(stale.failedReason).toContain(oldIdentity);
  });
});

describe('configuration', () => {
  let dataSource: DataSource;

  beforeAll(async () => {
    dataSource = await testDataSource('reactors_config', subscriptionEntities);
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  test('a dispatcher with async reactors and no queue is EventSourcingConfigError', async () => {
    const dispatcher = new Dispatcher().on(SubscriptionActivated, { async: function confirm() {} });

    const error = await rejectionOf(EventSourcing.attach(dataSource, { dispatcher }));

    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe(
      'the dispatcher has async reactors, so EventSourcing.attach needs queue options (e.g. { queue: { connection: { host, port } } })',
    );
    // Nothing was attached: attaching again works.
    const es = await EventSourcing.attach(dataSource);
    await es.close();
  });

  test('without a queue, es.queue and es.worker() are EventSourcingConfigError', async () => {
    const es = await EventSourcing.attach(dataSource, { dispatcher: new Dispatcher().on(SubscriptionActivated, { trigger: function note() {} }) });
    try {
      for (const use of [() => es.queue, () => es.worker(), () => es.relay()]) {
        let error: any;
        try {
          use();
        } catch (caught) {
          error = caught;
        }
        expect(error).toBeInstanceOf(EventSourcingConfigError);
        expect(error.message).toBe('no queue is configured: pass { queue } to EventSourcing.attach');
      }
      expect(await es.pendingReactorJobs()).toBe(0);
    } finally {
      await es.close();
    }
  });

  test('a queue on a database without the library schema is EventSourcingConfigError', async () => {
    const url = await freshDatabase('reactors_config_bare');
    const bare = new DataSource({ type: 'postgres', url, entities: subscriptionEntities, synchronize: false, logging: false });
    await bare.initialize();
    try {
      const error = await rejectionOf(EventSourcing.attach(bare, { queue: { connection: redisUrl, name: queueName('bare') } }));
      expect(error).toBeInstanceOf(EventSourcingConfigError);
      expect(error.message).toContain('table es_identity is missing');
    } finally {
      await bare.destroy();
    }
  });
});

describe('es.close()', () => {
  let dataSource: DataSource;
  const errors: unknown[] = [];

  beforeAll(async () => {
    dataSource = await testDataSource('reactors_close', subscriptionEntities);
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  test('closes the workers and relays it started, is idempotent, and ends the instance', async () => {
    const name = queueName('close');
    const es = await EventSourcing.attach(dataSource, {
      dispatcher: new Dispatcher().on(SubscriptionActivated, { async: function confirm() {} }),
      queue: { connection: redisUrl, name, relay: { interval: 10, grace: 0 } },
      onError: (error) => errors.push(error),
    });
    const worker = es.worker();
    es.relay();
    const queue = es.queue;
    // The relay is live: an outbox row left behind by a crash reaches the queue.
    await dataSource.query(
      `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor) VALUES ('subscription_events', 424242, 424242, 'Subscription.Activated', 'confirm')`,
    );
    await waitUntil(async () => (await outboxCount(dataSource)) === 0, 'the relay delivered the row');
    expect((await queue.getJobs(['waiting', 'active', 'completed', 'failed'])).map((job) => job.data.id)).toEqual([424242]);

    await es.close();
    await es.close();

    expect(worker.isRunning()).toBe(false);
    // No relay loop is left: a row written now stays where it is.
    await dataSource.query(
      `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor) VALUES ('subscription_events', 434343, 434343, 'Subscription.Activated', 'confirm')`,
    );
    await sleep(200);
    expect(await outboxCount(dataSource)).toBe(1);
    await dataSource.query('DELETE FROM es_outbox');
    expect(() => es.worker()).toThrow(EventSourcingConfigError);
    expect(() => es.worker()).toThrow('this EventSourcing instance is closed');
    await expect(es.pendingReactorJobs()).rejects.toThrow('this EventSourcing instance is closed');
    expect(errors).toEqual([]);
    // The DataSource can be attached again.
    const again = await EventSourcing.attach(dataSource);
    await again.close();
    await obliterate(name);
  });
});
