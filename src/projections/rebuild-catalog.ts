import type { EntityManager } from 'typeorm';

// What a rebuild asks PostgreSQL's catalog about the read model's tables. Every query here that
// prints names (pg_get_constraintdef, pg_get_indexdef, format('%I.%I')) runs with the search_path
// set to pg_catalog alone ({@link useCatalogPath}), so every table it prints comes out
// schema-qualified and means the same table whatever the session's path was.

/** A live table of a read model, as the catalog knows it. */
export interface LiveTable {
  readonly oid: string;
  readonly schema: string;
  readonly name: string;
  /** `schema.name`, quoted as PostgreSQL prints it. */
  readonly qualified: string;
}

/** A foreign key constraint, by the tables at its two ends. */
export interface ForeignKey {
  readonly name: string;
  /** The oid and qualified name of the table it is on. */
  readonly fromOid: string;
  readonly from: string;
  /** The oid and qualified name of the table it references. */
  readonly toOid: string;
  readonly to: string;
  /** Its definition, `FOREIGN KEY (...) REFERENCES schema.table(...) ...`. */
  readonly definition: string;
}

/** Something about a table that a swap would lose, or that would stop its DROP. */
export interface SwapBlocker {
  /** The table, qualified. */
  readonly table: string;
  /** What, in words: `trigger audit on table public.t would be lost`. */
  readonly what: string;
}

/** An index, with a key equal for an index and its copy made by `CREATE TABLE ... (LIKE ...)`. */
interface IndexRow {
  table: string;
  name: string;
  key: string;
}

/** Quotes an identifier for SQL. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Sets the search_path to pg_catalog alone for the rest of the transaction (see above). */
export async function useCatalogPath(manager: EntityManager): Promise<void> {
  await manager.query(`SELECT set_config('search_path', 'pg_catalog', true)`);
}

/**
 * The tables the given names lead to, resolved as an unqualified or qualified name in the
 * session's search_path (as the statements TypeORM writes for the entities resolve them);
 * `undefined` for a name that leads to no table.
 */
export async function resolveTables(manager: EntityManager, names: readonly string[]): Promise<(LiveTable | undefined)[]> {
  const rows: (LiveTable & { i: string })[] = await manager.query(
    `SELECT r.i::text AS "i", c.oid::text AS "oid", n.nspname AS "schema", c.relname AS "name", format('%I.%I', n.nspname, c.relname) AS "qualified"
       FROM unnest($1::text[]) WITH ORDINALITY AS r(ref, i)
       JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(r.ref) AND c.relkind IN ('r', 'p')
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`,
    [names],
  );
  return names.map((_, index) => {
    const row = rows.find((candidate) => Number(candidate.i) === index + 1);
    return row ? { oid: row.oid, schema: row.schema, name: row.name, qualified: row.qualified } : undefined;
  });
}

/** The foreign keys into or out of some tables (`direction`), on any table. */
export async function foreignKeys(manager: EntityManager, oids: readonly string[], direction: 'into' | 'outOf'): Promise<ForeignKey[]> {
  const column = direction === 'into' ? 'confrelid' : 'conrelid';
  return manager.query(
    `SELECT con.conname AS "name", con.conrelid::text AS "fromOid", format('%I.%I', fn.nspname, f.relname) AS "from",
            con.confrelid::text AS "toOid", format('%I.%I', tn.nspname, t.relname) AS "to", pg_get_constraintdef(con.oid) AS "definition"
       FROM pg_constraint con
       JOIN pg_class f ON f.oid = con.conrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
       JOIN pg_class t ON t.oid = con.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
      WHERE con.contype = 'f' AND con.${column} = ANY($1::oid[])
      ORDER BY con.oid`,
    [oids],
  );
}

/**
 * What stands in the way of swapping the tables (replacing them with copies made by `CREATE
 * TABLE ... (LIKE ... INCLUDING ALL)` plus their foreign keys): every object depending on a
 * table that the copy would not have (triggers, rules, row security policies, publications,
 * constraint triggers) or that would stop the DROP (views, functions, columns of its row type,
 * foreign keys from tables not in `oids`), and table properties LIKE does not copy. Indexes,
 * constraints, defaults, identity and serial sequences, statistics and comments are copied;
 * grants are compared with the copy's by {@link lostGrants}.
 */
