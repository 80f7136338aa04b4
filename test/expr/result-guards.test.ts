/**
 * What an expression gives is written only when a database can hold it as given, and a value it
 * never reads cannot fail it: on a real SQLite file, rows keep their data when a result is NaN,
 * ±Infinity, an integer beyond 64 bits or text cut inside a character; a whole REAL of 16 digits
 * is read as the double it is; a regular expression's work is charged by text and pattern size.
 */
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, query, runYaml, sqliteTarget } from '../sqlite/fixtures.js';

const tmp = useTempDirs();

function db(sql: string): string {
  const path = tmp().file('t.db');
  createDb(path, sql);
  return path;
}
const spec = (path: string, body: string) => `name: guards\n${sqliteTarget(path)}source:\n  as: row\n  table: t\n${body}`;

describe('an expression result no column holds as given fails its record; the row keeps its value', () => {
  it.each([
    ['NaN (0.0 / 0.0)', '{{ row.x / row.x }}'],
    ['Infinity (1.0 / 0.0)', '{{ 1.0 / row.x }}'],
    ['an integer beyond 64 bits (negating the smallest)', '{{ -row.i }}'],
    ['an integer beyond 64 bits (dividing the smallest by -1)', '{{ row.i / -1 }}'],
    ['text cut inside a character', '{{ row.s.substring(0, 1) }}'],
  ])('%s', async (_what, template) => {
    const path = db(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL, i INTEGER, s TEXT, y); INSERT INTO t VALUES (1, 0.0, -9223372036854775808, '😀abc', 5.5)",
    );
    const run = await runYaml(spec(path, `update:\n  key: { id: "{{ row.id }}" }\n  set: { y: "${template}" }\n  overwrite: [y]\n`));
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'failed', reason: 'expression_error' });
    expect(query(path, 'SELECT y FROM t')).toEqual([{ y: 5.5 }]);
  });
});

describe('a value an expression never reads cannot fail it', () => {
  it('a column of 1.1 million characters and a 25-digit decimal text beside the ones it reads', async () => {
    const path = db(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, p NUMERIC, n INTEGER); INSERT INTO t VALUES (1, printf('%.1100000c', 'x'), '3.141592653589793238462643', NULL)",
    );
    const run = await runYaml(spec(path, 'update:\n  key: { id: "{{ row.id }}" }\n  set: { n: "{{ row.id + 1 }}" }\n'));
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'updated' });
    expect(query(path, 'SELECT n FROM t')).toEqual([{ n: 2 }]);
  });

  it('a whole REAL of 16 digits (a microsecond timestamp) is the double it is', async () => {
    const path = db('CREATE TABLE t (id INTEGER PRIMARY KEY, ts_us REAL, y TEXT); INSERT INTO t VALUES (1, 1764500000123456.0, NULL)');
    const run = await runYaml(spec(path, 'update:\n  key: { id: "{{ row.id }}" }\n  set: { y: "{{ string(row.ts_us > 1.0e15) }}" }\n'));
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'updated' });
    expect(query(path, 'SELECT y FROM t')).toEqual([{ y: 'true' }]);
  });
});

describe('bounded regular expressions', () => {
  it("a long pattern over long text runs out of the record's budget quickly instead of running for minutes", async () => {
    const path = db("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, y TEXT); INSERT INTO t VALUES (1, printf('%.100000c', 'a'), NULL)");
    const started = Date.now();
    const run = await runYaml(
      spec(
        path,
        `skip:\n  - reason: r\n    when: { expr: '[1,2,3,4,5,6,7,8,9,10].exists(i, row.s.matches("(a*){400}[^a]"))' }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { y: x }\n`,
      ),
    );
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'failed', reason: 'expression_limit' });
    // A guard against a hang, not a measurement: unbounded, this record took minutes.
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});

describe('validate', () => {
  it('an expression in a list lookup’s where is refused like one in source.where (DF234), not an internal error at run time', () => {
    const path = db('CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER); CREATE TABLE c (id INTEGER PRIMARY KEY, t_id INTEGER)');
    expect(() =>
      compileYaml(
        spec(
          path,
          `lookups:\n  cs:\n    table: c\n    where: { all: [ { equals: { t_id: "{{ row.id }}" } }, { not: { expr: 'true' } } ] }\n    max: 5\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { n: "{{ size(cs) }}" }\n`,
        ),
      ),
    ).toThrow(expect.objectContaining({ code: 'DF234' }));
  });
});

describe('time zones', () => {
  it('an unknown time zone fails the record as an expression error naming it, not as a limit', async () => {
    const path = db("CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT, y TEXT); INSERT INTO t VALUES (1, '2029-10-01T10:00:00Z', NULL)");
    const run = await runYaml(
      spec(path, 'update:\n  key: { id: "{{ row.id }}" }\n  set: { y: "{{ string(timestamp(row.at).getHours(\'Mars/Olympus\')) }}" }\n'),
    );
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'failed', reason: 'expression_error' });
    expect(run.outcomes.get(1)?.message).toContain('Mars/Olympus');
  });
});
