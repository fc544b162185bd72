import type { DataSource } from 'typeorm';
import { EventSourcing, EventSourcingConfigError, EventSourcingError, Projection, ProjectionError, UsageError, type AggregateEvent } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { waitFor } from '../support/processes';
import { createHandledTable, handledRows, HANDLED_TABLE, horizonPassed, recordHandled } from '../support/projection-read-model';
import { rejectionOf } from '../support/rejection';
import { ReplayLedgerOpened } from '../support/replay-models';
import { Subscription, SubscriptionCreated, SubscriptionNoteAdded, subscriptionEntities } from '../support/subscription-model';

/**
 * A handler that throws: its batch rolls back, the checkpoint stays at the batch's start, the
 * event is named (status, ProjectionError), and once the handler works every event is handled
 * exactly once. Also the projection's own argument checks.
 */

let dataSource: DataSource;
let es: EventSourcing;
const errors: unknown[] = [];

beforeAll(async () => {
  dataSource = await testDataSource('projections_errors', subscriptionEntities);
  es = await EventSourcing.attach(dataSource, { onError: (error) => errors.push(error) });
  await createHandledTable(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

beforeEach(async () => {
  await dataSource.query(`TRUNCATE ${HANDLED_TABLE}`);
  errors.length = 0;
});

/** Writes `count` notes on a new subscription; returns them in order. */
async function notes(count: number, prefix: string): Promise<AggregateEvent[]> {
  const id = (await es.append(SubscriptionCreated.build({ userId: 1 }))).aggregateId as number;
  const written: AggregateEvent[] = [];
  for (let i = 0; i < count; i += 1) {
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id });
    written.push(await es.append(SubscriptionNoteAdded.build({ subscription, note: `${prefix}${i}` })));
  }
  await horizonPassed(dataSource);
  return written;
}

async function statusOf(name: string) {
  return (await es.projections.status()).find((status) => status.name === name)!;
}

test('a handler throwing mid-batch: that batch leaves nothing, the checkpoint stays at its start, catchUp rejects with ProjectionError naming the event; fixed, every event is handled once', async () => {
  let failOn: number | undefined;
  const projection = new Projection('failing-handler').on(SubscriptionNoteAdded, async (event, manager) => {
    await recordHandled(manager, event);
    if (event.id === failOn) throw new Error(`cannot project note ${event.note}`);
  });
  const written = await notes(6, 'n');
  // Batches of 3: [0 1 2] [3 4 5]; the handler fails on 4, the second of its batch.
  failOn = written[4].id;
  const error = await rejectionOf(es.projections.catchUp(projection, { batchSize: 3 }));
  expect(error).toBeInstanceOf(ProjectionError);
  expect(error).toBeInstanceOf(EventSourcingError);
  expect(error.code).toBe('PROJECTION');
  expect(error.message).toBe(
    `projection 'failing-handler' failed on Subscription.NoteAdded ${written[4].id} (subscription_events, position ${written[4].position}): cannot project note n4`,
  );
  expect(error).toMatchObject({ projection: 'failing-handler', eventType: 'Subscription.NoteAdded', eventId: written[4].id, table: 'subscription_events', position: written[4].position });
  expect((error.cause as Error).message).toBe('cannot project note n4');

  // The first batch stays; nothing of the second (not even event 3, handled before the throw).
  expect((await handledRows(dataSource)).map((row) => row.id)).toEqual(written.slice(0, 3).map((event) => event.id));
  const failed = await statusOf('failing-handler');
  expect(failed.checkpoint).toEqual({ txId: written[2].txId, position: written[2].position });
  expect(failed.lastError).toEqual({
    message: 'cannot project note n4',
    eventType: 'Subscription.NoteAdded',
    eventId: written[4].id,
    table: 'subscription_events',
    position: written[4].position,
    at: expect.any(Date),
  });
  expect(failed.lag).toEqual({ events: 3, seconds: expect.any(Number) });

  // Failing again does not move anything either.
  await expect(es.projections.catchUp(projection, { batchSize: 3 })).rejects.toBeInstanceOf(ProjectionError);
  expect(await handledRows(dataSource)).toHaveLength(3);

  failOn = undefined;
  expect(await es.projections.catchUp(projection, { batchSize: 3 })).toEqual({ processed: 3 });
  expect((await handledRows(dataSource)).map((row) => row.id)).toEqual(written.map((event) => event.id));
  const fixed = await statusOf('failing-handler');
  expect(fixed.lastError).toBeNull();
  expect(fixed.checkpoint).toEqual({ txId: written[5].txId, position: written[5].position });
  expect(fixed.lag).toEqual({ events: 0, seconds: 0 });
});

test('run retries a failing batch with backoff, never skipping the event, reports each failure to onError, and clears lastError once a batch succeeds', async () => {
  let failures = 0;
  let failing = true;
  const projection = new Projection('retrying').on(SubscriptionNoteAdded, async (event, manager) => {
    if (failing && event.note === 'r1') {
      failures += 1;
      throw new Error('read model unavailable');
    }
    await recordHandled(manager, event);
  });
  // Past the notes earlier tests wrote.
  await es.projections.catchUp(new Projection('retrying').on(SubscriptionNoteAdded, () => undefined));
  const written = await notes(3, 'r');
  const stop = new AbortController();
  const started = performance.now();
  const running = es.projections.run(projection, { signal: stop.signal, pollInterval: 20, retryDelay: 40, maxRetryDelay: 160 });
  await waitFor('four failures', async () => failures >= 4, 20_000, 5);
  const elapsed = performance.now() - started;
  // 40 + 80 + 160 ms of backoff at least between the four tries.
  expect(elapsed).toBeGreaterThanOrEqual(270);
  expect((await statusOf('retrying')).lastError).toMatchObject({ message: 'read model unavailable', eventId: written[1].id, position: written[1].position });
  expect(await handledRows(dataSource)).toEqual([]);
  expect(errors.length).toBeGreaterThanOrEqual(3);
  expect(errors.every((error) => error instanceof ProjectionError && error.eventId === written[1].id)).toBe(true);

  failing = false;
  await waitFor('the three notes', async () => (await handledRows(dataSource)).length === 3, 20_000, 10);
  stop.abort();
  expect(await running).toEqual({ processed: 3 });
  expect((await handledRows(dataSource)).map((row) => row.id)).toEqual(written.map((event) => event.id));
  expect((await statusOf('retrying')).lastError).toBeNull();
});

test('a failure that is not a handler\'s (reading the batch) is recorded without an event and rethrown as it is', async () => {
  const projection = new Projection('unreadable').on(SubscriptionCreated, () => undefined);
  await es.append(SubscriptionCreated.build({ userId: 2 }));
  // A row whose data does not fit its class: loading it fails, before any handler runs.
  await dataSource.query(
    `INSERT INTO subscription_events (subscription_id, version, type, data, metadata, created_at) VALUES (1, 99, 'Subscription.Created', '{"userId": "not a number"}', '{}', now())`,
  );
  await horizonPassed(dataSource);
  const error = await rejectionOf(es.projections.catchUp(projection));
  expect(error).not.toBeInstanceOf(ProjectionError);
  expect(error.message).toMatch(/userId is stored as a string/);
  const { lastError } = await statusOf('unreadable');
  expect(lastError).toEqual({ message: error.message, eventType: null, eventId: null, table: null, position: null, at: expect.any(Date) });
});

describe('checks', () => {
  test('a projection name must be a non-empty string', () => {
    for (const name of ['', '  ', undefined, 42]) {
      const error = (() => {
        try {
          new Projection(name as string);
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(/^new Projection: name must be a non-empty string, got /);
    }
  });

  test('.on refuses a class that is not an @EventType event class, naming projection and class', () => {
    class NotAnEvent {}
    const projection = new Projection('checked');
    expect(() => projection.on(NotAnEvent as never, () => undefined)).toThrow(
      new EventSourcingConfigError(`projection 'checked': NotAnEvent is not an event class (a class decorated with @EventType)`),
    );
    expect(() => projection.on([SubscriptionCreated, Subscription as never], () => undefined)).toThrow(/projection 'checked': Subscription is not an event class/);
    expect(() => projection.on([], () => undefined)).toThrow(new UsageError(`projection 'checked': on`, 'classes', 'must name at least one event class'));
    expect(() => projection.on(SubscriptionCreated, 'handler' as never)).toThrow(UsageError);
  });

  test('catchUp and run refuse a projection without handlers, an event class of another DataSource, and bad options', async () => {
    await expect(es.projections.catchUp(new Projection('empty'))).rejects.toThrow(
      new UsageError(`es.projections.catchUp('empty')`, 'projection', 'handles no events: add a handler with .on(EventClass, handler)'),
    );
    await expect(es.projections.catchUp(new Projection('elsewhere').on(ReplayLedgerOpened, () => undefined))).rejects.toThrow(
      new EventSourcingConfigError(`es.projections.catchUp('elsewhere'): ReplayLedgerOpened is not an event class of this DataSource: list it in the DataSource's entities`),
    );
    const projection = new Projection('options').on(SubscriptionCreated, () => undefined);
    await expect(es.projections.catchUp(projection, { batchSize: 0 })).rejects.toThrow(/batchSize must be a positive integer, got 0/);
    await expect(es.projections.catchUp(projection, null as never)).rejects.toThrow(UsageError);
    await expect(es.projections.run(projection, { pollInterval: -1 })).rejects.toThrow(/pollInterval must be a positive number of milliseconds, got -1/);
    await expect(es.projections.run(projection, { signal: {} as never })).rejects.toThrow(/signal must be an AbortSignal/);
    await expect(es.projections.catchUp({ name: 'fake' } as never)).rejects.toThrow(/projection must be made with new Projection\(name\)/);
  });
});