export async function swapBlockers(manager: EntityManager, oids: readonly string[]): Promise<SwapBlocker[]> {
  const blockers: SwapBlocker[] = [];
  const properties: {
    table: string;
    kind: string;
    inherits: boolean;
    rls: boolean;
    replident: string;
    tablespace: boolean;
    columnGrants: boolean;
  }[] = await manager.query(
    `SELECT format('%I.%I', n.nspname, c.relname) AS "table", c.relkind::text AS "kind",
            (c.relispartition OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid OR inhparent = c.oid)) AS "inherits",
            (c.relrowsecurity OR c.relforcerowsecurity) AS "rls", c.relreplident::text AS "replident",
            (c.reltablespace <> 0 OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = c.oid AND ic.reltablespace <> 0)) AS "tablespace",
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND attacl IS NOT NULL) AS "columnGrants"
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = ANY($1::oid[])
      ORDER BY c.oid`,
    [oids],
  );
  for (const table of properties) {
    const add = (what: string) => blockers.push({ table: table.table, what });
    if (table.kind !== 'r') add('it is a partitioned table, which a copy would not be');
    if (table.inherits) add('it is a partition or part of an inheritance tree, which a copy would not be');
    if (table.rls) add('row level security is enabled on it, and would not be on the copy');
    if (table.replident !== 'd') add('its REPLICA IDENTITY is not the default one, and would not be copied');
    if (table.tablespace) add('it or an index of it is in a tablespace of its own, and the copy would be in the default one');
    if (table.columnGrants) add('column privileges (GRANT ... (column)) on it would be lost');
  }

  const dependents: { table: string; tableOid: string; kind: string; deptype: string; object: string; other: string | null }[] = await manager.query(
    `SELECT format('%I.%I', n.nspname, c.relname) AS "table", c.oid::text AS "tableOid", d.deptype::text AS "deptype",
            pg_describe_object(d.classid, d.objid, d.objsubid) AS "object",
            CASE d.classid
              WHEN 'pg_class'::regclass THEN 'class:' || (SELECT relkind::text FROM pg_class WHERE oid = d.objid)
              WHEN 'pg_type'::regclass THEN 'type'
              WHEN 'pg_attrdef'::regclass THEN 'default'
              WHEN 'pg_statistic_ext'::regclass THEN 'statistics'
              WHEN 'pg_trigger'::regclass THEN (SELECT CASE WHEN tgisinternal THEN 'internal trigger' ELSE 'trigger' END FROM pg_trigger WHERE oid = d.objid)
              WHEN 'pg_constraint'::regclass THEN (SELECT CASE WHEN conrelid = d.refobjid THEN 'constraint:' || contype::text ELSE 'foreign key' END FROM pg_constraint WHERE oid = d.objid)
              WHEN 'pg_rewrite'::regclass THEN (SELECT CASE WHEN ev_class = d.refobjid THEN 'rule' ELSE 'view' END FROM pg_rewrite WHERE oid = d.objid)
              WHEN 'pg_policy'::regclass THEN 'policy'
              WHEN 'pg_publication_rel'::regclass THEN 'publication'
              ELSE 'other'
            END AS "kind",
            CASE d.classid
              WHEN 'pg_rewrite'::regclass THEN (SELECT format('%I.%I', vn.nspname, v.relname) FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace WHERE r.oid = d.objid)
              WHEN 'pg_constraint'::regclass THEN (SELECT conrelid::text FROM pg_constraint WHERE oid = d.objid)
            END AS "other"
       FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($1::oid[])
     UNION ALL
     SELECT format('%I.%I', n.nspname, c.relname), c.oid::text, d.deptype::text, pg_describe_object(d.classid, d.objid, d.objsubid), 'rowtype', NULL
       FROM pg_depend d JOIN pg_class c ON c.reltype = d.refobjid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE d.refclassid = 'pg_type'::regclass AND c.oid = ANY($1::oid[]) AND d.deptype <> 'i'`,
    [oids],
  );
  for (const row of dependents) {
    const add = (what: string) => blockers.push({ table: row.table, what });
    switch (row.kind) {
      case 'class:i': // indexes: copied
      case 'class:S': // identity sequences are made anew, serial ones are handed over
      case 'class:t': // its TOAST table
      case 'type': // its row type
      case 'default':
      case 'statistics':
      case 'internal trigger': // a foreign key's, going with its constraint
      case 'constraint:p':
      case 'constraint:u':
      case 'constraint:x':
      case 'constraint:c':
      case 'constraint:n':
      case 'constraint:f': // copied by the rebuild, under its name
        break;
      case 'foreign key':
        if (!oids.includes(row.other!)) add(`${row.object} references it from a table the projection does not own`);
        break;
      case 'trigger':
      case 'constraint:t':
      case 'rule':
      case 'policy':
      case 'publication':
        add(`${row.object} would be lost`);
        break;
      case 'view':
        add(`view ${row.other} depends on it`);
        break;
      case 'rowtype':
        add(`${row.object} uses its row type`);
        break;
      default:
        add(`${row.object} depends on it`);
    }
  }
  return blockers;
}

/** Privileges granted on `live` that `copy` lacks, as `SELECT to reader` phrases. */
export async function lostGrants(manager: EntityManager, live: string, copy: string): Promise<string[]> {
  const rows: { grant: string }[] = await manager.query(
    `SELECT format('%s to %s', g.privilege_type, CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END) AS "grant"
       FROM (SELECT grantee, privilege_type, is_grantable FROM pg_class l, aclexplode(coalesce(l.relacl, acldefault('r', l.relowner))) WHERE l.oid = $1::oid
             EXCEPT
             SELECT grantee, privilege_type, is_grantable FROM pg_class s, aclexplode(coalesce(s.relacl, acldefault('r', s.relowner))) WHERE s.oid = $2::oid) g
      ORDER BY 1`,
    [live, copy],
  );
  return rows.map((row) => row.grant);
}

