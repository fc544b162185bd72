import { ChildEntity } from 'typeorm';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { getMetadataStorage } from '../metadata/metadata-storage';

/** Turns the stored data of one schema version into the data of the next. */
export type Upcaster = (data: Record<string, any>) => Record<string, unknown>;

/** Options of {@link EventType}. */
export interface EventTypeOptions {
  /**
   * Whether an event of this type, built without an existing aggregate, creates one. Every other
   * event type needs its aggregate and raises `AggregateRequiredError` without one.
   * @defaultValue false
   */
  creates?: boolean;
  /**
   * The version of the data shape: new events store it in `schema_version`. Raise it when the
   * `@Data` attributes change in a way old rows do not fit, and give an upcaster from the
   * previous version.
   * @defaultValue 1
   */
  version?: number;
  /**
   * One function per older version: `upcast[n]` turns the stored data of version `n` into that of
   * version `n + 1`. Rows are upcast step by step on every read, before the `@Data` attributes are
   * hydrated and checked, and are never rewritten. Every version below `version` needs one.
   */
  upcast?: Record<number, Upcaster>;
  /**
   * Names this type was stored under before: their rows load as this class. A renamed type keeps
   * its old name here; new events are written under the new name.
   */
  aliases?: readonly string[];
  /**
   * Refuses new events of this type (`RetiredEventTypeError`) while old rows still load, for
   * replay and history.
   * @defaultValue false
   */
  retired?: boolean;
}

/**
 * Gives an event class its stored type name, independent of the class name so classes can be
 * renamed freely. Names and aliases must be unique: two classes claiming one name fail at
 * attach.
 *
 * @example
 * ```ts
 * @EventType('Subscription.Created', { creates: true })
 * export class SubscriptionCreated extends SubscriptionEvent { ... }
 *
 * // Version 2 added `plan`; rows of version 1, and rows stored as 'Subscription.Started',
 * // load as this class with plan 'basic'.
 * @EventType('Subscription.Activated', {
 *   version: 2,
 *   upcast: { 1: (data) => ({ ...data, plan: 'basic' }) },
 *   aliases: ['Subscription.Started'],
 * })
 * export class SubscriptionActivated extends SubscriptionEvent { ... }
 * ```
 */
export function EventType(name: string, options: EventTypeOptions = {}): ClassDecorator {
  return (target) => {
    const version = options.version ?? 1;
    const where = `@EventType('${name}') on ${target.name}`;
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new EventSourcingConfigError(`${where}: version must be a positive integer, not ${String(version)}`);
    }
    const upcast = options.upcast ?? {};
    for (const key of Object.keys(upcast)) {
      const from = Number(key);
      if (!Number.isSafeInteger(from) || from < 1 || from >= version) {
        throw new EventSourcingConfigError(`${where}: upcast has a step from version ${key}, but steps go from 1 to ${version - 1}`);
      }
      if (typeof upcast[from] !== 'function') throw new EventSourcingConfigError(`${where}: upcast[${key}] must be a function`);
    }
    for (let from = 1; from < version; from += 1) {
      if (!upcast[from]) {
        throw new EventSourcingConfigError(
          `${where}: version ${version} needs an upcaster from every earlier version; upcast[${from}] is missing (give (data) => data when version ${from} data already fits)`,
        );
      }
    }
    const aliases = [...(options.aliases ?? [])];
    for (const alias of aliases) {
      if (typeof alias !== 'string' || alias.length === 0 || alias === name) {
        throw new EventSourcingConfigError(`${where}: aliases must be other, non-empty names (got ${JSON.stringify(alias)})`);
      }
    }
    ChildEntity(name)(target);
    getMetadataStorage().eventTypes.push({
      target,
      name,
      creates: options.creates ?? false,
      version,
      upcast: { ...upcast },
      aliases,
      retired: options.retired ?? false,
    });
  };
}
