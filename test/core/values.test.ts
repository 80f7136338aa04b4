/**
 * Value semantics every part of datafix shares (src/plan/values.ts): when two values are the same
 * (a diff's "no change", a guard's "unchanged", undo's "still holds"), how a value is written to
 * JSON (journals, saved plans, `--json`) and read back, and how it is shown in a diff. Every
 * expected value is written here.
 */
import { NumberValue } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  deepEqual,
  ExactNumber,
  exactNumberText,
  formatValue,
  fromJsonSafe,
  isAbsent,
  isMissing,
  MAX_VALUE_DEPTH,
  nestedDeeperThan,
  toJsonSafe,
} from '../../src/plan/values.js';

const exact = (text: string) => new ExactNumber(text);

/** A value written as a journal or plan writes it (JSON text) and read back as undo reads it. */
const throughJson = (value: unknown): unknown => fromJsonSafe(JSON.parse(JSON.stringify(toJsonSafe(value))));

/** `levels` lists nested in one another around `inner`: `nest(1, 'x')` is `['x']`. */
function nest(levels: number, inner: unknown): unknown {
  let v = inner;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

describe('absent and missing', () => {
  it('undefined and null are absent (a fill-only write fills them); the empty string is a value', () => {
    expect([undefined, null, '', 0, false].map(isAbsent)).toEqual([true, true, false, false, false]);
  });

  it('undefined, null and the empty string are missing (`missing` conditions, extract fallbacks); 0 and false are not', () => {
    expect([undefined, null, '', 0, false, ' '].map(isMissing)).toEqual([true, true, true, false, false, false]);
  });
});

describe('exact numbers', () => {
  it('a DynamoDB NumberValue, an ExactNumber and a bigint are numbers held as their decimal text', () => {
    expect(exactNumberText(NumberValue.from('12345678901234567890'))).toBe('12345678901234567890');
    expect(exactNumberText(exact('7.0'))).toBe('7.0');
    expect(exactNumberText(12345678901234567890n)).toBe('12345678901234567890');
  });

  it('a map that merely holds a `value` text, a list, a number and a map without prototype are not exact numbers', () => {
    expect(exactNumberText({ value: '5' })).toBeUndefined();
    expect(exactNumberText(Object.assign(['5'], { value: '5' }))).toBeUndefined();
    expect(exactNumberText(5)).toBeUndefined();
    expect(exactNumberText(null)).toBeUndefined();
    const bare = Object.create(null) as Record<string, unknown>;
    bare.value = '5';
    expect(exactNumberText(bare)).toBeUndefined();
    // An ExactNumber whose value is not text is not a number datafix can write.
    expect(exactNumberText(new ExactNumber(5 as unknown as string))).toBeUndefined();
  });
});

describe('when two values are the same (no change, an unchanged guard, a before-image still held)', () => {
  it.each([
    ['a SQLite REAL 7.0 and the integer 7', exact('7.0'), 7],
    ['a bigint and the same number', 5n, 5],
    ['15 significant digits written with a trailing zero', exact('123456789012345.0'), 123456789012345],
    ['15 significant digits written with two trailing zeros', exact('123456789012345.00'), 123456789012345],
    ['15 significant digits after leading zeros, with a trailing zero', exact('0.001234567890123450'), 0.00123456789012345],
    ['a negative number of 15 digits written with a trailing zero', exact('-123456789012345.0'), -123456789012345],
    ['15 digits with an exponent', exact('1.23456789012345e5'), 123456.789012345],
    ['15 digits with a two-digit exponent', exact('1.23456789012345e10'), 12345678901.2345],
    ['15 digits with a capital exponent', exact('1.23456789012345E5'), 123456.789012345],
    ['the same 20 digits in two objects', exact('12345678901234567890'), NumberValue.from('12345678901234567890')],
  ])('%s are equal', (_what, a, b) => {
    expect(deepEqual(a, b)).toBe(true);
    expect(deepEqual(b, a)).toBe(true);
  });

  it.each([
    ['20 digits and the double nearest to them', exact('12345678901234567890'), 12345678901234567000],
    ['two numbers beyond a double, both read as Infinity', exact('1e400'), exact('2e400')],
    ['a number a double cannot hold and the double it rounds to', exact('1.00000000000000001'), 1],
    ['a number and its text', exact('5'), '5'],
    ['a number and null', 5, null],
    ['an exact number and a map', exact('5'), { value: '5' }],
    ['different numbers', exact('5'), 6],
  ])('%s differ', (_what, a, b) => {
    expect(deepEqual(a, b)).toBe(false);
    expect(deepEqual(b, a)).toBe(false);
  });

  it('binary values are equal byte for byte; a list of the same numbers is not binary', () => {
    expect(deepEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(deepEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(deepEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 0]))).toBe(false);
    expect(deepEqual(new Uint8Array([1, 2]), [1, 2])).toBe(false);
    expect(deepEqual([1, 2], new Uint8Array([1, 2]))).toBe(false);
    // Nor is a map whose keys are positions.
    expect(deepEqual(new Uint8Array([1, 2]), { 0: 1, 1: 2 })).toBe(false);
    expect(deepEqual({ 0: 1, 1: 2 }, new Uint8Array([1, 2]))).toBe(false);
  });

  it('sets are equal in any order, members compared by value (a DynamoDB binary set read twice)', () => {
    expect(deepEqual(new Set(['a', 'b']), new Set(['b', 'a']))).toBe(true);
    expect(deepEqual(new Set([new Uint8Array([1]), new Uint8Array([2])]), new Set([new Uint8Array([2]), new Uint8Array([1])]))).toBe(true);
    expect(deepEqual(new Set(['a', 'b']), new Set(['a', 'c']))).toBe(false);
    expect(deepEqual(new Set(['a']), new Set(['a', 'b']))).toBe(false);
    expect(deepEqual(new Set(['a']), ['a'])).toBe(false);
    expect(deepEqual(['a'], new Set(['a']))).toBe(false);
    // Nor is a set a map, even one with a `size`.
    expect(deepEqual(new Set(['a']), {})).toBe(false);
    expect(deepEqual({}, new Set(['a']))).toBe(false);
    expect(deepEqual(new Set(['a']), { size: 1 })).toBe(false);
    expect(deepEqual({ size: 1 }, new Set(['a']))).toBe(false);
  });

  it('lists are equal element by element, in order; a list is not a map with numbered keys', () => {
    expect(deepEqual([1, { a: [2] }], [1, { a: [2] }])).toBe(true);
    expect(deepEqual([1, 2], [2, 1])).toBe(false);
    expect(deepEqual([1, 2], [1, 2, 3])).toBe(false);
    expect(deepEqual([1, 2], [1, 3])).toBe(false);
    expect(deepEqual(['a'], { 0: 'a', length: 1 })).toBe(false);
    expect(deepEqual({ 0: 'a', length: 1 }, ['a'])).toBe(false);
    expect(deepEqual(['a'], { 0: 'a' })).toBe(false);
    expect(deepEqual({ 0: 'a' }, ['a'])).toBe(false);
  });

  it('maps are equal key by key; a key present only as undefined still counts', () => {
    expect(deepEqual({ a: 1, b: { c: 'x' } }, { b: { c: 'x' }, a: 1 })).toBe(true);
    expect(deepEqual({ a: 1, b: { c: 'x' } }, { a: 1, b: { c: 'y' } })).toBe(false);
    expect(deepEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(deepEqual({ a: 1, b: undefined }, { a: 1, c: undefined })).toBe(false);
    expect(deepEqual({}, null)).toBe(false);
    expect(deepEqual(null, {})).toBe(false);
    expect(deepEqual('a', { 0: 'a' })).toBe(false);
    expect(deepEqual({ 0: 'a' }, 'a')).toBe(false);
  });
});

describe('values written as JSON (journals, saved plans, --json) and read back', () => {
  it('numbers JSON cannot hold are tagged: -0, NaN and ±Infinity, exact numbers and bigints', () => {
    expect(toJsonSafe(-0)).toEqual({ $number: '-0' });
    expect(toJsonSafe(Number.NaN)).toEqual({ $number: 'NaN' });
    expect(toJsonSafe(Number.POSITIVE_INFINITY)).toEqual({ $number: 'Infinity' });
    expect(toJsonSafe(Number.NEGATIVE_INFINITY)).toEqual({ $number: '-Infinity' });
    expect(toJsonSafe(exact('7.0'))).toEqual({ $number: '7.0' });
    expect(toJsonSafe(12345678901234567890n)).toEqual({ $number: '12345678901234567890' });
    // Ordinary numbers stay numbers; 0 is not -0.
    expect(toJsonSafe(0)).toBe(0);
    expect(Object.is(toJsonSafe(0), 0)).toBe(true);
    expect(toJsonSafe(2.5)).toBe(2.5);
  });

  it('binary, sets, lists and maps are written with their tags, nested values too', () => {
    expect(toJsonSafe(new Uint8Array([1, 2, 255]))).toEqual({ $binary: 'AQL/' });
    expect(toJsonSafe(new Set([exact('1.50'), 'x']))).toEqual({ $set: [{ $number: '1.50' }, 'x'] });
    expect(toJsonSafe([-0, 'a', null])).toEqual([{ $number: '-0' }, 'a', null]);
    expect(toJsonSafe({ a: { b: new Uint8Array([0]) }, c: true })).toEqual({ a: { b: { $binary: 'AA==' } }, c: true });
  });

  it('a map shaped like a tag (one key starting with $) is wrapped, so it reads back as the map it was', () => {
    expect(toJsonSafe({ $number: '5' })).toEqual({ $map: { $number: '5' } });
    expect(toJsonSafe({ $anything: 1 })).toEqual({ $map: { $anything: 1 } });
    // Two keys, or one not starting with $, cannot be read as a tag: no wrapper.
    expect(toJsonSafe({ $a: 1, $b: 2 })).toEqual({ $a: 1, $b: 2 });
    expect(toJsonSafe({ a$: 1 })).toEqual({ a$: 1 });
    expect(toJsonSafe({})).toEqual({});
    expect(throughJson({ $number: '5' })).toEqual({ $number: '5' });
    expect(throughJson({ $map: { x: 1 } })).toEqual({ $map: { x: 1 } });
  });

  it('every kind of value reads back as the value it was', () => {
    const bytes = new Uint8Array([1, 2, 255]);
    const back = throughJson({ n: 7, z: -0, nan: Number.NaN, inf: Number.NEGATIVE_INFINITY, b: bytes, s: new Set(['a']), l: [1, 'x'] });
    expect(back).toEqual({ n: 7, z: -0, nan: Number.NaN, inf: Number.NEGATIVE_INFINITY, b: bytes, s: new Set(['a']), l: [1, 'x'] });
    expect(Object.is((back as { z: number }).z, -0)).toBe(true);
    expect((back as { b: unknown }).b).toBeInstanceOf(Uint8Array);
  });

  it.each([
    ['7', 7],
    ['-2.5', -2.5],
    ['9007199254740991', 9007199254740991],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('number text %s, exactly how JavaScript prints a double, reads back as that double', (text, number) => {
    expect(fromJsonSafe({ $number: text })).toBe(number);
  });

  // An empty text is no number at all: kept as written, never read as 0.
  it.each([['7.0'], ['9007199254740993'], ['100000000000000000000'], ['1e20'], ['0.10'], ['']])(
    'number text %s reads back as an exact number with its own text',
    (text) => {
      const back = fromJsonSafe({ $number: text });
      expect(back).toBeInstanceOf(ExactNumber);
      expect((back as ExactNumber).value).toBe(text);
    },
  );

  it('an exact number nested in lists, sets and maps is made by the reader given (a DynamoDB NumberValue)', () => {
    const back = fromJsonSafe(
      { l: [{ $number: '1.0' }], s: { $set: [{ $number: '2.0' }] }, m: { $map: { $number: { $number: '3.0' } } } },
      (t) => NumberValue.from(t),
    ) as { l: unknown[]; s: Set<unknown>; m: { $number: unknown } };
    expect(back.l[0]).toBeInstanceOf(NumberValue);
    expect(String(back.l[0])).toBe('1.0');
    const [member] = [...back.s];
    expect(member).toBeInstanceOf(NumberValue);
    expect(String(member)).toBe('2.0');
    expect(back.m.$number).toBeInstanceOf(NumberValue);
    expect(String(back.m.$number)).toBe('3.0');
  });

  it('a one-key map whose content does not fit its tag is read as the map it is', () => {
    expect(fromJsonSafe({ $set: 'a' })).toEqual({ $set: 'a' });
    expect(fromJsonSafe({ $binary: 5 })).toEqual({ $binary: 5 });
    expect(fromJsonSafe({ $number: 5 })).toEqual({ $number: 5 });
    // A tag beside other keys is a map key like any other.
    expect(fromJsonSafe({ $number: '5', b: 1 })).toEqual({ $number: '5', b: 1 });
    expect(fromJsonSafe({ $set: ['a'], b: 1 })).toEqual({ $set: ['a'], b: 1 });
    expect(fromJsonSafe({ $map: null })).toEqual({ $map: null });
    expect(fromJsonSafe({ $map: 'x' })).toEqual({ $map: 'x' });
    expect(fromJsonSafe({ $map: [1] })).toEqual({ $map: [1] });
    expect(fromJsonSafe({ $other: { $number: '7' } })).toEqual({ $other: 7 });
    expect(fromJsonSafe({ a: { $number: '7' }, b: 1 })).toEqual({ a: 7, b: 1 });
  });
});

describe('how deep a value nests', () => {
  it(`a value nested ${MAX_VALUE_DEPTH} levels is written; one more level is too deep`, () => {
    expect(MAX_VALUE_DEPTH).toBe(32);
    expect(nestedDeeperThan(nest(32, 'x'), 32)).toBe(false);
    expect(nestedDeeperThan(nest(33, 'x'), 32)).toBe(true);
    expect(nestedDeeperThan({ a: nest(32, 1) }, 32)).toBe(true);
    expect(nestedDeeperThan(new Set([nest(32, 1)]), 32)).toBe(true);
  });

  it('binary and exact numbers are values, not levels', () => {
    expect(nestedDeeperThan(nest(2, new Uint8Array([1])), 2)).toBe(false);
    expect(nestedDeeperThan(nest(2, exact('1.0')), 2)).toBe(false);
    expect(nestedDeeperThan(nest(2, null), 2)).toBe(false);
    expect(nestedDeeperThan(nest(3, null), 2)).toBe(true);
  });
});

describe('values shown in a diff', () => {
  it.each([
    ['an absent field', undefined, '(absent)'],
    ['null', null, 'null'],
    ['text, quoted', '7', '"7"'],
    ['a number', 7, '7'],
    ['a SQLite REAL 7.0 with its own text', exact('7.0'), '7.0'],
    ['40 digits in full', exact('1234567890123456789012345678901234567890'), '1234567890123456789012345678901234567890'],
    ['-0', -0, '-0'],
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['a boolean', true, 'true'],
    ['a list', [1, 'a', exact('2.0')], '[1,"a",2.0]'],
    ['a map', { a: 1, 'b c': [null] }, '{"a":1,"b c":[null]}'],
    ['a map holding exact numbers', { n: exact('7.0'), z: -0 }, '{"n":7.0,"z":-0}'],
    ['a set', new Set(['x']), '{"$set":["x"]}'],
    ['binary', new Uint8Array([1, 2]), '{"$binary":"AQI="}'],
  ])('%s', (_what, value, text) => {
    expect(formatValue(value)).toBe(text);
  });

  it('a value longer than the room is cut to it, ending in …', () => {
    expect(formatValue('abcdefgh', 10)).toBe('"abcdefgh"');
    expect(formatValue('abcdefghi', 10)).toBe('"abcdefgh…');
    expect(formatValue('x'.repeat(200))).toBe(`"${'x'.repeat(118)}…`);
  });

  it('a value nested too deeply is named, not printed', () => {
    expect(formatValue(nest(MAX_VALUE_DEPTH + 1, 1))).toBe('(a value nested too deeply to show)');
    expect(formatValue(nest(MAX_VALUE_DEPTH, 1))).toBe(`${'['.repeat(MAX_VALUE_DEPTH)}1${']'.repeat(MAX_VALUE_DEPTH)}`);
  });
});
