/**
 * Exact numbers going into and out of SQLite: a number from JSON text is written only where a
 * REAL reads back as that very number (else the record fails with value_not_exact and nothing is
 * written), a whole record copied into a column is JSON text with every digit of its 64-bit
 * integers and whole REALs, a DynamoDB-style set given to `datafix test` is stored as a JSON list,
 * and integers a double holds are read as plain numbers up to ±(2^53 - 1) and as exact integers
 * beyond. Rows are read back through an independent connection; expected values are written down.
 */
import { expect, it } from 'vitest';
import { FixTestRunner } from '../../src/fixtest/run.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

const NOT_EXACT = (text: string) =>
  `r: ${text} is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)`;

it('a number from JSON text goes into a REAL column only where the REAL reads back as that very number', async () => {
  const db = tmp().file('t.db');
  // Each number has 16 or more digits or a 3-digit exponent, so it is parsed exactly.
  createDb(
    db,
    `CREATE TABLE t (id INTEGER PRIMARY KEY, doc TEXT, r REAL);
     INSERT INTO t (id, doc) VALUES
       (1, '{"v": 0.01e023}'),
       (2, '{"v": 9007199254740992.0}'),
       (3, '{"v": 9007199254740993.0}'),
       (4, '{"v": 0.12345678901234567}'),
       (5, '{"v": 1e-400}'),
       (6, '{"v": 1e400}');`,
  );
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nextract:\n  v: { from: row.doc, parse: json, path: $.v }\n` +
      'update:\n  key: { id: "{{ row.id }}" }\n  set: { r: "{{ v }}" }\n',
  );
  expect([...run.outcomes]).toEqual([
    // 0.01e23 is 1e21, and 2^53 written as a decimal is 2^53: a REAL holds both.
    [1, { outcome: 'updated' }],
    [2, { outcome: 'updated' }],
    // The nearest REALs are 2^53, 0.12345678901234566 and 0: not the numbers in the text.
    [3, { outcome: 'failed', reason: 'value_not_exact', message: NOT_EXACT('9007199254740993.0') }],
    [4, { outcome: 'failed', reason: 'value_not_exact', message: NOT_EXACT('0.12345678901234567') }],
    [5, { outcome: 'failed', reason: 'value_not_exact', message: NOT_EXACT('1e-400') }],
    [6, { outcome: 'failed', reason: 'value_not_exact', message: NOT_EXACT('1e400') }],
  ]);
  expect(query(db, 'SELECT id, typeof(r) AS k, quote(r) AS q FROM t ORDER BY id')).toEqual([
    { id: 1, k: 'real', q: '1.0e+21' },
    { id: 2, k: 'real', q: '9007199254740992.0' },
    { id: 3, k: 'null', q: 'NULL' },
    { id: 4, k: 'null', q: 'NULL' },
    { id: 5, k: 'null', q: 'NULL' },
    { id: 6, k: 'null', q: 'NULL' },
  ]);
});

it('a whole record copied into a column is JSON text with every digit of its integers and whole REALs, and its text kept text', async () => {
  const db = tmp().file('t.db');
  createDb(
    db,
    `CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT, big INTEGER, low INTEGER, r REAL, snap TEXT);
     INSERT INTO t VALUES (1, '12', 9007199254740993, -9223372036854775808, 7.0, NULL);`,
  );
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { snap: "{{ row }}" }\n`,
  );
  expect([...run.outcomes]).toEqual([[1, { outcome: 'updated' }]]);
  const rows = query<{ snap: string; big: bigint; low: bigint; code: string; codeType: string; r: number; rType: string }>(
    db,
    `SELECT snap, snap ->> '$.big' AS big, snap ->> '$.low' AS low, snap ->> '$.code' AS code, json_type(snap, '$.code') AS codeType,
            snap ->> '$.r' AS r, json_type(snap, '$.r') AS rType FROM t`,
    [],
    { safeIntegers: true },
  );
  expect(rows).toEqual([
    {
      snap: '{"id":1,"code":"12","big":9007199254740993,"low":-9223372036854775808,"r":7.0,"snap":null}',
      big: 9007199254740993n,
      low: -9223372036854775808n,
      code: '12',
      codeType: 'text',
      r: 7,
      rType: 'real',
    },
  ]);
});

it('integers are read as plain numbers up to ±(2^53 - 1) and as exact integers beyond', async () => {
  const db = tmp().file('t.db');
  createDb(
    db,
    `CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT);
     INSERT INTO t (id) VALUES (-9007199254740992), (-9007199254740991), (9007199254740991), (9007199254740992);`,
  );
  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n`,
    {
      dryRun: true,
    },
  );
  expect(run.records.map((r) => r.key.id)).toEqual([-9007199254740992n, -9007199254740991, 9007199254740991, 9007199254740992n]);
});

it('datafix test stores a set given for a SQLite table as a JSON list of its members', async () => {
  const dir = tmp();
  dir.write(
    'copy.yaml',
    'name: copy\ntarget: { sqlite: { path: /unused.db } }\nsource: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { copy: "{{ row.tags }}" }\n',
  );
  const file = dir.write(
    'copy.test.yaml',
    `cases:
  - name: the set as JSON text
    given:
      t: [ { id: 1, tags: { $set: [b, a] } } ]
    expect:
      records:
        t: [ { id: 1, tags: '["b","a"]', copy: '["b","a"]' } ]
  - name: an expectation of another list fails
    given:
      t: [ { id: 1, tags: { $set: [b, a] } } ]
    expect:
      records:
        t: [ { id: 1, copy: '[]' } ]
`,
  );
  const result = await new FixTestRunner().runFile(file);
  expect(result.cases).toEqual([
    { name: 'the set as JSON text', passed: true, problems: [] },
    { name: 'an expectation of another list fails', passed: false, problems: ['t id=1: copy: expected "[]", got "[\\"b\\",\\"a\\"]"'] },
  ]);
});
