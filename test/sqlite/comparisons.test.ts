/**
 * Comparisons (`lt` … `type`) on SQLite: the same condition run by SQLite as the source's `where`
 * and by datafix as a skip rule over the same rows selects the same rows, and those are the rows
 * written down here by hand from SQLite's rules (https://www.sqlite.org/datatype3.html §4: type
 * affinity of the column applied to the constant, storage classes ordered NULL < numbers < text
 * < blob, text by the column's collation; NULL never compares).
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs({ scope: 'file' });

// n: INTEGER affinity (numeric text is stored as a number; other text stays text).
// s: TEXT COLLATE NOCASE. b: TEXT (BINARY). a: no type (BLOB affinity: kept as given).
// r: TEXT COLLATE RTRIM (trailing spaces ignored).
const SCHEMA = `
CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT COLLATE NOCASE, b TEXT, a, r TEXT COLLATE RTRIM, mark TEXT);
INSERT INTO t (id, n, s, b, a, r) VALUES
  (1, 9, 'apple', 'Apple', 9, 'a  '),
  (2, 10, 'Banana', 'banana', '10', 'a'),
  (3, '100', 'cherry', 'USER#1', x'0102', 'ab'),
  (4, 'abc', 'APPLE pie', 'USER#2', 'user#3', ' a'),
  (5, NULL, NULL, NULL, NULL, NULL),
  (6, 9223372036854775807, '', '', '', ''),
  (7, 2.5, 'Äpfel', 'user#4', 2.5, 'b '),
  (8, -3, 'banana split', 'x USER# y', 'USER#', 'A');
`;

/** The same condition with every reference given the prefix (`row.` in a skip rule). */
function prefixed(cond: unknown, prefix: string): unknown {
  if (Array.isArray(cond)) return cond.map((c) => prefixed(c, prefix));
  if (cond === null || typeof cond !== 'object') return cond;
  const [op, arg] = Object.entries(cond)[0] as [string, unknown];
  if (op === 'all' || op === 'any' || op === 'not') return { [op]: prefixed(arg, prefix) };
  return { [op]: Object.fromEntries(Object.entries(arg as object).map(([k, v]) => [`${prefix}${k}`, v])) };
}

async function selectedBy(db: string, cond: unknown): Promise<{ where: number[]; skip: number[] }> {
  const head = `name: cmp\n${sqliteTarget(db)}`;
  const update = `update:\n  key: { id: "{{ row.id }}" }\n  set: { mark: "x" }\n`;
  const where = await runYaml(`${head}source:\n  table: t\n  as: row\n  where: ${JSON.stringify(cond)}\n${update}`, { dryRun: true });
  const skip = await runYaml(
    `${head}source: { table: t, as: row }\nskip:\n  - reason: hit\n    when: ${JSON.stringify(prefixed(cond, 'row.'))}\n${update}`,
    { dryRun: true },
  );
  return {
    where: where.records.map((r) => Number(r.key.id)).sort((x, y) => x - y),
    skip: skip.records
      .filter((r) => r.reason === 'hit')
      .map((r) => Number(r.key.id))
      .sort((x, y) => x - y),
  };
}

