import { unstorableValues } from '../support/unstorable-values';
import vm from 'node:vm';
import { cloneValue, isDate, isPlainObject, sameValue } from '../../src/aggregates/column-values';
import { assertDataValue, assertJsonFaithful, collectData, declaredType, hydrateData } from '../../src/events/event-data';
import type { DataRecord } from '../../src/metadata/metadata-storage';
import { InvalidEventDataError } from 'typeorm-event-sourcing';

class Target {}

function record(propertyName: string, designType: unknown, type?: () => unknown): DataRecord {
  return { target: Target, propertyName, designType, type, optional: false };
}

/** The InvalidEventDataError thrown by `fn`, or a failure. */
function invalid(fn: () => void): InvalidEventDataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidEventDataError);
    return error as InvalidEventDataError;
  }
  throw new Error('expected InvalidEventDataError, but nothing was thrown');
}

/** A value made in another realm (another global Object, Array and Date), like pg's parsed JSON or a vm context. */
function foreign<T>(source: string): T {
  return vm.runInNewContext(`(${source})`) as T;
}

describe('declaredType', () => {
  test('the explicit type wins over design:type', () => {
    expect(declaredType(record('at', Object, () => Date))).toBe(Date);
  });

  test('without an explicit type, design:type', () => {
    expect(declaredType(record('name', String))).toBe(String);
    expect(declaredType(record('free', undefined))).toBeUndefined();
  });
});

describe('assertJsonFaithful', () => {
  test('accepts what JSON stores faithfully', () => {
    const shared = { reused: true };
    const accepted: unknown[] = [
      'text',
      '',
      'emoji 🎉 and "quotes" \\ backslash',
      0,
      -12.5,
      Number.MAX_SAFE_INTEGER,
      true,
      false,
      null,
      undefined,
      [],
      [1, 'two', null, { three: 3 }],
      { a: { b: { c: [true] } }, skipped: undefined },
      Object.assign(Object.create(null), { nullPrototype: 1 }),
      { left: shared, right: shared }, // the same object twice is not a cycle
      foreign('{ list: [1, { nested: "0" }] }'),
    ];
    for (const value of accepted) expect(() => assertJsonFaithful('Test.Event', 'data', value)).not.toThrow();
  });

  test.each(unstorableValues)('rejects %s, naming event type and path', (_kind, make, suffix, reason) => {
    const top = invalid(() => assertJsonFaithful('Test.Event', 'details', make()));
    expect(top).toMatchObject({ eventType: 'Test.Event', attribute: `details${suffix}`, code: 'INVALID_EVENT_DATA' });
    expect(top.message).toContain(`Test.Event: details${suffix} ${reason}`);

    const nested = invalid(() => assertJsonFaithful('Test.Event', 'details', { outer: { inner: make() } }));
    expect(nested.attribute).toBe(`details.outer.inner${suffix}`);
    expect(nested.message).toContain(reason);

    const inArray = invalid(() => assertJsonFaithful('Test.Event', 'metadata', { list: ['ok', make()] }));
    expect(inArray.attribute).toBe(`metadata.list[1]${suffix}`);
    expect(inArray.message).toContain(`Test.Event: metadata.list[1]${suffix} ${reason}`);
  });

  test('rejects undefined inside an array (JSON turns it into null)', () => {
    const error = invalid(() => assertJsonFaithful('Test.Event', 'tags', ['a', undefined]));
    expect(error.attribute).toBe('tags[1]');
    expect(error.message).toBe('Test.Event: tags[1] is undefined, which JSON stores as null');
  });

  test('rejects symbol keys and keys with a NUL character', () => {
    expect(invalid(() => assertJsonFaithful('Test.Event', 'metadata', { [Symbol('k')]: 1 })).message).toBe(
      'Test.Event: metadata has symbol keys, which JSON cannot store',
    );
    expect(invalid(() => assertJsonFaithful('Test.Event', 'metadata', { 'a\u0000': 1 })).message).toBe(
      'Test.Event: metadata has a key with a NUL character, which jsonb cannot store',
    );
  });

  test('rejects a cycle through an array', () => {
    const list: unknown[] = [];
    list.push({ back: list });
    expect(invalid(() => assertJsonFaithful('Test.Event', 'data', list)).attribute).toBe('data[0].back');
  });
});

