import type { DataSource } from 'typeorm';
import { EventSourcing, EventSourcingConfigError, ImmutableEventError } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import {
  Subscription,
  SubscriptionCreated,
  SubscriptionEvent,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from '../support/subscription-model';
import { rejectionOf } from '../support/rejection';
import { countEvents, eventRows, loadSubscription, subscriptionRow } from '../support/write-path-lint';

describe('events are immutable', () => {
  let dataSource: DataSource;
  let es: EventSourcing;
  let subscriptionId: number;
  let noteEventId: number;

  /** Every event row, in id order, to compare before and after. */
  const allEvents = () => dataSource.query('SELECT * FROM subscription_events ORDER BY id');

  beforeAll(async () => {
    dataSource = await testDataSource('immutability', subscriptionEntities);
    es = await EventSourcing.attach(dataSource);
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 5 }));
    subscriptionId = created.aggregateId;
    const subscription = await loadSubscription(dataSource, subscriptionId);
    const note = await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'original' }));
    noteEventId = note.id;
  });

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  /** Runs `change`, expects ImmutableEventError with `message`, and checks that no event row changed. */
  async function expectRefused(change: () => Promise<unknown>, message: string): Promise<ImmutableEventError> {
    const before = await allEvents();
    const error = await rejectionOf(change());
    expect(error).toBeInstanceOf(ImmutableEventError);
    expect(error.code).toBe('IMMUTABLE_EVENT');
    expect(error.message).toBe(message);
    expect(await allEvents()).toEqual(before);
    return error;
  }

  test('manager.save(loadedEvent) after changing a @Data attribute: ImmutableEventError, row unchanged', async () => {
    const loaded = await dataSource.manager.findOneByOrFail(SubscriptionNoteAdded, { id: noteEventId });
    expect(loaded.note).toBe('original');
    loaded.note = 'rewritten history';

    const error = await expectRefused(
      () => dataSource.manager.save(loaded),
      `subscription_events row ${noteEventId}: events are append-only, update refused`,
    );
    expect(error).toMatchObject({ table: 'subscription_events', operation: 'update', eventId: noteEventId });
  });

  test('manager.save(loadedEvent) without a change is a no-op, not a write', async () => {
    const before = await allEvents();
    const loaded = await dataSource.manager.findOneByOrFail(SubscriptionNoteAdded, { id: noteEventId });
    await expect(dataSource.manager.save(loaded)).resolves.toBe(loaded);
    expect(await allEvents()).toEqual(before);
  });

  test('manager.save of the instance a write returned, changed afterwards: ImmutableEventError', async () => {
    const subscription = await loadSubscription(dataSource, subscriptionId);
    const event = await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'fresh' }));
    event.metadata = { editedLater: true };

    await expectRefused(
      () => dataSource.manager.save(event),
      `subscription_events row ${event.id}: events are append-only, update refused`,
    );
  });

  test('manager.update, on the events class and on a concrete event class: ImmutableEventError', async () => {
    await expectRefused(
      () => dataSource.manager.update(SubscriptionEvent, noteEventId, { version: 99 }),
      'subscription_events: events are append-only, update refused',
    );
    await expectRefused(
      () => dataSource.manager.update(SubscriptionNoteAdded, { id: noteEventId }, { metadata: { x: 1 } }),
      'subscription_events: events are append-only, update refused',
    );
    await expectRefused(
      () => dataSource.manager.increment(SubscriptionEvent, { id: noteEventId }, 'version', 1),
      'subscription_events: events are append-only, update refused',
    );
    await expectRefused(
      () => dataSource.createQueryBuilder().update(SubscriptionEvent).set({ version: 7 }).where('id = :id', { id: noteEventId }).execute(),
      'subscription_events: events are append-only, update refused',
    );
  });

  test('manager.delete and a delete query builder: ImmutableEventError', async () => {
    await expectRefused(
      () => dataSource.manager.delete(SubscriptionEvent, noteEventId),
      'subscription_events: events are append-only, remove refused',
    );
    await expectRefused(
      () => dataSource.manager.delete(SubscriptionNoteAdded, { aggregateId: subscriptionId }),
      'subscription_events: events are append-only, remove refused',
    );
    await expectRefused(
      () => dataSource.createQueryBuilder().delete().from(SubscriptionEvent).where('id = :id', { id: noteEventId }).execute(),
      'subscription_events: events are append-only, remove refused',
    );
  });

  test('manager.remove(event): ImmutableEventError', async () => {
    const loaded = await dataSource.manager.findOneByOrFail(SubscriptionNoteAdded, { id: noteEventId });
    const error = await expectRefused(
      () => dataSource.manager.remove(loaded),
      `subscription_events row ${noteEventId}: events are append-only, remove refused`,
    );
    expect(error).toMatchObject({ operation: 'remove', eventId: noteEventId });
    expect(loaded.id).toBe(noteEventId);
  });

  test('raw SQL UPDATE and DELETE are refused by the append-only trigger', async () => {
    const before = await allEvents();

    const update = await rejectionOf(dataSource.query(`UPDATE subscription_events SET data = '{}' WHERE id = $1`, [noteEventId]));
    expect(update.message).toContain('append-only');
    expect(update.message).toBe('events are append-only: UPDATE on public.subscription_events refused');
    expect(update.driverError.code).toBe('23001');

    const remove = await rejectionOf(dataSource.query('DELETE FROM subscription_events WHERE id = $1', [noteEventId]));
    expect(remove.message).toBe('events are append-only: DELETE on public.subscription_events refused');

    const all = await rejectionOf(dataSource.query('DELETE FROM subscription_events'));
    expect(all.message).toContain('append-only');

    expect(await allEvents()).toEqual(before);
  });

  test('es.append(alreadySavedEvent): ImmutableEventError, nothing written', async () => {
    const subscription = await loadSubscription(dataSource, subscriptionId);
    const saved = await es.append(SubscriptionNoteAdded.build({ subscription, note: 'once' }));
    const rowBefore = await subscriptionRow(dataSource, subscriptionId);

    const error = await expectRefused(
      () => es.append(saved),
      `subscription_events row ${saved.id}: events are append-only, update refused`,
    );
    expect(error.eventId).toBe(saved.id);
    expect(await subscriptionRow(dataSource, subscriptionId)).toEqual(rowBefore);

    const loaded = await dataSource.manager.findOneByOrFail(SubscriptionNoteAdded, { id: saved.id });
    await expectRefused(() => es.append(loaded), `subscription_events row ${saved.id}: events are append-only, update refused`);
  });

  test('events enter only through the write path: a plain object inserted or saved as an event is refused', async () => {
    const rowBefore = await subscriptionRow(dataSource, subscriptionId);
    const before = await allEvents();
    // What a hand-written import or a careless upsert would pass: no build, no apply.
    const plain: any = {
      aggregateId: subscriptionId,
      version: 77,
      data: { note: 'forged' },
      metadata: {},
      createdAt: new Date(),
    };

    const inserted = await rejectionOf(dataSource.manager.insert(SubscriptionNoteAdded, plain));
    expect(inserted).toBeInstanceOf(EventSourcingConfigError);
    expect(inserted.message).toBe(
      'subscription_events: an event is written by saving an instance of its event class (built with build()), not a plain object',
    );
    const saved = await rejectionOf(dataSource.manager.save(SubscriptionNoteAdded, { ...plain, note: 'forged' }));
    expect(saved).toBeInstanceOf(EventSourcingConfigError);
    const upserted = await rejectionOf(dataSource.manager.upsert(SubscriptionNoteAdded, { ...plain }, ['id']));
    expect(upserted).toBeInstanceOf(EventSourcingConfigError);

    expect(await allEvents()).toEqual(before);
    expect(await subscriptionRow(dataSource, subscriptionId)).toEqual(rowBefore);
    expect(await es.verify(Subscription, { id: subscriptionId })).toEqual([]);
  });

  test('an aggregate with events is not deleted through TypeORM: the foreign key refuses', async () => {
    const subscription = await loadSubscription(dataSource, subscriptionId);
    const before = await allEvents();

    const error = await rejectionOf(dataSource.manager.remove(subscription));
    expect(error.message).toContain('violates foreign key constraint');
    expect(error.message).toContain('subscription_events');
    expect(await subscriptionRow(dataSource, subscriptionId)).toBeDefined();
    expect(await allEvents()).toEqual(before);
  });

  describe('@HasEvents is read-only', () => {
    let id: number;

    beforeAll(async () => {
      const subscription = new Subscription();
      await dataSource.manager.save(SubscriptionCreated.build({ subscription, userId: 6 }));
      for (const note of ['a', 'b', 'c', 'd']) {
        await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note }));
      }
      id = subscription.id;
      // Store the rows physically in descending version order, so that an unordered read
      // (what TypeORM issues for a relation) returns them out of order.
      await dataSource.query('CREATE INDEX immutability_version_desc ON subscription_events (version DESC)');
      await dataSource.query('CLUSTER subscription_events USING immutability_version_desc');
    });

    test('aggregate.events comes back sorted by version', async () => {
      const unordered = await dataSource.query('SELECT version FROM subscription_events WHERE subscription_id = $1', [id]);
      expect(unordered.map((row: { version: number }) => row.version)).toEqual([5, 4, 3, 2, 1]);

      const loaded = await dataSource.manager.findOneOrFail(Subscription, { where: { id }, relations: { events: true } });
      expect(loaded.events.map((event) => event.version)).toEqual([1, 2, 3, 4, 5]);
      expect(loaded.events.map((event) => event.type)).toEqual([
        'Subscription.Created',
        'Subscription.NoteAdded',
        'Subscription.NoteAdded',
        'Subscription.NoteAdded',
        'Subscription.NoteAdded',
      ]);
      expect((loaded.events[1] as SubscriptionNoteAdded).note).toBe('a');

      const viaBuilder = await dataSource.manager
        .createQueryBuilder(Subscription, 'subscription')
        .leftJoinAndSelect('subscription.events', 'event')
        .where('subscription.id = :id', { id })
        .getOneOrFail();
      expect(viaBuilder.events.map((event) => event.version)).toEqual([1, 2, 3, 4, 5]);
    });

    test('saving an aggregate whose events array was truncated or modified leaves the events table untouched', async () => {
      const before = await allEvents();
      const count = await countEvents(dataSource);
      const loaded = await dataSource.manager.findOneOrFail(Subscription, { where: { id }, relations: { events: true } });

      loaded.events.splice(2); // drop versions 3..5
      (loaded.events[1] as SubscriptionNoteAdded).note = 'tampered';
      loaded.events[0].metadata = { tampered: true };
      loaded.events.push(SubscriptionNoteAdded.build({ note: 'smuggled in' }));
      loaded.viewCount = 12; // an excluded column: the save really writes the aggregate row
      await dataSource.manager.save(loaded);

      expect(await countEvents(dataSource)).toBe(count);
      expect(await allEvents()).toEqual(before);
      expect(await subscriptionRow(dataSource, id)).toMatchObject({ viewCount: 12, version: 5 });
      expect((await eventRows(dataSource, id)).map((row) => row.version)).toEqual([1, 2, 3, 4, 5]);

      // An emptied array and a missing one change nothing either.
      loaded.events = [];
      loaded.viewCount = 13;
      await dataSource.manager.save(loaded);
      const reloaded = await dataSource.manager.findOneOrFail(Subscription, { where: { id } });
      reloaded.viewCount = 14;
      await dataSource.manager.save(reloaded);

      expect(await allEvents()).toEqual(before);
      expect(await subscriptionRow(dataSource, id)).toMatchObject({ viewCount: 14, version: 5 });
      expect(await es.verify(Subscription, { id })).toEqual([]);
    });
  });
});