// Each case: the condition and the ids SQLite's rules select, worked out by hand.
const CASES: [string, unknown, number[]][] = [
  // INTEGER column: '9' takes the column's affinity and compares as the number 9; 'abc' is text,
  // above every number; NULL never compares.
  ['gt numeric text vs INTEGER', { gt: { n: '9' } }, [2, 3, 4, 6]],
  ['lt number vs INTEGER', { lt: { n: 10 } }, [1, 7, 8]],
  ['lte', { lte: { n: 10 } }, [1, 2, 7, 8]],
  // A 64-bit integer, written as text (YAML cannot hold it as a number): exact, not a double.
  ['gte 64-bit', { gte: { n: '9223372036854775807' } }, [4, 6]],
  ['lt 64-bit', { lt: { n: '9223372036854775807' } }, [1, 2, 3, 7, 8]],
  // NOCASE: 'APPLE pie' > 'apple' and 'Banana' < 'banana split' ignoring case.
  ['gt NOCASE', { gt: { s: 'apple' } }, [2, 3, 4, 7, 8]],
  ['lt NOCASE', { lt: { s: 'BANANA' } }, [1, 4, 6]],
  // BINARY: capitals sort before lowercase.
  ['lt BINARY', { lt: { b: 'a' } }, [1, 3, 4, 6]],
  ['between inclusive', { between: { n: [9, 100] } }, [1, 2, 3]],
  ['between text NOCASE', { between: { s: ['apple', 'BANANA'] } }, [1, 2, 4]],
  ['in numbers vs INTEGER', { in: { n: ['9', 100, 7] } }, [1, 3]],
  ['in NOCASE', { in: { s: ['APPLE', 'cherry'] } }, [1, 3]],
  ['in no affinity', { in: { a: [9, 10] } }, [1]],
  // RTRIM: 'a  ' is 'a'; ' a' (a leading space) is not.
  ['in RTRIM', { in: { r: ['a'] } }, [1, 2]],
  ['lte RTRIM', { lte: { r: 'a' } }, [1, 2, 4, 6, 8]],
  ['beginsWith RTRIM', { beginsWith: { r: 'a ' } }, [1, 2]],
  ['beginsWith BINARY', { beginsWith: { b: 'USER#' } }, [3, 4]],
  ['beginsWith NOCASE', { beginsWith: { s: 'apple' } }, [1, 4]],
  ['beginsWith empty prefix: every text', { beginsWith: { b: '' } }, [1, 2, 3, 4, 6, 7, 8]],
  ['beginsWith on a number column', { beginsWith: { n: '10' } }, []],
  ['contains BINARY', { contains: { b: 'USER#' } }, [3, 4, 8]],
  ['contains NOCASE', { contains: { s: 'BANANA' } }, [2, 8]],
  ['type string', { type: { n: 'string' } }, [4]],
  ['type integer', { type: { n: 'integer' } }, [1, 2, 3, 6, 8]],
  ['type real', { type: { n: 'real' } }, [7]],
  ['type number', { type: { a: 'number' } }, [1, 7]],
  ['type binary', { type: { a: 'binary' } }, [3]],
  ['type null', { type: { s: 'null' } }, [5]],
  // `not` keeps the rows where the test is false, NULL rows included, in both.
  // equals: the constant takes the column's affinity, text compares by the column's collation,
  // and NULL equals nothing (row 5 holds NULL in every column).
  ['equals numeric text vs INTEGER', { equals: { n: '10' } }, [2]],
  ['equals REAL vs INTEGER column', { equals: { n: 2.5 } }, [7]],
  ['equals 64-bit', { equals: { n: '9223372036854775807' } }, [6]],
  ['equals NOCASE', { equals: { s: 'APPLE' } }, [1]],
  ['equals RTRIM', { equals: { r: 'a' } }, [1, 2]],
  ['equals BINARY', { equals: { b: 'banana' } }, [2]],
  ['equals number vs no affinity: text is not a number', { equals: { a: 10 } }, []],
  ['not gt', { not: { gt: { n: 9 } } }, [1, 5, 7, 8]],
  ['not beginsWith', { not: { beginsWith: { b: 'USER#' } } }, [1, 2, 5, 6, 7, 8]],
  ['any of two', { any: [{ lt: { n: 0 } }, { contains: { b: 'user#' } }] }, [7, 8]],
];

describe('comparisons on SQLite mean what SQLite means, in where and in skip rules alike', () => {
  it.each(CASES)('%s', async (_name, cond, expected) => {
    const dir = tmp();
    const db = dir.file('cmp.db');
    createDb(db, SCHEMA);
    const got = await selectedBy(db, cond);
    expect(got.where).toEqual(expected);
    expect(got.skip).toEqual(expected);
  });
});

describe('beginsWith and contains with a numeric prefix on an INTEGER column', () => {
  // n is INTEGER: 10 and 100 are numbers; '10 apples' and 'x10' are not numeric, so they stay text.
  it.each([
    ['beginsWith', { beginsWith: { n: '10' } }, [2]],
    ['contains', { contains: { n: '10' } }, [2, 3]],
  ])('%s holds for the text holding the digits, never for a number (the prefix takes no affinity)', async (_name, cond, expected) => {
    const db = tmp().file('digits.db');
    createDb(
      db,
      "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, mark TEXT); INSERT INTO t (id, n) VALUES (1, 10), (2, '10 apples'), (3, 'x10'), (4, 100);",
    );
    const got = await selectedBy(db, cond);
    expect(got.where).toEqual(expected);
    expect(got.skip).toEqual(expected);
  });
});