describe('assertDataValue', () => {
  test('checks scalars against their declared type', () => {
    expect(invalid(() => assertDataValue('Test.Event', record('note', String), 42)).message).toBe(
      'Test.Event: note is a number, but is declared as string',
    );
    expect(invalid(() => assertDataValue('Test.Event', record('count', Number), '5')).message).toBe(
      'Test.Event: count is a string, but is declared as number',
    );
    expect(invalid(() => assertDataValue('Test.Event', record('flag', Boolean), 'yes')).message).toBe(
      'Test.Event: flag is a string, but is declared as boolean',
    );
    expect(invalid(() => assertDataValue('Test.Event', record('note', String), { a: 1 })).message).toBe(
      'Test.Event: note is an object, but is declared as string',
    );
    expect(invalid(() => assertDataValue('Test.Event', record('note', String), [1])).message).toBe(
      'Test.Event: note is an array, but is declared as string',
    );
  });

  test('checks Dates, explicit or from design:type', () => {
    expect(invalid(() => assertDataValue('Test.Event', record('at', Object, () => Date), '2030-01-01')).message).toBe(
      'Test.Event: at is a string, but is declared as Date',
    );
    expect(invalid(() => assertDataValue('Test.Event', record('at', Date), 1234)).message).toBe(
      'Test.Event: at is a number, but is declared as Date',
    );
    expect(invalid(() => assertDataValue('Test.Event', record('at', Date), new Date(Number.NaN))).message).toBe(
      'Test.Event: at is an invalid Date',
    );
    expect(() => assertDataValue('Test.Event', record('at', Date), foreign('new Date(0)'))).not.toThrow();
  });

  test('a declared number must still be finite', () => {
    expect(invalid(() => assertDataValue('Test.Event', record('count', Number), Number.NaN)).message).toBe(
      'Test.Event: count is NaN, which JSON cannot store',
    );
  });

  test('null and undefined are accepted for any declared type', () => {
    for (const type of [String, Number, Boolean, Date, Object, undefined]) {
      expect(() => assertDataValue('Test.Event', record('x', type), null)).not.toThrow();
      expect(() => assertDataValue('Test.Event', record('x', type), undefined)).not.toThrow();
    }
  });

  test('an undeclared (Object) type accepts any JSON value and still checks it', () => {
    expect(() => assertDataValue('Test.Event', record('details', Object), { tags: ['a'], n: 1 })).not.toThrow();
    expect(invalid(() => assertDataValue('Test.Event', record('details', Object), { n: Number.NaN })).attribute).toBe('details.n');
  });
});

