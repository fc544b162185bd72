import type { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import {
  WeirdStringBox,
  WeirdStringBoxPacked,
  WeirdStringBoxRelabelled,
  weirdStringEntities,
} from '../support/bad-input-models';
import { testDataSource } from '../support/database';

/**
 * Strings that trip up encoders, escapers and parsers come back byte-exact through event data,
 * metadata, object keys and the aggregate columns apply sets (varchar, text, jsonb), read back
 * through history, stateAt, TypeORM and raw SQL.
 */

let dataSource: DataSource;
let es: EventSourcing;

beforeAll(async () => {
  dataSource = await testDataSource('weird_strings', weirdStringEntities);
  es = await EventSourcing.attach(dataSource);
});

afterAll(async () => {
  await es?.close();
  await dataSource?.destroy();
});

/** Every BMP control character except NUL, which jsonb refuses (see bad-input.test.ts). */
const controls = [
  ...Array.from({ length: 0x1f }, (_, index) => index + 1),
  ...Array.from({ length: 0x21 }, (_, index) => 0x7f + index),
]
  .map((code) => String.fromCharCode(code))
  .join('');

/** About a mebibyte of UTF-16 mixing one-, two-, three- and four-byte UTF-8 characters. */
const megabyte = 'aé€😀\u2028"\\'.repeat(Math.ceil(2 ** 20 / 9)).slice(0, 2 ** 20);

const weird: [name: string, value: string][] = [
  ['emoji and astral characters (surrogate pairs)', '😀 👍🏽 🇺🇳 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱 🀄'],
  ['a zero-width-joiner sequence', '👨‍👩‍👧‍👦 🧑\u200d💻'],
  ['combining characters, not normalised', 'e\u0301 vs \u00e9; Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇'],
  ['right-to-left text and direction overrides', 'مرحبا بالعالم שלום \u202eevil\u202c \u200f'],
  ['zero-width characters', 'a\u200bb\u200cc\u200dd\ufeffe\u2060f'],
  ['line and paragraph separators', 'one\u2028two\u2029three'],
  ['SQL', "'; DROP TABLE weird_string_box; --"],
  ['JSON', '{"a":1,"b":[true,null]}'],
  ['placeholders', '$1 $$ :name ? %s ${x}'],
  ['backslashes and quotes', '\\ \\\\ \\u0000 \\n " \' ` \\" \'\''],
  ['every BMP control character except NUL', controls],
  ['non-characters', '\uffff\ufffe\ufdd0'],
  ['an empty string', ''],
  ['whitespace only', ' \t\n\r\u00a0\u3000 '],
  ['about 1 MiB', megabyte],
];

/** PostgreSQL compares stored and sent text itself: equal code points, equal UTF-8 length. */
async function sameInDatabase(expression: string, id: number, value: string): Promise<void> {
  const [row] = await dataSource.query(
    `SELECT (${expression}) = $2 AS same, octet_length(${expression}) AS bytes FROM weird_string_box_events e JOIN weird_string_box b ON b.id = e.weird_string_box_id WHERE e.weird_string_box_id = $1 AND e.version = 1`,
    [id, value],
  );
  expect({ expression, ...row }).toEqual({ expression, same: true, bytes: Buffer.byteLength(value, 'utf8') });
}

describe('weird strings round-trip', () => {
  test.each(weird)('%s', async (_name, value) => {
    // The long string is stored once per place, not copied into keys and lists: each copy costs a
    // second or so of transfer and parsing on a small machine, and tests nothing new.
    const long = value.length > 1000;
    const contents = long ? { list: [value] } : { [value]: value, list: [value, { [value]: [value] }] };
    const metadata = long ? { note: value } : { note: value, [`meta:${value}`]: value };
    const relabelled = long ? 'relabelled' : `${value}|${value}`;
    const box = new WeirdStringBox();
    const packed = await dataSource.manager.save(WeirdStringBoxPacked.build({ weirdStringBox: box, label: value, body: value, contents, metadata }));
    await es.append(WeirdStringBoxRelabelled.build({ weirdStringBox: box, label: relabelled }));

    // The caller's instance, the row through TypeORM and the row as PostgreSQL compares it.
    const stored = { label: relabelled, body: value, contents, labels: [value, relabelled], version: 2 };
    expect(box).toMatchObject(stored);
    expect(await dataSource.manager.findOneByOrFail(WeirdStringBox, { id: box.id })).toMatchObject(stored);
    await sameInDatabase('b.label', box.id, relabelled);
    await sameInDatabase('b.body', box.id, value);
    await sameInDatabase("b.contents->'list'->>0", box.id, value);
    await sameInDatabase('b.labels->>0', box.id, value);

    // The raw jsonb, parsed: exactly the written values.
    const [raw] = await dataSource.query(
      'SELECT data::text AS data, metadata::text AS metadata, contents::text AS contents FROM weird_string_box_events e JOIN weird_string_box b ON b.id = e.weird_string_box_id WHERE e.id = $1',
      [packed.id],
    );
    expect(JSON.parse(raw.data)).toEqual({ label: value, body: value, contents });
    expect(JSON.parse(raw.metadata)).toEqual(metadata);
    expect(JSON.parse(raw.contents)).toEqual(contents);
    await sameInDatabase("e.data->>'label'", box.id, value);
    await sameInDatabase("e.metadata->>'note'", box.id, value);

    // history and the time machine.
    const [first, second] = (await es.history(WeirdStringBox, box.id)) as [WeirdStringBoxPacked, WeirdStringBoxRelabelled];
    expect(first).toBeInstanceOf(WeirdStringBoxPacked);
    expect(first.label === value && first.body === value).toBe(true);
    expect(first.contents).toEqual(contents);
    expect(first.metadata).toEqual(metadata);
    expect(second.label === relabelled).toBe(true);
    const atOne = await es.stateAt(WeirdStringBox, box.id, { version: 1 });
    expect(atOne).toMatchObject({ label: value, body: value, contents, labels: [value], version: 1 });
    expect(await es.stateAt(WeirdStringBox, box.id, { at: new Date() })).toMatchObject(stored);
    expect(await es.verify(WeirdStringBox, { id: box.id })).toEqual([]);
  });
});

test("'__proto__', 'constructor' and 'toString' as keys of data and metadata are stored as keys and pollute nothing", async () => {
  const keys = () =>
    JSON.parse('{"__proto__": {"polluted": "data"}, "constructor": {"prototype": {"polluted": "data"}}, "toString": "not a function", "hasOwnProperty": 1, "valueOf": null}');
  const contents = keys();
  const metadata = keys();
  expect(Object.keys(contents)).toEqual(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']);

  const box = new WeirdStringBox();
  const packed = await dataSource.manager.save(WeirdStringBoxPacked.build({ weirdStringBox: box, label: 'proto', body: 'proto', contents, metadata }));

  const [raw] = await dataSource.query('SELECT data::text AS data, metadata::text AS metadata FROM weird_string_box_events WHERE id = $1', [packed.id]);
  expect(Object.keys(JSON.parse(raw.data).contents).sort()).toEqual(['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf']);
  expect(JSON.parse(raw.data).contents).toEqual(keys());
  expect(JSON.parse(raw.metadata)).toEqual(keys());
  const [column] = await dataSource.query(`SELECT contents->'__proto__'->>'polluted' AS polluted, contents->>'toString' AS "toString" FROM weird_string_box WHERE id = $1`, [box.id]);
  expect(column).toEqual({ polluted: 'data', toString: 'not a function' });

  const [event] = (await es.history(WeirdStringBox, box.id)) as [WeirdStringBoxPacked];
  const replayed = await es.stateAt(WeirdStringBox, box.id, { version: 1 });
  const loaded = await dataSource.manager.findOneByOrFail(WeirdStringBox, { id: box.id });
  for (const object of [event.contents!, event.metadata, replayed!.contents!, loaded.contents!, box.contents!]) {
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
    expect(Object.keys(object).sort()).toEqual(['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'valueOf']);
    expect((object as any).polluted).toBeUndefined();
    expect(object.toString).toBe('not a function');
  }
  expect(await es.verify(WeirdStringBox, { id: box.id })).toEqual([]);
  expect(({} as any).polluted).toBeUndefined();
  expect((Object.prototype as any).polluted).toBeUndefined();
  expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
});
