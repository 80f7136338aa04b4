/**
 * Text copied into a NUMERIC column, as the dry run says it will be stored: SQLite makes a number
 * of a well-formed literal with ASCII spaces around it (its isspace: space, \t, \n, \v, \f, \r),
 * keeps anything else as text (https://www.sqlite.org/datatype3.html, 3 and 4.2). Each expected
 * value is written down here and checked against what SQLite itself stores for that text; the
 * dry run must show exactly that value for each record.
 */
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, runYaml, sqliteTarget } from './fixtures.js';

const tmp = useTempDirs();

// Text → the value a NUMERIC column stores for it: a number, or the text unchanged.
const CASES: [string, number | string][] = [
  // Vertical tab and form feed are spaces to SQLite, before and after the number; the letter V is not.
  ['\v12', 12],
  ['12\v', 12],
  ['\f\v7\v\r', 7],
  ['V12', 'V12'],
  ['12V', '12V'],
  // A fraction without an integer part, of several digits.
  ['.25', 0.25],
  ['-.125', -0.125],
  // Exponents of several digits.
  ['1e10', 10000000000],
  ['2.5E-10', 2.5e-10],
  ['-3e+12', -3000000000000],
];

it('the dry run shows, for text copied into a NUMERIC column, the value SQLite stores for it', async () => {
  const db = tmp().file('t.db');
  createDb(db, 'CREATE TABLE t (id INTEGER PRIMARY KEY, txt TEXT, n NUMERIC)');
  const conn = new Database(db);
  const ins = conn.prepare('INSERT INTO t (id, txt) VALUES (?, ?)');
  for (const [i, [text]] of CASES.entries()) ins.run(i + 1, text);
  // SQLite's own answer, on a scratch table of the same affinity.
  conn.exec('CREATE TEMP TABLE probe (n NUMERIC)');
  const stored = CASES.map(([text]) => {
    conn.prepare('DELETE FROM probe').run();
    conn.prepare('INSERT INTO probe VALUES (?)').run(text);
    return (conn.prepare('SELECT n FROM probe').get() as { n: unknown }).n;
  });
  conn.close();
  expect(stored).toEqual(CASES.map(([, v]) => v));

  const run = await runYaml(
    `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { n: "{{ row.txt }}" }\n`,
    { dryRun: true },
  );
  expect(run.records.map((r) => [r.key.id, r.outcome, r.changes?.map((c) => [c.field, c.before, c.after])])).toEqual(
    CASES.map(([, v], i) => [i + 1, 'updated', [['n', null, v]]]),
  );
});
