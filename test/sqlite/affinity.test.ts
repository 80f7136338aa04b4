/**
 * A column's type affinity from its declared type, as SQLite decides it
 * (https://www.sqlite.org/datatype3.html, 3.1 and its table of examples in 3.1.1): the expected
 * affinities are written down from that page, and each is checked against SQLite itself by what
 * it stores for the text '12' and '3.0' in such a column.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { affinityOf, createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmpDir = useTempDirs();

// The examples of the SQLite documentation, then the rules' order and case.
const CASES: [string, 'INTEGER' | 'TEXT' | 'BLOB' | 'REAL' | 'NUMERIC'][] = [
  ['INT', 'INTEGER'],
  ['INTEGER', 'INTEGER'],
  ['TINYINT', 'INTEGER'],
  ['SMALLINT', 'INTEGER'],
  ['MEDIUMINT', 'INTEGER'],
  ['BIGINT', 'INTEGER'],
  ['UNSIGNED BIG INT', 'INTEGER'],
  ['INT2', 'INTEGER'],
  ['INT8', 'INTEGER'],
  ['CHARACTER(20)', 'TEXT'],
  ['VARCHAR(255)', 'TEXT'],
  ['VARYING CHARACTER(255)', 'TEXT'],
  ['NCHAR(55)', 'TEXT'],
  ['NATIVE CHARACTER(70)', 'TEXT'],
  ['NVARCHAR(100)', 'TEXT'],
  ['TEXT', 'TEXT'],
  ['CLOB', 'TEXT'],
  ['BLOB', 'BLOB'],
  ['', 'BLOB'],
  ['REAL', 'REAL'],
  ['DOUBLE', 'REAL'],
  ['DOUBLE PRECISION', 'REAL'],
  ['FLOAT', 'REAL'],
  ['NUMERIC', 'NUMERIC'],
  ['DECIMAL(10,5)', 'NUMERIC'],
  ['BOOLEAN', 'NUMERIC'],
  ['DATE', 'NUMERIC'],
  ['DATETIME', 'NUMERIC'],
  // The rules apply in order: INT wins over every other (FLOATING POINT holds "INT"), CHAR over
  // BLOB, BLOB over REAL; case does not matter; a type matching none is NUMERIC.
  ['FLOATING POINT', 'INTEGER'],
  ['CHARBLOB', 'TEXT'],
  ['BLOBREAL', 'BLOB'],
  ['varchar', 'TEXT'],
  ['double', 'REAL'],
  ['STRING', 'NUMERIC'],
];

/** What SQLite stores for the texts '12' and '3.0' in a column declared `type`: typeof of each. */
function storedKinds(type: string): [string, string] {
  const db = new Database(':memory:');
  try {
    db.exec(`CREATE TABLE t (c ${type})`);
    db.prepare('INSERT INTO t VALUES (?), (?)').run('12', '3.0');
    const kinds = db.prepare('SELECT typeof(c) AS k FROM t ORDER BY rowid').all() as { k: string }[];
    return [kinds[0]?.k ?? '', kinds[1]?.k ?? ''];
  } finally {
    db.close();
  }
}

/** What each affinity stores for '12' and '3.0' (datatype3.html 3): INTEGER and NUMERIC alike. */
const STORES: Record<string, [string, string]> = {
  INTEGER: ['integer', 'integer'],
  NUMERIC: ['integer', 'integer'],
  REAL: ['real', 'real'],
  TEXT: ['text', 'text'],
  BLOB: ['text', 'text'],
};

describe('type affinity from a declared type', () => {
  it.each(CASES)('%j is %s', (type, affinity) => {
    expect(affinityOf(type)).toBe(affinity);
    expect(storedKinds(type)).toEqual(STORES[affinity]);
  });

  it('a quoted declared type of only spaces is a type, not "no type": NUMERIC, as SQLite stores it', () => {
    const quoted: [string, string][] = [
      ['" "', ' '],
      ['"\t"', '\t'],
    ];
    for (const [declared, reported] of quoted) {
      const db = new Database(':memory:');
      db.exec(`CREATE TABLE t (c ${declared})`);
      const { type } = db.prepare("SELECT type FROM pragma_table_xinfo('t')").get() as { type: string };
      db.close();
      expect(type).toBe(reported);
      expect(affinityOf(type)).toBe('NUMERIC');
      expect(storedKinds(declared)).toEqual(STORES.NUMERIC);
    }
  });
});

// Texts SQLite takes as a number in a column with numeric affinity, and texts it keeps as text:
// spaces around (ASCII only), signs, a leading or trailing point, exponents, and what is not a
// well-formed number (hex, two points, a lone sign or point, Unicode digits or spaces, text after
// a NUL, which SQLite stops reading at).
const TEXTS = [
  '12',
  ' 12 ',
  '\t12\n',
  '+3',
  '-3',
  '.5',
  '5.',
  '1e3',
  '1E+3',
  '2.5e-1',
  '007',
  '0x10',
  '1.2.3',
  '-',
  '.',
  '+',
  'e5',
  '1e',
  '12abc',
  '١٢',
  '12\u00a0',
  '\u00a012',
  '',
  ' ',
  '12\u0000x',
];

describe('what a NUMERIC column stores for a text, as datafix says before writing it', () => {
  it.each(TEXTS)('%j', async (text) => {
    const dir = tmpDir();
    const path = dir.file('n.db');
    const db = new Database(path);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, n NUMERIC)');
    db.prepare('INSERT INTO t (id, n) VALUES (1, ?)').run(text);
    db.defaultSafeIntegers(true);
    const { n: stored, k: kind } = db.prepare('SELECT n, typeof(n) AS k FROM t').get() as { n: unknown; k: string };
    db.close();
    const adapter = createSqliteAdapter({ backend: 'sqlite', path, busyTimeoutMs: 5000 });
    try {
      const said = adapter.storedAs?.('t', 'n', text);
      // SQLite's own answer: a number (integer or real) or the text unchanged.
      if (kind === 'text') expect(said).toBe(text);
      else expect([kind, Number(said)]).toEqual([kind, Number(stored)]);
      expect(typeof said === 'string').toBe(kind === 'text');
    } finally {
      await adapter.close();
    }
  });
});
