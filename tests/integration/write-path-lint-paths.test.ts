import type { DataSource } from 'typeorm';
import {
  AggregateEvent,
  Attribute,
  Command,
  ConcurrencyError,
  ConnectionLostError,
  EventSourcing,
  type EventSourcingOptions,
  ReactorDeadlockError,
  ReactorError,
  type Reactor,
  type ReactorContext,
  type ReactorQueueOptions,
} from 'typeorm-event-sourcing';
import { SubscriptionCreated } from '../support/subscription-model';
import { writePathLint, type LintAttachContext } from '../support/write-path-lint';

/**
 * The write-path lint (tests/support/write-path-lint.ts) on the paths beyond a plain save: an
 * event saved by a trigger reactor inside another event's transaction, an event with a trigger
 * reactor of its own, and writes whose events have async reactors on a queue (outbox rows, jobs,
 * runs), through each way of writing: the one-statement path (issue 11, named and unnamed
 * statements), the locked path (`fastPath: false`), manager.save and a command. Each declares the
 * statements a write of a loaded instance must send (`expectedPath`), so that a path silently
 * taking another cannot pass for it.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
/** Queue names unique to this run, so parallel test files and earlier runs never share jobs. */
const runId = `${process.pid}-${Date.now()}`;

/** Attaches with the lint's async reactors and a queue of this suite's own. */
function withQueue(suffix: string, queue: Partial<ReactorQueueOptions> = {}, options: Omit<EventSourcingOptions, 'dispatcher' | 'queue'> = {}) {
  return (dataSource: DataSource, { dispatcher }: LintAttachContext) =>
    EventSourcing.attach(dataSource, { ...options, dispatcher, queue: { connection: redisUrl, name: `es-lint-${runId}-${suffix}`, ...queue } });
}

// --- a trigger reactor saving the event under test through ctx.manager ---------------------------

/** The event each source event's trigger reactor must save, and what the save returned. */
const targets = new WeakMap<AggregateEvent, AggregateEvent>();
const saved = new WeakMap<AggregateEvent, AggregateEvent>();

class SaveTargetEvent implements Reactor<SubscriptionCreated> {
  async call(event: SubscriptionCreated, ctx: ReactorContext) {
    const target = targets.get(event);
    if (target) saved.set(event, await ctx.manager.save(target));
  }
}

/**
 * A failure inside the trigger reaches the caller as the trigger's ReactorError, whose cause is
 * the error of the event under test. Conflicts, lost connections and self-deadlocks are never
 * wrapped, so that callers can retry them.
 */
function triggerCause(error: any): any {
  if (!(error instanceof ReactorError)) return error;
  expect(error).toMatchObject({ reactor: 'SaveTargetEvent', eventType: 'Subscription.Created', code: 'REACTOR' });
  expect(error.message).toBe(`reactor SaveTargetEvent failed on Subscription.Created of aggregate ${String(error.aggregateId)}: ${(error.cause as Error).message}`);
  expect([ConcurrencyError, ConnectionLostError, ReactorDeadlockError].some((type) => error.cause instanceof type)).toBe(false);
  return error.cause;
}

writePathLint(
  'a trigger reactor of another event saves it through ctx.manager',
  async ({ event, manager }) => {
    // The source creates an aggregate of its own, so it never holds the lock of the event's.
    const source = SubscriptionCreated.build({ userId: 9000 });
    targets.set(source, event);
    await manager.save(source);
    const result = saved.get(source);
    expect(result).toBe(event);
    return result as typeof event;
  },
  {
    database: 'lint_trigger_path',
    attach: (dataSource, { dispatcher }) =>
      EventSourcing.attach(dataSource, { dispatcher: dispatcher.on(SubscriptionCreated, { trigger: SaveTargetEvent }) }),
    committedPerWrite: 2,
    unwrap: triggerCause,
    inTransactions: true,
  },
);

// --- writes whose events have async reactors on a queue -----------------------------------------

const reactors = { reactors: ['LintMailer', 'LintAudit'] };

writePathLint('manager.save(event) with async reactors on a queue', ({ manager, event }) => manager.save(event), {
  database: 'lint_save_queue',
  attach: withQueue('save'),
  outbox: reactors,
  inTransactions: true,
  expectedPath: 'conditional',
});

writePathLint('es.append (fast path, loaded instance) with async reactors on a queue', ({ es, manager, event }) => es.append(event, { manager }), {
  database: 'lint_append_queue',
  attach: withQueue('append'),
  outbox: reactors,
  inTransactions: true,
  expectedPath: 'fast',
});

writePathLint('es.append with fastPath: false, with async reactors on a queue', ({ es, manager, event }) => es.append(event, { manager }), {
  database: 'lint_append_locked',
  attach: withQueue('append-locked', {}, { fastPath: false }),
  outbox: reactors,
  inTransactions: true,
  expectedPath: 'locked',
});

writePathLint("es.append with statements: 'unnamed', with async reactors on a queue", ({ es, manager, event }) => es.append(event, { manager }), {
  database: 'lint_append_unnamed',
  attach: withQueue('append-unnamed', {}, { statements: 'unnamed' }),
  outbox: reactors,
  expectedPath: 'fast',
});

writePathLint('an event with a trigger reactor (writing through ctx.manager), with async reactors on a queue', ({ es, manager, event }) => es.append(event, { manager }), {
  database: 'lint_append_trigger',
  attach: withQueue('append-trigger'),
  outbox: reactors,
  trigger: true,
  inTransactions: true,
  expectedPath: 'transaction',
});

writePathLint(
  "es.append(event) with async reactors on a queue, outbox rows kept until their jobs complete",
  ({ es, manager, event }) => es.append(event, { manager }),
  {
    database: 'lint_append_queue_completed',
    attach: withQueue('append-completed', { keepOutboxUntil: 'completed' }),
    outbox: reactors,
    inTransactions: true,
  },
);

/** A command whose buildEvent returns the event it is given: the whole command pipeline writes it. */
class WriteGivenEvent extends Command<AggregateEvent> {
  @Attribute() event!: AggregateEvent;
  buildEvent() {
    return this.event;
  }
}

writePathLint(
  'Command.call with async reactors on a queue',
  async ({ manager, event }) => {
    const result = await WriteGivenEvent.call({ event }, { manager });
    expect(result).toBe(event);
    return event;
  },
  {
    database: 'lint_command_queue',
    attach: withQueue('command'),
    outbox: reactors,
    inTransactions: true,
    expectedPath: 'fast',
  },
);
