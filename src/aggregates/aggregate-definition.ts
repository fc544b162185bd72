import type { EntityManager, EntityMetadata, ObjectLiteral } from 'typeorm';
import type { AggregateRecord } from '../metadata/metadata-storage';
import { cloneValue, sameValue } from './column-values';

/** TypeORM's column metadata (not exported from the package root). */
export type ColumnMetadata = EntityMetadata['columns'][number];

/**
 * A join column TypeORM made for a relation (its property is the relation's), as opposed to a
 * foreign key the entity declares as a `@Column` of its own, which a relation then uses.
 */
function isRelationOnlyJoinColumn(column: ColumnMetadata): boolean {
  return column.relationMetadata !== undefined && column.propertyName === column.relationMetadata.propertyName;
}

/**
 * A decimal string without the zeros that do not change its value (`'010.50'` -> `'10.5'`),
 * compared as text so that digits beyond a double's precision still count.
 */
function canonicalDecimal(value: string): string {
  const match = /^([+-]?)0*(\d*?)(?:\.(\d*?)0*)?$/.exec(value.trim());
  if (!match) return value;
  const [, sign, whole, fraction] = match;
  const digits = `${whole || '0'}${fraction ? `.${fraction}` : ''}`;
  return digits === '0' ? '0' : `${sign === '-' ? '-' : ''}${digits}`;
}

/** Whether a default given as SQL is a constant: a quoted, numeric or boolean literal, or NULL, maybe cast. */
function isConstantSql(expression: string): boolean {
  return /^\s*(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|null)\s*(?:::\s*[a-z_][\w ]*(?:\[\])?\s*)?$/i.test(expression);
}

/** The entity property a column lives under (the embedded object's, for embedded columns). */
function topLevelProperty(column: ColumnMetadata): string {
  return column.propertyPath.split('.')[0];
}

/**
 * One aggregate as this library sees it, resolved against a DataSource's metadata: which columns
 * events decide (sourced), where the version lives, and how a fresh, never-written instance looks.
 */
export class AggregateDefinition {
  /** Columns whose values are the result of the events: compared by verify, written by rebuild. */
  readonly sourcedColumns: readonly ColumnMetadata[];
  readonly primaryColumn: ColumnMetadata;
  readonly versionColumn: ColumnMetadata;
  /** Columns an instance must hold for its stored state to be known: primary, version, sourced. */
  readonly requiredForStoredState: ReadonlySet<ColumnMetadata>;
  /**
   * Properties whose stored value may change without the version moving (columns events do not
   * decide, relations): `apply` reading one must see the locked row, not a remembered state.
   */
  readonly unvouchedProperties: ReadonlySet<string>;
  /** Columns pg returns as strings (numeric, bigint) while `apply` may set numbers. */
  readonly #numericColumns: ReadonlySet<ColumnMetadata>;
  #cachedDefaults: Map<ColumnMetadata, unknown> | undefined;

  /** Builds the first event of a row from before the model was sourced, when declared. */
  readonly baseline: AggregateRecord['baseline'];
  readonly directWrites: AggregateRecord['directWrites'];

  constructor(
    readonly metadata: EntityMetadata,
    readonly eventsMetadata: EntityMetadata,
    versionProperty: string,
    { exclude, baseline, directWrites }: Pick<AggregateRecord, 'exclude' | 'baseline' | 'directWrites'>,
  ) {
    this.baseline = baseline;
    this.directWrites = directWrites;
    this.primaryColumn = metadata.primaryColumns[0];
    this.versionColumn = metadata.findColumnWithPropertyName(versionProperty)!;
    this.sourcedColumns = metadata.columns.filter(
      (column) =>
        !column.isPrimary &&
        column !== this.versionColumn &&
        !column.isCreateDate &&
        !column.isUpdateDate &&
        !column.isDeleteDate &&
        !column.isVersion &&
        !column.isVirtual &&
        !column.isDiscriminator &&
        !column.generatedType &&
        !isRelationOnlyJoinColumn(column) &&
        !exclude.includes(column.propertyName),
    );
    this.requiredForStoredState = new Set([this.primaryColumn, this.versionColumn, ...this.sourcedColumns]);
    // An embedded object holding both kinds of columns counts as unvouched as a whole.
    this.unvouchedProperties = new Set([
      ...metadata.columns.filter((column) => !this.requiredForStoredState.has(column)).map(topLevelProperty),
      ...metadata.relations.map((relation) => relation.propertyPath.split('.')[0]),
    ]);
    const driver = metadata.connection.driver;
    this.#numericColumns = new Set(metadata.columns.filter((column) => ['numeric', 'decimal', 'bigint'].includes(driver.normalizeType(column))));
  }

