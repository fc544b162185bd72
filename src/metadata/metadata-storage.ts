/**
 * What the decorators record. Decorators only push plain records here (and TypeORM's own
 * metadata args); the records are resolved against a DataSource's entity metadata when
 * `EventSourcing.attach` runs, because the classes they point at may not exist yet while
 * decorators run.
 */
export interface AggregateRecord {
  readonly target: Function;
  /** Properties that are not derived from events (not compared by verify, not written by rebuild). */
  readonly exclude: readonly string[];
  /** Builds the first event of a row from before the model was sourced. */
  readonly baseline: ((row: any) => unknown) | undefined;
  /** What writes bypassing events may do to sourced columns. */
  readonly directWrites: 'allow' | 'warn' | 'reject';
}

export interface AggregateVersionRecord {
  readonly target: Function;
  readonly propertyName: string;
}

export interface EventsOfRecord {
  /** The abstract events class of one aggregate (one table). */
  readonly target: Function;
  readonly aggregate: () => Function;
}

export interface EventTypeRecord {
  readonly target: Function;
  /** The stored name, e.g. `'Subscription.Activated'`. */
  readonly name: string;
  /** Whether an event of this type, written without an existing aggregate, creates one. */
  readonly creates: boolean;
  /** The version of the data shape new events are written with (`schema_version`). */
  readonly version: number;
  /** Upcasters by the version they read: `upcast[n]` turns version-n data into version n + 1. */
  readonly upcast: Readonly<Record<number, (data: any) => Record<string, unknown>>>;
  /** Earlier stored names whose rows load as this class. */
  readonly aliases: readonly string[];
  /** Whether new events of this type are refused (old rows still load). */
  readonly retired: boolean;
}

export interface DataRecord {
  readonly target: Function;
  readonly propertyName: string;
  /** Explicit type, for properties whose `design:type` is `Object` (unions such as `Date | null`). */
  readonly type: (() => unknown) | undefined;
  /** The type TypeScript emitted for the property, when decorator metadata is on. */
  readonly designType: unknown;
  /** Whether `build` may leave it out. */
  readonly optional: boolean;
}

export interface AttributeRecord {
  readonly target: Function;
  readonly propertyName: string;
  /** The type TypeScript emitted for the property: an aggregate class makes it an aggregate attribute. */
  readonly designType: unknown;
  readonly optional: boolean;
}

export class MetadataStorage {
  readonly aggregates: AggregateRecord[] = [];
  readonly aggregateVersions: AggregateVersionRecord[] = [];
  readonly eventsOf: EventsOfRecord[] = [];
  readonly eventTypes: EventTypeRecord[] = [];
  readonly data: DataRecord[] = [];
  readonly attributes: AttributeRecord[] = [];

  /** The `@Data` records of a class and of every class it extends, parents first. */
  dataOf(target: Function): DataRecord[] {
    return inheritanceChain(target).flatMap((t) => this.data.filter((record) => record.target === t));
  }

  /** The `@Attribute` records of a command class and of every class it extends, parents first. */
  attributesOf(target: Function): AttributeRecord[] {
    return inheritanceChain(target).flatMap((t) => this.attributes.filter((record) => record.target === t));
  }

  isAggregate(target: unknown): boolean {
    return this.aggregates.some((record) => record.target === target);
  }

  /** The `@EventsOf` record that an event class (or one of its parents) carries. */
  eventsOfFor(target: Function): EventsOfRecord | undefined {
    for (let t: unknown = target; typeof t === 'function' && t !== Function.prototype; t = Object.getPrototypeOf(t)) {
      const record = this.eventsOf.find((r) => r.target === t);
      if (record) return record;
    }
    return undefined;
  }

  eventTypeOf(target: Function): EventTypeRecord | undefined {
    return this.eventTypes.find((record) => record.target === target);
  }

  /** Every name rows of an event class may be stored under: its `@EventType` name, then its aliases. */
  storedNamesOf(target: Function): string[] {
    const record = this.eventTypeOf(target);
    return record ? [record.name, ...record.aliases] : [target.name];
  }
}

/** The type TypeScript emitted for a property (`emitDecoratorMetadata` with reflect-metadata loaded). */
export function designTypeOf(object: object, propertyName: string | symbol): unknown {
  const reflect = Reflect as unknown as { getMetadata?: (key: string, target: object, property: string | symbol) => unknown };
  return reflect.getMetadata?.('design:type', object, propertyName);
}

/** A class and every class it extends, parents first. */
function inheritanceChain(target: Function): Function[] {
  const chain: Function[] = [];
  for (let t: unknown = target; typeof t === 'function' && t !== Function.prototype; t = Object.getPrototypeOf(t)) {
    chain.unshift(t as Function);
  }
  return chain;
}

const storageKey = Symbol.for('typeorm-event-sourcing.metadata-storage');

/**
 * The process-wide storage, kept on `globalThis` so that two installed copies of the package
 * (an app's and a CLI's, say) see the same decorated classes.
 */
export function getMetadataStorage(): MetadataStorage {
  const scope = globalThis as { [storageKey]?: MetadataStorage };
  return (scope[storageKey] ??= new MetadataStorage());
}
