/**
 * Text that SQLite stores as a number in a NUMERIC column, and text it keeps as text, as the
 * adapter says before writing it (`storedAs`, which the dry run shows and the journal records):
 * the vertical tab is one of SQLite's spaces (a `V` is not), a number may start with its point
 * and have several digits after it, and an exponent may have several digits. The expected value
 * of each text is written down here, and checked against what SQLite itself stores for it.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

// Text, then how SQLite stores it in a NUMERIC column: its storage class and value.
const CASES: [string, 'integer' | 'real' | 'text', number | string][] = [
  ['\v12', 'integer', 12],
  ['12\v', 'integer', 12],
  ['\v\v12\v\v', 'integer', 12],
  ['V12', 'text', 'V12'],
  ['12V', 'text', '12V'],
  ['.25', 'real', 0.25],
  ['-.125', 'real', -0.125],
  ['1e10', 'integer', 10_000_000_000],
  ['2.5E-12', 'real', 2.5e-12],
  ['3E+12', 'integer', 3_000_000_000_000],
];

describe('what a NUMERIC column stores for a text, as datafix says before writing it', () => {
  it.each(CASES)('%j: %s %j', async (text, kind, value) => {
    const path = tmp().file('n.db');
    const db = new Database(path);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, n NUMERIC)');
    db.prepare('INSERT INTO t (id, n) VALUES (1, ?)').run(text);
    const stored = db.prepare('SELECT n, typeof(n) AS k FROM t').get();
    db.close();
    expect(stored).toEqual({ n: value, k: kind });
    const adapter = createSqliteAdapter({ backend: 'sqlite', path, busyTimeoutMs: 5000 });
    try {
      expect(adapter.storedAs?.('t', 'n', text)).toEqual(value);
    } finally {
      await adapter.close();
    }
  });
});