/**
 * A text of everything about a table's shape that its copy reproduces (columns, types, nullity,
 * defaults, identity, indexes, constraints): a table whose text changed between the copy and
 * the swap was migrated meanwhile, and the copy is out of date.
 */
export async function shapeOf(manager: EntityManager, oid: string): Promise<string> {
  const [row]: { shape: string }[] = await manager.query(
    `SELECT concat_ws(E'\\n',
        (SELECT string_agg(format('%I %s %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(ad.adbin, ad.adrelid)), E'\\n' ORDER BY a.attnum)
           FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
          WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped),
        (SELECT string_agg(pg_get_indexdef(indexrelid), E'\\n' ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index WHERE indrelid = $1::oid),
        (SELECT string_agg(format('%I %s', conname, pg_get_constraintdef(oid)), E'\\n' ORDER BY conname, pg_get_constraintdef(oid)) FROM pg_constraint WHERE conrelid = $1::oid)
      ) AS "shape"`,
    [oid],
  );
  return row.shape;
}

/** What a copy of a table needs of it: persistence, storage options, owner, comment. */
export async function tableProperties(
  manager: EntityManager,
  oid: string,
): Promise<{ unlogged: boolean; options: string | null; owner: string; ownedByMe: boolean; comment: string | null }> {
  const [row] = await manager.query(
    `SELECT c.relpersistence = 'u' AS "unlogged", array_to_string(c.reloptions, ', ') AS "options", pg_get_userbyid(c.relowner) AS "owner",
            pg_get_userbyid(c.relowner) = current_user AS "ownedByMe", obj_description(c.oid, 'pg_class') AS "comment"
       FROM pg_class c WHERE c.oid = $1::oid`,
    [oid],
  );
  return row;
}

/**
 * Pairs each index of the `copies` tables with the index of the `originals` table it was copied
 * from, by definition (the part after the name and table) and the constraint it backs: the
 * names the copies should take. Throws when the indexes do not pair up one to one.
 */
export async function pairIndexes(manager: EntityManager, originals: readonly string[], copies: readonly string[]): Promise<{ copy: string; name: string }[]> {
  const [live, copied] = [await indexesOf(manager, originals), await indexesOf(manager, copies)];
  const pairs: { copy: string; name: string }[] = [];
  originals.forEach((original, index) => {
    const waiting = live.filter((row) => row.table === original);
    const mine = copied.filter((row) => row.table === copies[index]);
    if (waiting.length !== mine.length) throw new Error(`the copy of table ${original} has ${mine.length} indexes, the table ${waiting.length}`);
    for (const row of mine) {
      const match = waiting.findIndex((candidate) => candidate.key === row.key);
      if (match < 0) throw new Error(`index ${row.name} of the copy of table ${original} matches no index of the table`);
      pairs.push({ copy: row.name, name: waiting[match].name });
      waiting.splice(match, 1);
    }
  });
  return pairs;
}

async function indexesOf(manager: EntityManager, oids: readonly string[]): Promise<IndexRow[]> {
  const rows: { table: string; name: string; prefix: string; definition: string; backs: string }[] = await manager.query(
    `SELECT i.indrelid::text AS "table", ic.relname AS "name",
            format('CREATE %sINDEX %I ON %I.%I ', CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, ic.relname, n.nspname, c.relname) AS "prefix",
            pg_get_indexdef(i.indexrelid) AS "definition",
            coalesce((SELECT string_agg(contype::text, '') FROM pg_constraint WHERE conindid = i.indexrelid AND conrelid = i.indrelid AND contype IN ('p', 'u', 'x')), '') AS "backs"
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.indrelid = ANY($1::oid[])
      ORDER BY i.indexrelid`,
    [oids],
  );
  return rows.map((row) => {
    const rest = row.definition.startsWith(row.prefix) ? row.definition.slice(row.prefix.length) : row.definition.slice(row.definition.indexOf(' USING '));
    return { table: row.table, name: row.name, key: `${row.backs}|${rest}` };
  });
}

/** The sequences of the identity columns of some tables, by table and column. */
export async function identitySequences(manager: EntityManager, oids: readonly string[]): Promise<{ table: string; column: string; name: string }[]> {
  return manager.query(
    `SELECT a.attrelid::text AS "table", a.attname AS "column", s.relname AS "name"
       FROM pg_attribute a
       JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
      WHERE a.attrelid = ANY($1::oid[]) AND a.attidentity <> ''`,
    [oids],
  );
}

/** The sequences owned by columns of some tables (`serial`, `OWNED BY`), not identity ones. */
export async function ownedSequences(manager: EntityManager, oids: readonly string[]): Promise<{ table: string; column: string; sequence: string }[]> {
  return manager.query(
    `SELECT d.refobjid::text AS "table", a.attname AS "column", format('%I.%I', sn.nspname, s.relname) AS "sequence"
       FROM pg_depend d
       JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_namespace sn ON sn.oid = s.relnamespace
       JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($1::oid[]) AND d.deptype = 'a'`,
    [oids],
  );
}
