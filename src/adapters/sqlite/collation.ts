/**
 * Column collations: how SQLite compares a column's text, so that a skip rule compares
 * `row.email` the way the source's `where` (run by SQLite) does.
 * https://www.sqlite.org/datatype3.html, 7. Collating Sequences.
 */
import type Database from 'better-sqlite3';
import { quoteIdent, SQL_IDENT } from './sql.js';

/** The collations SQLite defines itself; any other is an application's, unknown to datafix. */
export type BuiltInCollation = 'BINARY' | 'NOCASE' | 'RTRIM';

/**
 * Asks SQLite how column `column` of `table` treats a value: `select` (an expression over `v`) is
 * evaluated on one row holding the SQL literal `value` in a column that takes `column`'s declared
 * collation and affinity (a compound SELECT's column takes its first arm's, here the column with
 * no rows). SQLite has no pragma for either.
 *
 * A column whose name is not a plain identifier is never named in SQL: the probe reads the
 * table's columns by position (`WITH "datafix:probe"(c0, c1, …) AS (SELECT * …)`), which keeps
 * each column's collation and affinity, and needs every column's collation: in a table that also
 * has a column of an application's collation it fails as that column would.
 *
 * @param table a checked identifier; column a column of the table; value and select SQL of the
 *   caller's own, never from a spec.
 * @throws the driver's error ("no such collation sequence", a locked database).
 */
export function probeColumn(db: Database.Database, table: string, column: string, value: string, select: string): Record<string, unknown> {
  let sql: string;
  if (SQL_IDENT.test(column) || column === 'rowid') {
    sql = `SELECT ${select} FROM (SELECT ${quoteIdent(column)} AS v FROM ${quoteIdent(table)} WHERE 0 UNION ALL SELECT ${value})`;
  } else {
    const names = db
      .prepare(`SELECT * FROM ${quoteIdent(table)} WHERE 0`)
      .columns()
      .map((c) => c.name);
    const all = names.map((_, i) => `c${i}`).join(', ');
    // The CTE's name cannot be a table's: table names are plain identifiers.
    sql = `WITH "datafix:probe"(${all}) AS (SELECT * FROM ${quoteIdent(table)} WHERE 0 UNION ALL SELECT ${names.map(() => value).join(', ')}) SELECT ${select} FROM (SELECT c${names.indexOf(column)} AS v FROM "datafix:probe")`;
  }
  return db.prepare(sql).get() as Record<string, unknown>;
}

/** Whether `err` is SQLite's "no such collation sequence": a collation only the application defines. */
export function isMissingCollation(err: unknown): err is Error {
  return err instanceof Error && /no such collation sequence/.test(err.message);
}

/**
 * The collation of column `column` of `table`, asked of SQLite itself (`probeColumn`): comparing
 * the text 'a' in the column's collation with 'A' and with 'a ' tells NOCASE (case folded) and
 * RTRIM (trailing spaces ignored) from BINARY (neither). A column whose name is not a plain
 * identifier, in a table that also has a column of an application's collation, answers that
 * collation's error (DF413: the safe side).
 *
 * @param table a checked identifier; column a column of the table.
 * @returns the collation, or an `Error` when SQLite cannot compare the column at all (an
 *   application-defined collation, which this connection does not have: "no such collation
 *   sequence").
 * @throws the driver's error for anything else (a locked database).
 */
export function columnCollation(db: Database.Database, table: string, column: string): BuiltInCollation | Error {
  try {
    const probe = probeColumn(db, table, column, "'a'", "v = 'A' AS folds, v = 'a ' AS trims");
    return probe.folds ? 'NOCASE' : probe.trims ? 'RTRIM' : 'BINARY';
  } catch (err) {
    // Anything else (a locked database) is not about the column; the caller handles it.
    if (isMissingCollation(err)) return err;
    throw err;
  }
}

/**
 * Text as a built-in collation compares it: unchanged for BINARY (bytes), the 26 ASCII capitals
 * folded for NOCASE (not other scripts), trailing spaces (U+0020 only) dropped for RTRIM. Two
 * texts are equal under the collation exactly when their keys are.
 */
export function collationKey(collation: BuiltInCollation, text: string): string {
  switch (collation) {
    case 'BINARY':
      return text;
    case 'NOCASE':
      return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
    case 'RTRIM':
      return text.replace(/ +$/, '');
  }
}
