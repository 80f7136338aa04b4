/**
 * JSON text is parsed so that every number keeps its value: the fast path (JSON.parse) is taken
 * only for text whose number tokens a double holds exactly; anything else goes through the exact
 * parser. The expected values are written here, digit for digit.
 */
import { describe, expect, it } from 'vitest';
import { mayHoldInexactNumber, parseJsonExactly } from '../../src/engine/extract.js';
import { ExactNumber } from '../../src/plan/values.js';

describe('which JSON text may hold a number a double cannot hold', () => {
  it.each([
    ['{"a":123456789012345}', false, '15 digits'],
    ['{"a":1234567890123456}', true, '16 digits'],
    ['{"a":-9007199254740993}', true, 'beyond 2^53, negative'],
    ['{"a":1.0000000000000001}', true, '17 significant digits with a fraction'],
    ['{"a":0.1,"b":-2.5,"c":7}', false, 'ordinary numbers'],
    ['{"a":1e400}', true, 'a three-digit exponent'],
    ['{"a":1E+308}', true, 'a three-digit exponent, capital E and sign'],
    ['{"a":1.5e-20}', false, 'a two-digit exponent'],
    ['[12345678901234567]', true, 'at the top of a list'],
    ['{"a":"1234567890123456789"}', false, 'digits inside a string'],
    ['{"a":"say \\"1e400\\" here"}', false, 'an exponent inside a string with escaped quotes'],
    ['{"a":"ends in a backslash \\\\","b":12345678901234567}', true, 'a number after a string ending in an escaped backslash'],
    ['{"a":"\\\\\\"12345678901234567"}', false, 'an escaped quote after an escaped backslash, still inside the string'],
    ['{"a":"unterminated', true, 'an unterminated string (the exact parser reports it)'],
    ['{"true":true,"false":false,"e":null}', false, 'the letter e outside numbers'],
  ])('%s → %s (%s)', (text, expected) => {
    expect(mayHoldInexactNumber(text)).toBe(expected);
  });
});

describe('parseJsonExactly', () => {
  it('keeps an id of 19 digits as its digits, and ordinary numbers as numbers', () => {
    const parsed = parseJsonExactly('{"id":1091482500479000001,"n":7,"f":0.5,"s":"1091482500479000001"}') as Record<string, unknown>;
    expect(parsed.id).toBeInstanceOf(ExactNumber);
    expect((parsed.id as ExactNumber).value).toBe('1091482500479000001');
    expect(parsed.n).toBe(7);
    expect(parsed.f).toBe(0.5);
    expect(parsed.s).toBe('1091482500479000001');
  });

  it('keeps 1e400 and 1.0000000000000001 as written', () => {
    const parsed = parseJsonExactly('[1e400, 1.0000000000000001]') as unknown[];
    expect(parsed.map((v) => (v instanceof ExactNumber ? v.value : v))).toEqual(['1e400', '1.0000000000000001']);
  });

  it('refuses text that is not JSON, whichever parser reads it', () => {
    expect(() => parseJsonExactly('{"a":"unterminated')).toThrow(SyntaxError);
    expect(() => parseJsonExactly('{"a":1,}')).toThrow(SyntaxError);
  });
});