describe('a rule on a value inside a JSON document (no column)', () => {
  it('compares with no affinity, and a missing value satisfies nothing', async () => {
    const db = tmp().file('json.db');
    createDb(
      db,
      `CREATE TABLE t (id INTEGER PRIMARY KEY, raw TEXT, mark TEXT);
       INSERT INTO t (id, raw) VALUES (1, '{"v":10}'), (2, '{"v":"10"}'), (3, '{"v":9}'), (4, '{}'), (5, '{"v":"b"}'), (6, '{"v":"B"}');`,
    );
    const run = await runYaml(
      `name: json-rule
${sqliteTarget(db)}source: { table: t, as: row }
extract:
  v: { from: row.raw, parse: json, path: "$.v" }
skip:
  - reason: hit
    when: { gt: { v: 9 } }
update:
  key: { id: "{{ row.id }}" }
  set: { mark: "{{ v }}" }
`,
      { dryRun: true },
    );
    // 10 > 9; every text ("10", "b", "B") is above every number: it takes no affinity here, so
    // "10" stays text; 9 is not above 9, and a missing value satisfies nothing.
    const hits = run.records.filter((r) => r.reason === 'hit').map((r) => Number(r.key.id));
    expect(hits.sort((a, b) => a - b)).toEqual([1, 2, 5, 6]);
  });

  it('equals compares exactly: the number 10 is not the text "10", and "b" is not "B"', async () => {
    const db = tmp().file('json-equals.db');
    createDb(
      db,
      `CREATE TABLE t (id INTEGER PRIMARY KEY, raw TEXT, mark TEXT);
       INSERT INTO t (id, raw) VALUES (1, '{"v":10}'), (2, '{"v":"10"}'), (3, '{"v":"b"}'), (4, '{"v":"B"}'), (5, '{}');`,
    );
    const run = await runYaml(
      `name: json-equals
${sqliteTarget(db)}source: { table: t, as: row }
extract:
  v: { from: row.raw, parse: json, path: "$.v" }
skip:
  - reason: ten
    when: { equals: { v: 10 } }
  - reason: small_b
    when: { equals: { v: b } }
update:
  key: { id: "{{ row.id }}" }
  set: { mark: "{{ v }}" }
`,
      { dryRun: true },
    );
    expect(Object.fromEntries(run.records.map((r) => [Number(r.key.id), r.reason ?? r.outcome]))).toEqual({
      1: 'ten',
      2: 'updated',
      3: 'small_b',
      4: 'updated',
      // No value: matches neither rule, and sets nothing.
      5: 'no_change',
    });
  });
});

describe('a rule on a lookup row compares as that row’s own columns do', () => {
  it('applies the looked-up table’s affinity and collation', async () => {
    const dir = tmp();
    const db = dir.file('lookup.db');
    createDb(
      db,
      `${SCHEMA}
      CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT COLLATE NOCASE, qty INTEGER);
      INSERT INTO p VALUES (1, 'ABC', 10), (2, 'abd', '7'), (3, 'xab', 3), (4, NULL, 'x'), (6, 'Ab', 9);`,
    );
    const run = await runYaml(
      `name: cmp\n${sqliteTarget(db)}source: { table: t, as: row }
lookups:
  p: { table: p, get: { id: "{{ row.id }}" } }
skip:
  - reason: hit
    when: { all: [ { gt: { p.qty: "5" } }, { beginsWith: { p.code: ab } } ] }
update:
  key: { id: "{{ row.id }}" }
  set: { mark: x }
`,
      { dryRun: true },
    );
    // qty > 5 as numbers (the text '5' takes INTEGER affinity; 'x' is text, above numbers) and
    // code starting with "ab" ignoring case: rows 1 (ABC, 10), 2 (abd, 7), 6 (Ab, 9).
    const hits = run.records.filter((r) => r.reason === 'hit').map((r) => Number(r.key.id));
    expect(hits.sort((a, b) => a - b)).toEqual([1, 2, 6]);
  });
});
