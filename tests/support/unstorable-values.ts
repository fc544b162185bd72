/**
 * Values JSON cannot store faithfully, each with what the error says about it: the unit tests of
 * the check and the integration tests of the write path share this list.
 */
class Money {
  constructor(readonly cents = 5) {}
}
const cycle = () => {
  const object: Record<string, unknown> = { name: 'loop' };
  object.self = object;
  return object;
};
export const unstorableValues: [kind: string, make: () => unknown, pathSuffix: string, reason: string][] = [
  ['NaN', () => Number.NaN, '', 'is NaN, which JSON cannot store'],
  ['Infinity', () => Number.POSITIVE_INFINITY, '', 'is Infinity, which JSON cannot store'],
  ['-Infinity', () => Number.NEGATIVE_INFINITY, '', 'is -Infinity, which JSON cannot store'],
  ['an invalid Date', () => new Date('not a date'), '', 'is an invalid Date'],
  ['a BigInt', () => BigInt(10), '', 'is a BigInt, which JSON cannot store (use a string)'],
  ['a NUL character', () => 'a\u0000b', '', 'contains a NUL character, which jsonb cannot store'],
  ['a circular object', cycle, '.self', 'refers to itself (a circular reference)'],
  ['a Map', () => new Map([['a', 1]]), '', 'is a Map; only plain objects, arrays, strings, finite numbers, booleans, null and Dates are stored'],
  ['a Set', () => new Set([1]), '', 'is a Set; only plain objects'],
  ['a function', () => () => 1, '', 'is a function, which JSON cannot store'],
  ['a symbol', () => Symbol('s'), '', 'is a symbol, which JSON cannot store'],
  ['a class instance', () => new Money(), '', 'is a Money; only plain objects'],
  ['a RegExp', () => /x/, '', 'is a RegExp; only plain objects'],
  ['a nested Date', () => ({ at: new Date(0) }), '.at', 'is a Date, which would read back as a string'],
  ['-0', () => -0, '', 'is -0, which JSON stores as 0'],
  ['a lone high surrogate', () => 'a\ud800b', '', 'contains a lone UTF-16 surrogate, which jsonb cannot store'],
  ['a lone low surrogate', () => ['ok', '\udc00'], '[1]', 'contains a lone UTF-16 surrogate, which jsonb cannot store'],
  ['a key with a lone surrogate', () => ({ ['k\ud83d']: 1 }), '', 'has a key with a lone UTF-16 surrogate, which jsonb cannot store'],
];