  get name(): string {
    return this.metadata.name;
  }

  get target(): Function {
    return this.metadata.target as Function;
  }

  idOf(aggregate: ObjectLiteral): unknown {
    return this.primaryColumn.getEntityValue(aggregate);
  }

  versionOf(aggregate: ObjectLiteral): number {
    return Number(this.versionColumn.getEntityValue(aggregate) ?? 0);
  }

  setVersion(aggregate: ObjectLiteral, version: number): void {
    this.versionColumn.setEntityValue(aggregate, version);
  }

  /** A deep copy of every column value, to compare with or to restore later. */
  snapshot(aggregate: ObjectLiteral): Map<ColumnMetadata, unknown> {
    return new Map(this.metadata.columns.map((column) => [column, cloneValue(column.getEntityValue(aggregate))]));
  }

  restore(aggregate: ObjectLiteral, snapshot: Map<ColumnMetadata, unknown>): void {
    for (const [column, value] of snapshot) column.setEntityValue(aggregate, value);
  }

  /**
   * Whether two values of a column are the same as stored: `'10.50'` read from a numeric column
   * equals `10.5` set by `apply` and `'10.5'` from a default; otherwise as {@link sameValue}.
   */
  sameColumnValue(column: ColumnMetadata, a: unknown, b: unknown): boolean {
    if (this.#numericColumns.has(column) && a !== null && a !== undefined && b !== null && b !== undefined) {
      if (typeof a === 'string' && typeof b === 'string') return canonicalDecimal(a) === canonicalDecimal(b);
      if (typeof a !== typeof b) return Number(a) === Number(b);
    }
    return sameValue(a, b);
  }

  /** The sourced columns whose value differs between a snapshot and the aggregate now. */
  changedColumns(before: ReadonlyMap<ColumnMetadata, unknown>, aggregate: ObjectLiteral): ColumnMetadata[] {
    return this.sourcedColumns.filter((column) => !this.sameColumnValue(column, before.get(column), column.getEntityValue(aggregate)));
  }

  /** Copies every column value (not relations) from one instance to another. */
  copyColumns(from: ObjectLiteral, to: ObjectLiteral): void {
    for (const column of this.metadata.columns) {
      const value = column.getEntityValue(from);
      if (value !== undefined) column.setEntityValue(to, value);
    }
  }

  /**
   * A new instance as the database would create it: sourced columns hold their column defaults
   * (evaluated by PostgreSQL, so SQL expressions count), other sourced columns null, version 0.
   * Writes that create an aggregate and every replay start from this same state.
   */
  async fresh(manager: EntityManager): Promise<ObjectLiteral> {
    const aggregate = this.metadata.create() as ObjectLiteral;
    const defaults = await this.#defaults(manager);
    for (const column of this.sourcedColumns) {
      column.setEntityValue(aggregate, defaults.has(column) ? cloneValue(defaults.get(column)) : null);
    }
    this.setVersion(aggregate, 0);
    return aggregate;
  }

  async #defaults(manager: EntityManager): Promise<Map<ColumnMetadata, unknown>> {
    if (this.#cachedDefaults) return this.#cachedDefaults;
    const driver = manager.connection.driver;
    const withDefault = this.sourcedColumns.filter((column) => column.default !== undefined && column.default !== null);
    const defaults = new Map<ColumnMetadata, unknown>();
    if (withDefault.length > 0) {
      const selections = withDefault.map((column, index) => {
        const type = driver.normalizeType(column);
        const cast = type === 'enum' || type === 'simple-enum' ? '' : `::${type}${column.isArray ? '[]' : ''}`;
        return `(${driver.normalizeDefault(column)})${cast} AS "d${index}"`;
      });
      const [row] = await manager.query(`SELECT ${selections.join(', ')}`);
      withDefault.forEach((column, index) => defaults.set(column, driver.prepareHydratedValue(row[`d${index}`], column)));
    }
    // SQL expressions may change between calls (now(), random()); literals never do, also when
    // written as SQL (`() => "'[]'"`, which TypeORM needs for json columns).
    if (withDefault.every((column) => typeof column.default !== 'function' || isConstantSql(String(column.default())))) this.#cachedDefaults = defaults;
    return defaults;
  }
}
