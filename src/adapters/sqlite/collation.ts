/**
 * Column collations: how SQLite compares a column's text, so that a skip rule compares
 * `row.email` the way the source's `where` (run by SQLite) does.
 * https://www.sqlite.org/datatype3.html, 7. Collating Sequences.
 */
import type Database from 'better-sqlite3';
import { quoteIdent } from './sql.js';

/** The collations SQLite defines itself; any other is an application's, unknown to datafix. */
export type BuiltInCollation = 'BINARY' | 'NOCASE' | 'RTRIM';

/**
 * The collation of column `column` of `table`, asked of SQLite itself (it has no pragma for a
 * column's collation): a compound SELECT whose first arm is the column (no rows) and whose second
 * is the text 'a' takes the column's collation, so comparing its one row with 'A' and with 'a '
 * tells NOCASE (case folded) and RTRIM (trailing spaces ignored) from BINARY (neither).
 *
 * @param table, column checked identifiers.
 * @returns the collation, or an `Error` when SQLite cannot compare the column at all (an
 *   application-defined collation, which this connection does not have: "no such collation
 *   sequence").
 * @throws the driver's error for anything else (a locked database).
 */
export function columnCollation(db: Database.Database, table: string, column: string): BuiltInCollation | Error {
  try {
    const probe = db
      .prepare(
        `SELECT v = 'A' AS folds, v = 'a ' AS trims FROM (SELECT ${quoteIdent(column)} AS v FROM ${quoteIdent(table)} WHERE 0 UNION ALL SELECT 'a')`,
      )
      .get() as { folds: number; trims: number };
    return probe.folds ? 'NOCASE' : probe.trims ? 'RTRIM' : 'BINARY';
  } catch (err) {
    // Anything else (a locked database) is not about the column; the caller handles it.
    if (err instanceof Error && /no such collation sequence/.test(err.message)) return err;
    throw err;
  }
}

/**
 * Whether SQLite finds two texts equal under a built-in collation: BINARY compares bytes, NOCASE
 * folds the 26 ASCII letters only (not other scripts), RTRIM ignores trailing spaces (U+0020 only).
 */
export function collatedEqual(collation: BuiltInCollation, a: string, b: string): boolean {
  switch (collation) {
    case 'BINARY':
      return a === b;
    case 'NOCASE':
      return foldAscii(a) === foldAscii(b);
    case 'RTRIM':
      return a.replace(/ +$/, '') === b.replace(/ +$/, '');
  }
}

/** Text as NOCASE compares it: the 26 ASCII capitals folded to lower case, nothing else. */
export function foldAscii(text: string): string {
  return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
}
