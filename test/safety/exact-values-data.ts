/**
 * The SQLite values of every storage class that the exact-values tests (CLI and in-process) run
 * through a live run and its undo, and how they read the table back: by storage class and bytes,
 * never through datafix.
 */
import { copyFileSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * SQL literals of every storage class and the edge of each: INTEGER at ±2^63 and beyond 2^53,
 * REAL whole, negative zero, ±Infinity and a double that needs 17 digits, TEXT with NUL and with
 * a character outside the BMP, BLOB empty and with NUL/0xFF bytes, and NULL. The columns have no
 * declared type, so SQLite keeps each storage class exactly as given.
 */
export const VALUES = [
  '9223372036854775807',
  '-9223372036854775808',
  '9007199254740993',
  '7.0',
  '-0.0',
  '1e20',
  '9e999',
  '-9e999',
  '0.30000000000000004',
  "'a' || char(0) || 'b'",
  "'smile 😀'",
  "x''",
  "x'00ff10'",
  'NULL',
  "'plain'",
];

/** The rows a query reads, read-only, integers as bigints (exact at any size). */
export function exactRows(path: string, sql: string): unknown[] {
  const db = new Database(path, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

/** id, then storage class and exact content of each column: REALs as numbers (-0 kept), the rest as bytes. */
export function snapshot(path: string): unknown[] {
  const db = new Database(path, { readonly: true });
  try {
    const col = (c: string) => `typeof(${c}) AS t_${c}, CASE typeof(${c}) WHEN 'real' THEN ${c} ELSE hex(${c}) END AS x_${c}`;
    return db.prepare(`SELECT id, ${col('v')}, ${col('v_new')} FROM vals ORDER BY id`).all();
  } finally {
    db.close();
  }
}

export function createValuesDb(path: string): void {
  const db = new Database(path);
  try {
    db.exec('CREATE TABLE vals (id INTEGER PRIMARY KEY, v, v_new, touched_at TEXT)');
    // Row i replaces VALUES[i] with VALUES[i + 1]: every value is once a before-image and once new.
    VALUES.forEach((before, i) => {
      const after = VALUES[(i + 1) % VALUES.length] as string;
      db.exec(`INSERT INTO vals VALUES (${i + 1}, ${before}, ${after}, NULL)`);
    });
    // TEXT that is not valid UTF-8 reads back with U+FFFD: its before-image cannot restore it.
    db.exec(`INSERT INTO vals VALUES (100, CAST(x'61ff62' AS TEXT), 'replacement', NULL)`);
  } finally {
    db.close();
  }
}

export const SPEC = `name: exact-values
target:
  sqlite: { path: "\${VALUES_DB}" }
source:
  as: row
  table: vals
update:
  key: { id: "{{ row.id }}" }
  set:
    v: "{{ row.v_new }}"
  overwrite: true
  touch: { touched_at: "{{ now }}" }
`;

/** The columns the type-affinity tests write: TEXT, INTEGER, REAL, NUMERIC and none (BLOB). */
const AFFINITY_COLUMNS = ['txt', 'num', 'r', 'nu', 'b'];

/** The expected table of the type-affinity tests: `db` copied to `oracle`, where SQLite itself stores each row's JSON `$.v` (json_extract) into every column. */
export function affinityOracle(db: string, oracle: string): void {
  copyFileSync(db, oracle);
  const o = new Database(oracle);
  try {
    o.exec(`UPDATE t SET ${AFFINITY_COLUMNS.map((c) => `${c} = json_extract(raw, '$.v')`).join(', ')}`);
  } finally {
    o.close();
  }
}

/** Each row of the type-affinity tests: every written column's value and storage class. */
export function affinitySnapshot(path: string): unknown[] {
  return exactRows(path, `SELECT id, ${AFFINITY_COLUMNS.map((c) => `${c}, typeof(${c})`).join(', ')} FROM t ORDER BY id`);
}

/**
 * The JSON values (`{"v": …}` in column `raw`) the type-affinity tests store into a column of each
 * affinity. JSON 7.0 is left out: a JSON number is a value, so 7.0 reads as 7, where SQLite's JSON
 * keeps a REAL. Unicode spaces are not SQLite's spaces: "\u202f7" stays text everywhere; "12\u0000"
 * is read up to its NUL.
 */
export const AFFINITY_RAWS = [
  '12345',
  '0.1',
  'true',
  'false',
  '"007"',
  '"12"',
  '"abc"',
  '1.5e300',
  '-3',
  '"2.50"',
  '9007199254740993',
  '"\\u202f7"',
  '"12\\u00a0"',
  '"12\\u0000"',
];

/** The type-affinity tests' table `t` in `path`: one row per AFFINITY_RAWS value, its columns empty. */
export function createAffinityDb(path: string): void {
  const w = new Database(path);
  try {
    w.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, raw TEXT, txt TEXT, num INTEGER, r REAL, nu NUMERIC, b)');
    const ins = w.prepare('INSERT INTO t (id, raw) VALUES (?, ?)');
    for (const [i, v] of AFFINITY_RAWS.entries()) ins.run(i + 1, `{"v":${v}}`);
  } finally {
    w.close();
  }
}
