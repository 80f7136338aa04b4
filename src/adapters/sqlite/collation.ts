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
 * The collation of column `column` of `table`, asked of SQLite itself (it has no pragma for a
 * column's collation): a compound SELECT whose first arm is the column (no rows) and whose second
 * is the text 'a' takes the column's collation, so comparing its one row with 'A' and with 'a '
 * tells NOCASE (case folded) and RTRIM (trailing spaces ignored) from BINARY (neither).
 *
 * A column whose name is not a plain identifier is never named in SQL: the probe reads the
 * table's columns by position (`WITH x(c0, c1, …) AS (SELECT * …)`), which keeps each column's
 * collation.
 *
 * @param table a checked identifier; column a column of the table.
 * @returns the collation, or an `Error` when SQLite cannot compare the column at all (an
 *   application-defined collation, which this connection does not have: "no such collation
 *   sequence").
 * @throws the driver's error for anything else (a locked database).
 */
export function columnCollation(db: Database.Database, table: string, column: string): BuiltInCollation | Error {
  try {
    let sql: string;
    if (SQL_IDENT.test(column) || column === 'rowid') {
      sql = `SELECT v = 'A' AS folds, v = 'a ' AS trims FROM (SELECT ${quoteIdent(column)} AS v FROM ${quoteIdent(table)} WHERE 0 UNION ALL SELECT 'a')`;
    } else {
      const names = db
        .prepare(`SELECT * FROM ${quoteIdent(table)} WHERE 0`)
        .columns()
        .map((c) => c.name);
      const v = `c${names.indexOf(column)}`;
      const all = names.map((_, i) => `c${i}`).join(', ');
      sql = `WITH x(${all}) AS (SELECT * FROM ${quoteIdent(table)} WHERE 0 UNION ALL SELECT ${names.map(() => "'a'").join(', ')}) SELECT ${v} = 'A' AS folds, ${v} = 'a ' AS trims FROM x`;
    }
    const probe = db.prepare(sql).get() as { folds: number; trims: number };
    return probe.folds ? 'NOCASE' : probe.trims ? 'RTRIM' : 'BINARY';
  } catch (err) {
    // Anything else (a locked database) is not about the column; the caller handles it.
    if (err instanceof Error && /no such collation sequence/.test(err.message)) return err;
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
