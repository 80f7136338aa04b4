/**
 * Every function and example docs/expressions.md shows gives the result it states, evaluated as
 * datafix evaluates a template (values converted back as they would be written).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { baseEnvironment } from '../../src/language/expr/environment.js';
import { checkExpression, EXPR_MISSING, evaluateExpression } from '../../src/language/expr/index.js';

const ctx = new Map<string, unknown>([
  ['now', '2026-01-10T00:00:00.000Z'],
  [
    'row',
    { email: ' Ann@X.IO ', qty: 2, price: 7.5, created_at: '2026-01-09T12:00:00Z', tags: ['A', '', 'b'], roles: ['admin'], nick: null },
  ],
]);

function value(source: string): unknown {
  const { checked, problems } = checkExpression(source, ['row', 'now']);
  expect(problems).toEqual([]);
  const v = evaluateExpression({ source, roots: checked?.roots ?? [] }, ctx);
  return v === EXPR_MISSING ? 'MISSING' : v;
}

describe('documented functions', () => {
  it.each([
    ['"  a b ".trim()', 'a b'],
    ['"Ann@X.IO".lowerAscii()', 'ann@x.io'],
    ['"ann".upperAscii()', 'ANN'],
    ['"Élodie".lowerAscii()', 'élodie'],
    ['"ß".upperAscii()', 'SS'],
    ['"a-b-c".replace("-", "_")', 'a_b_c'],
    ['"a-b-c".replace("-", "_", 1)', 'a_b-c'],
    ['"a,b".split(",")', ['a', 'b']],
    ['["a", "b"].join("-")', 'a-b'],
    ['["a", "b"].join()', 'ab'],
    ['"USER#1".startsWith("USER#")', true],
    ['"file.txt".endsWith(".txt")', true],
    ['"hello".contains("ell")', true],
    ['"ABC-12".matches("^[A-Z]{3}-[0-9]+$")', true],
    ['"xABC-12".matches("^[A-Z]{3}-[0-9]+$")', false],
    ['size("héllo")', 5],
    ['"abcdef".substring(1, 3)', 'bc'],
    ['"a.b.c".lastIndexOf(".")', 3],
    ['"ORG#" + "acme"', 'ORG#acme'],
    ['int("42")', 42],
    ['int(3.9)', 3],
    ['double("1.5")', 1.5],
    ['string(42)', '42'],
    ['string(now)', '2026-01-10T00:00:00.000Z'],
    ['bool("true")', true],
    ['timestamp("2026-01-09T12:00:00Z") < now', true],
    ['now - duration("1h30m")', '2026-01-09T22:30:00.000Z'],
    ['timestamp(row.created_at) < now - duration("24h")', false],
    ['timestamp(row.created_at) < now - duration("6h")', true],
    ['type(row.qty) == int', true],
    ['double(row.qty) * 1.5', 3],
    ['row.qty < 2.5', true],
    ['row.qty + 1', 3],
    ['row.tags.map(t, t.lowerAscii())', ['a', '', 'b']],
    ['[1, -2, 3].map(x, x > 0, x * 2)', [2, 6]],
    ['row.tags.filter(t, t != "")', ['A', 'b']],
    ['row.tags.exists(t, t == "b")', true],
    ['row.tags.all(t, size(t) < 2)', true],
    ['"admin" in row.roles', true],
    ['has(row.nick)', false],
    ['row.?nick.orValue("anonymous")', 'anonymous'],
    ['has(row.nick) ? row.nick : "name"', 'name'],
    ['row.nick', 'MISSING'],
    ['row.?nick', 'MISSING'],
    ['row.?qty', 2],
    ['row.nick.trim()', 'MISSING'],
    ['false && row.nick == "x"', false],
    ['true || row.nick == "x"', true],
    ['now.getHours("Europe/Paris")', 1],
    ['now.getFullYear()', 2026],
    ['now.getMonth()', 0],
    ['now.getDayOfWeek()', 6],
    ['now.getDate()', 10],
    ['now.getDayOfMonth()', 9],
    ['now.getDayOfYear()', 9],
    ['duration("90m").getMinutes()', 90],
    ['string(duration("1h"))', '3600s'],
    ['size(row.tags)', 3],
  ])('%s', (source, expected) => {
    expect(value(source)).toEqual(expected);
  });
});

describe('the documented set', () => {
  it('every function an expression can call is named in docs/expressions.md', () => {
    const docs = readFileSync(new URL('../../docs/expressions.md', import.meta.url), 'utf8');
    const names = new Set(
      baseEnvironment()
        .getDefinitions()
        .functions.map((f: { name: string }) => f.name),
    );
    const undocumented = [...names].filter((n) => !new RegExp(`\\b${n}\\(`).test(docs) && !docs.includes(`\`${n}\``));
    expect(undocumented).toEqual([]);
  });

  it('double() of an integer beyond 2^53 fails with value_not_exact instead of dropping a digit', () => {
    const source = 'double(row.big) + 0.5';
    const { checked } = checkExpression(source, ['row']);
    const ctx2 = new Map<string, unknown>([['row', { big: 9007199254740993n, small: 12 }]]);
    let error: unknown;
    try {
      evaluateExpression({ source, roots: checked?.roots ?? [] }, ctx2);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ reason: 'value_not_exact', message: expect.stringContaining('2^53') });
    expect(evaluateExpression({ source: 'double(row.small) / 8.0', roots: ['row'] }, ctx2)).toBe(1.5);
  });

  it('json() and cel.bind are refused at validate', () => {
    for (const source of ['bytes(row.email).json()', 'cel.bind(x, 1, x)']) {
      expect(checkExpression(source, ['row', 'now']).problems.map((p) => p.code)).toContain('DF233');
    }
  });
});
