/**
 * A value goes into a SQLite column as the column's type affinity stores it, and datafix says so
 * before writing: the dry run shows `true` into an INTEGER column as the 1 SQLite stores and 7 into
 * a REAL column as the REAL 7.0, and the live run then stores exactly that (read back, with its
 * storage class, through an independent connection). A number SQLite cannot hold exactly fails
 * its record alone with value_not_exact, even in a column whose affinity would convert it, and
 * nothing of it is written. Asked about a table the database does not have, the adapter gives
 * values back as given rather than failing.
 */
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import { ExactNumber } from '../../src/plan/values.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

function newDb(sql: string): string {
  const path = tmp().file('test.db');
  createDb(path, sql);
  return path;
}

describe('what the dry run shows is what the column stores', () => {
  const SCHEMA = 'CREATE TABLE t (id INTEGER PRIMARY KEY, flag INTEGER, amount NUMERIC, score REAL); INSERT INTO t (id) VALUES (1)';
  const spec = (db: string) =>
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { flag: true, amount: false, score: 7 }\n`;

  it('true and false into INTEGER and NUMERIC columns are 1 and 0; 7 into a REAL column is the REAL 7.0', async () => {
    const db = newDb(SCHEMA);
    const dry = await runYaml(spec(db), { dryRun: true });
    expect(dry.records.map((r) => [r.outcome, r.changes])).toEqual([
      [
        'updated',
        [
          { field: 'flag', before: null, after: 1, guard: 'absent' },
          { field: 'amount', before: null, after: 0, guard: 'absent' },
          { field: 'score', before: null, after: new ExactNumber('7.0'), guard: 'absent' },
        ],
      ],
    ]);
    expect(query(db, 'SELECT flag, amount, score FROM t')).toEqual([{ flag: null, amount: null, score: null }]);

    const live = await runYaml(spec(db));
    expect(live.summary).toMatchObject({ total: 1, updated: 1, failed: 0 });
    // SQLite's own account of what it holds: the INTEGERs 1 and 0 and the REAL 7.0.
    expect(
      query(
        db,
        'SELECT typeof(flag) AS tf, CAST(flag AS TEXT) AS f, typeof(amount) AS ta, CAST(amount AS TEXT) AS a, typeof(score) AS ts, CAST(score AS TEXT) AS s FROM t',
      ),
    ).toEqual([{ tf: 'integer', f: '1', ta: 'integer', a: '0', ts: 'real', s: '7.0' }]);
  });
});

describe('a number SQLite cannot hold exactly, into a column whose affinity converts numbers', () => {
  it.each([
    ['INTEGER', 'n INTEGER'],
    ['REAL', 'n REAL'],
    ['NUMERIC', 'n NUMERIC'],
  ])('fails its record alone with value_not_exact (%s column); the others are written', async (_what, column) => {
    const db = newDb(
      `CREATE TABLE t (id INTEGER PRIMARY KEY, raw TEXT, ${column}); ` +
        `INSERT INTO t (id, raw) VALUES (1, '{"v": 1234567890123456789012345}'), (2, '{"v": 0.10000000000000000555}'), (3, '{"v": 12}')`,
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nextract:\n  v: { from: row.raw, parse: json, path: "$.v" }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { n: "{{ v }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 3, updated: 1, failed: 2, reasons: { value_not_exact: 2 } });
    expect([...run.outcomes]).toEqual([
      [
        1,
        {
          outcome: 'failed',
          reason: 'value_not_exact',
          message:
            'n: 1234567890123456789012345 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
        },
      ],
      [
        2,
        {
          outcome: 'failed',
          reason: 'value_not_exact',
          message:
            'n: 0.10000000000000000555 is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)',
        },
      ],
      [3, { outcome: 'updated' }],
    ]);
    expect(query(db, 'SELECT id, CAST(n AS TEXT) AS n FROM t ORDER BY id')).toEqual([
      { id: 1, n: null },
      { id: 2, n: null },
      { id: 3, n: column === 'n REAL' ? '12.0' : '12' },
    ]);
  });
});

describe('a table the database does not have', () => {
  it('storedAs and equalInColumn take values as given, with no affinity or collation to apply', async () => {
    const path = newDb('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT COLLATE NOCASE)');
    const adapter = createSqliteAdapter({ backend: 'sqlite', path, busyTimeoutMs: 5000 });
    try {
      expect(adapter.storedAs?.('nope', 'v', 5)).toBe(5);
      expect(adapter.storedAs?.('nope', 'v', '5')).toBe('5');
      // By bytes: only table t's column v would fold case.
      expect(adapter.equalInColumn?.('nope', 'v', 'abc', 'ABC')).toBe(false);
      expect(adapter.equalInColumn?.('nope', 'v', 'abc', 'abc')).toBe(true);
      // The same calls on the table that exists: TEXT affinity and NOCASE.
      expect(adapter.storedAs?.('t', 'v', 5)).toBe('5');
      expect(adapter.equalInColumn?.('t', 'v', 'abc', 'ABC')).toBe(true);
    } finally {
      await adapter.close();
    }
  });
});