describe('collectData', () => {
  const records = [record('note', String), record('at', Object, () => Date), record('missing', String)];

  test('the declared properties, without undefined ones, with null kept', () => {
    const event = { note: 'hi', at: null, missing: undefined, undeclared: 'no' };
    expect(collectData(event, records)).toEqual({ note: 'hi', at: null });
    expect(Object.keys(collectData(event, records))).toEqual(['note', 'at']);
  });

  test('an ordinary object, which TypeORM can compare (it calls hasOwnProperty)', () => {
    const data = collectData({ note: 'hi' }, records);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(data.hasOwnProperty('note')).toBe(true);
  });

  test('a property named __proto__ becomes an own key, never the prototype', () => {
    const event = JSON.parse('{"__proto__": {"polluted": true}}');
    const data = collectData(event, [record('__proto__', Object)]);
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect((data as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.keys(data)).toEqual(['__proto__']);
    expect(JSON.stringify(data)).toBe('{"__proto__":{"polluted":true}}');
  });
});

describe('hydrateData', () => {
  const records = [record('note', String), record('at', Object, () => Date), record('count', Number), record('details', Object)];

  test('declared properties become typed again; Dates from ISO strings and from numbers', () => {
    const event: Record<string, unknown> = {};
    hydrateData('Test.Event', event, records, { note: 'hi', at: '2030-01-02T03:04:05.678Z', count: 3, details: { a: [1] } });
    expect(event).toEqual({ note: 'hi', at: new Date('2030-01-02T03:04:05.678Z'), count: 3, details: { a: [1] } });
    expect(isDate(event.at)).toBe(true);

    const fromNumber: Record<string, unknown> = {};
    hydrateData('Test.Event', fromNumber, records, { at: 0 });
    expect(fromNumber.at).toEqual(new Date(0));
  });

  test('null stays null; absent keys leave the property alone', () => {
    const event: Record<string, unknown> = { note: 'default' };
    hydrateData('Test.Event', event, records, { at: null });
    expect(event).toEqual({ note: 'default', at: null });
  });

  test('undeclared keys, __proto__ included, never reach the event', () => {
    const event: Record<string, unknown> = {};
    hydrateData('Test.Event', event, records, JSON.parse('{"note": "x", "extra": 1, "__proto__": {"polluted": true}}'));
    expect(event).toEqual({ note: 'x' });
    expect(Object.getPrototypeOf(event)).toBe(Object.prototype);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  test('null or undefined stored data is a no-op', () => {
    const event: Record<string, unknown> = { note: 'kept' };
    hydrateData('Test.Event', event, records, null);
    hydrateData('Test.Event', event, records, undefined);
    expect(event).toEqual({ note: 'kept' });
  });

  test('stored data that does not fit raises InvalidEventDataError naming type and attribute', () => {
    expect(invalid(() => hydrateData('Test.Event', {}, records, [1, 2])).message).toBe(
      'Test.Event: data is an array, but must be a JSON object',
    );
    expect(invalid(() => hydrateData('Test.Event', {}, records, 'text')).message).toBe(
      'Test.Event: data is a string, but must be a JSON object',
    );
    expect(invalid(() => hydrateData('Test.Event', {}, records, { at: 'garbage' })).message).toBe(
      'Test.Event: at is stored as a string, which is not a Date',
    );
    expect(invalid(() => hydrateData('Test.Event', {}, records, { at: { y: 2030 } })).message).toBe(
      'Test.Event: at is stored as an object, which is not a Date',
    );
    expect(invalid(() => hydrateData('Test.Event', {}, records, { note: 5 })).message).toBe(
      'Test.Event: note is stored as a number, but is declared as string',
    );
    expect(invalid(() => hydrateData('Test.Event', {}, records, { count: '5' })).message).toBe(
      'Test.Event: count is stored as a string, but is declared as number',
    );
  });

  test('what collectData writes, hydrateData reads back equal', () => {
    const original = { note: 'n', at: new Date('2031-05-06T07:08:09.010Z'), count: -1.5, details: { deep: { ok: false, list: [null, 'x'] } } };
    const stored = JSON.parse(JSON.stringify(collectData(original, records)));
    const event: Record<string, unknown> = {};
    hydrateData('Test.Event', event, records, stored);
    expect(event).toEqual(original);
  });
});

describe('column values', () => {
  test('isDate recognises Dates from any realm and nothing else', () => {
    expect(isDate(new Date())).toBe(true);
    expect(isDate(foreign('new Date(0)'))).toBe(true);
    expect(isDate('2030-01-01')).toBe(false);
    expect(isDate(0)).toBe(false);
    expect(isDate({ getTime: () => 0 })).toBe(false);
    expect(isDate(null)).toBe(false);
  });

  test('isPlainObject: literals and null-prototype objects from any realm; not arrays, Dates, Maps or class instances', () => {
    expect(isPlainObject({})).toBe(true);
    expect(isPlainObject(Object.create(null))).toBe(true);
    expect(isPlainObject(foreign('{ a: 1 }'))).toBe(true);
    expect(isPlainObject(JSON.parse('{"a": {"b": 1}}'))).toBe(true);
    expect(isPlainObject([])).toBe(false);
    expect(isPlainObject(new Date())).toBe(false);
    expect(isPlainObject(new Map())).toBe(false);
    expect(isPlainObject(new (class Point {})())).toBe(false);
    expect(isPlainObject(Object.create({ inherited: 1 }))).toBe(false);
    expect(isPlainObject(null)).toBe(false);
    expect(isPlainObject('text')).toBe(false);
  });

  test('cloneValue copies arrays, plain objects and Dates deeply and shares everything else', () => {
    class Money {
      constructor(readonly cents: number) {}
    }
    const money = new Money(5);
    const original = { list: [1, { at: new Date(1000) }], nested: { money }, text: 'x' };
    const copy = cloneValue(original);

    expect(copy).toEqual(original);
    expect(copy).not.toBe(original);
    expect(copy.list).not.toBe(original.list);
    expect(copy.list[1]).not.toBe(original.list[1]);
    expect((copy.list[1] as { at: Date }).at).not.toBe((original.list[1] as { at: Date }).at);
    expect((copy.list[1] as { at: Date }).at.getTime()).toBe(1000);
    expect(copy.nested.money).toBe(money);

    (original.list[1] as { at: Date }).at.setTime(0);
    original.nested.money = new Money(9);
    expect((copy.list[1] as { at: Date }).at.getTime()).toBe(1000);
    expect(copy.nested.money.cents).toBe(5);
  });

  test('cloneValue keeps a __proto__ key as an own key', () => {
    const copy = cloneValue(JSON.parse('{"__proto__": {"polluted": true}, "a": 1}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['__proto__', 'a']);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
  });

  test('sameValue compares values the way they are stored', () => {
    expect(sameValue(null, undefined)).toBe(true);
    expect(sameValue(undefined, null)).toBe(true);
    expect(sameValue(null, 0)).toBe(false);
    expect(sameValue('', null)).toBe(false);
    expect(sameValue(new Date(5), new Date(5))).toBe(true);
    expect(sameValue(new Date(5), foreign('new Date(5)'))).toBe(true);
    expect(sameValue(new Date(5), new Date(6))).toBe(false);
    expect(sameValue(new Date(5), 5)).toBe(false);
    expect(sameValue(new Date(0), '1970-01-01T00:00:00.000Z')).toBe(false);
    expect(sameValue([1, [2, 3]], [1, [2, 3]])).toBe(true);
    expect(sameValue([1, 2], [1, 2, 3])).toBe(false);
    expect(sameValue([1, 2], { 0: 1, 1: 2 })).toBe(false);
    expect(sameValue({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameValue({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(sameValue({ a: { b: [new Date(1)] } }, foreign('{ a: { b: [new Date(1)] } }'))).toBe(true);
    expect(sameValue(Number.NaN, Number.NaN)).toBe(true);
    expect(sameValue(1, '1')).toBe(false);
    expect(sameValue(1, 2)).toBe(false);
    expect(sameValue(true, 'true')).toBe(false);
  });

  test('sameValue uses equals() of value objects', () => {
    class Money {
      constructor(readonly cents: number) {}
      equals(other: unknown): boolean {
        return other instanceof Money && other.cents === this.cents;
      }
    }
    expect(sameValue(new Money(5), new Money(5))).toBe(true);
    expect(sameValue(new Money(5), new Money(6))).toBe(false);
  });
});
