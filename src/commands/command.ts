import type { EntityManager } from 'typeorm';
import type { AttributeIssue } from '../errors/validation-error';
import type { AggregateEvent } from '../events/aggregate-event';
import { runCommand } from './run-command';

/** Options of `Command.call`. */
export interface CommandCallOptions {
  /**
   * Write in this manager's transaction (or through its DataSource). Needed when several
   * DataSources have EventSourcing attached.
   * @defaultValue the only attached DataSource's manager
   */
  manager?: EntityManager;
  /**
   * The version the command's aggregate must be at; a mismatch raises `ConcurrencyError` and is
   * never retried. Without it, the command expects the version its aggregate had when loaded, and
   * on a conflict reloads the aggregate and runs validate, noop and buildEvent again.
   */
  expectedVersion?: number;
  /**
   * Conflicts retried before `ConcurrencyError` reaches the caller (only without
   * `expectedVersion`, and only when the command runs its own transaction).
   * @defaultValue 3
   */
  retries?: number;
}

/** The property names of a command that are attributes (not methods, not the base class's). */
export type AttributeKeys<C> = {
  [K in keyof C]-?: K extends keyof Command<any> ? never : C[K] extends (...args: any[]) => any ? never : K;
}[keyof C];

/** What `Command.call` accepts: the command's declared attributes. */
export type CommandAttributes<C> = Pick<C, AttributeKeys<C>>;

/** What a command builds: one event, or several saved in order in one transaction. */
export type CommandEvents = AggregateEvent | AggregateEvent[];

/** The event(s) a command class builds. */
export type EmittedBy<C> = C extends Command<infer E> ? E : never;

/**
 * The talk's third pattern: a command validates its attributes and the aggregate's state, skips
 * no-ops, and builds and persists the event.
 *
 * `call` runs, in order: assign attributes, reject unknown ones, validate (class-validator rules
 * and a missing aggregate first, then `validate()`), `noop()`, `buildEvent()`, write. A no-op
 * returns `null` and writes nothing; invalid input raises `ValidationError` before anything is
 * built. The write expects the version the aggregate had when the command started, so `validate`
 * and `noop` decisions hold: on a conflict the aggregate is reloaded and the steps run again.
 *
 * @example
 * ```ts
 * export class ActivateSubscription extends Command<SubscriptionActivated> {
 *   @Attribute() subscription!: Subscription;
 *   @Attribute() @IsNotEmpty() stripeKey!: string;
 *   @Attribute() metadata?: Record<string, unknown>;
 *   noop() { return this.subscription.status === 'active'; }
 *   buildEvent() {
 *     return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey, metadata: this.metadata });
 *   }
 * }
 * await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' }); // the saved event, or null
 * ```
 */
export abstract class Command<E extends CommandEvents = AggregateEvent> {
  #issues: AttributeIssue[] = [];

  /**
   * State checks that need the aggregate (sync or async), run after the attribute rules pass.
   * Report problems with `addError`; any reported problem stops the command with a
   * `ValidationError`.
   */
  validate(): void | Promise<void> {}

  /** True when the command would change nothing: `call` then writes nothing and returns `null`. */
  noop(): boolean | Promise<boolean> {
    return false;
  }

  /**
   * Builds the event (or events, saved in order in one transaction) the command writes. An empty
   * array means there is nothing to write: `call` returns `null`, as for a no-op.
   */
  abstract buildEvent(): E | Promise<E>;

  /** Reports a problem from `validate()`. */
  protected addError(attribute: string, message: string, constraint = 'validate'): void {
    const issue = this.#issues.find((existing) => existing.attribute === attribute);
    if (issue) issue.constraints[constraint] = message;
    else this.#issues.push({ attribute, constraints: { [constraint]: message } });
  }

  /** @internal Runs `validate()` and returns what it reported. */
  async collectIssues(): Promise<AttributeIssue[]> {
    this.#issues = [];
    await this.validate();
    return this.#issues;
  }

  /**
   * Runs the command and returns the saved event(s), or `null` for a no-op.
   *
   * @throws ValidationError listing every failed attribute; nothing is built or written.
   * @throws ConcurrencyError when `expectedVersion` does not match, or conflicts outlast the retries.
   * @throws EventApplyError when the event's `apply` throws.
   * @throws UsageError when `expectedVersion` is not a non-negative integer.
   * @throws ConnectionLostError when the database connection broke during the write (retryable).
   */
  static call<C extends Command<any>>(this: new (...args: any[]) => C, attributes: CommandAttributes<C>, options: CommandCallOptions = {}): Promise<EmittedBy<C> | null> {
    return runCommand(this, attributes as Record<string, unknown>, options) as Promise<EmittedBy<C> | null>;
  }
}
