/**
 * SQLite backend on better-sqlite3. Spec text never becomes SQL: table and column names are
 * checked against `^[A-Za-z_][A-Za-z0-9_]*$` and against the live schema, then quoted; every
 * value is a bound parameter. Pages are read by keyset on the primary key, so rows the run
 * updates (and that drop out of `where`) never shift the pages still to come.
 */
import { randomUUID } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { DatafixError, targetMismatch } from '../../errors.js';
import { conditionRefs } from '../../plan/conditions.js';
import { columnOfRef, columnReadBy, planRefs } from '../../plan/refs.js';
import type { FixPlan, SourcePlan, ValueTestOp } from '../../plan/types.js';
import { deepEqual, ExactNumber, exactNumberText, fromJsonSafe, toJsonSafe } from '../../plan/values.js';
import {
  type Adapter,
  type Item,
  type ListLookupRequest,
  LookupRejected,
  type LookupRequest,
  type ReadOptions,
  type SourcePage,
  type WriteOptions,
  type WriteRequest,
  type WriteResult,
} from '../types.js';
import { type BuiltInCollation, collationKey, columnCollation, isMissingCollation, probeColumn } from './collation.js';
import { compileWhere, quoteIdent, SQL_IDENT, valueTestSql } from './sql.js';
import { WriteThread } from './write-thread.js';

/** SQLITE_BUSY or SQLITE_LOCKED (with any extended code): another connection held the lock past the busy timeout. */
function isLockedError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** DF411: `path` stayed locked for `timeoutMs` ms; `next` says what was (not) done and starts the advice. */
function lockedError(path: string, timeoutMs: number, next: string): DatafixError {
  return new DatafixError(
    'connection',
    'DF411',
    `${path} is locked by another process and stayed locked for ${timeoutMs} ms; ${next} when it is free, or raise target.sqlite.busyTimeoutMs`,
  );
}

/**
 * The bytes of rows, as read, at which a source page ends before reaching its row count
 * (`ReadOptions.pageBytes` overrides it). 8 MiB keeps a page of ordinary rows whole (1000 rows of
 * 2 KB are 2 MB) and a page of 5 MiB rows at two rows: a live run over 5 MiB rows peaked at
 * 562 MiB with pages of 200 rows, 342 MiB with this bound at 32 MiB and 195 MiB at 8 MiB
 * (bench/, the `huge` shape, 100 rows).
 */
export const PAGE_BYTES = 8 * 2 ** 20;

/**
 * How much of the database file a read-only connection (a dry run, a plan's check, a fix test's
 * dry run) reads through memory-mapped I/O (`PRAGMA mmap_size`,
 * https://www.sqlite.org/pragma.html#pragma_mmap_size): SQLite then reads pages in place
 * instead of copying each through a read() system call, which on a light dry run of 100k rows
 * halved the time spent reading (bench/, docs/performance.md). Beyond it the file is read as
 * before. SQLite's own caveat (https://www.sqlite.org/mmap.html): an I/O error on a mapped page
 * (a failing disk, a network share cut off) ends the process with a signal instead of an error;
 * a read-only run has nothing half-written to lose. Pages read count in the process's resident
 * memory, as page cache the system can take back. Connections that write keep SQLite's default
 * (no mapping).
 */
export const READ_ONLY_MMAP_BYTES = 256 * 2 ** 20;

export interface SqliteAdapterOptions {
  /** Open read-only: a dry run cannot write even by mistake. */
  readonly readonly?: boolean;
  /**
   * Told after each batch's transaction how long its BEGIN IMMEDIATE waited for the write lock
   * (another connection held it) and how long the batch then held it, in ms.
   */
  readonly onTransaction?: (times: { readonly waitedMs: number; readonly heldMs: number }) => void;
}

interface TableInfo {
  readonly columns: Set<string>;
  /** Primary key columns in key order; empty when the table has none (rowid is used). */
  readonly primaryKey: string[];
  /** Generated columns: SQLite computes them, nothing writes them. */
  readonly generated: Set<string>;
  /** A column is named rowid, hiding SQLite's own rowid from queries. */
  readonly shadowsRowid: boolean;
  /** The primary key is the rowid itself (an INTEGER PRIMARY KEY): never NULL, no index of its own. */
  readonly rowidAlias: boolean;
  /** Columns declared NOT NULL. */
  readonly notNull: Set<string>;
  /** NOT NULL columns without a default: every INSERT must give them a value. */
  readonly insertNeeds: Set<string>;
  /** How the primary key's index compares each of its columns (upper case; may be an application's). */
  readonly primaryKeyCollations: string[];
  /** Column sets that identify one row: the primary key and every unique index SQLite's `=` honours. */
  readonly uniqueKeys: string[][];
  /** Why unique indexes that are not usable as keys are not (partial, another collation). */
  readonly notKeys: string[];
  /** Each column's type affinity, from its declared type. */
  readonly affinity: Map<string, Affinity>;
  /** Each column's collation, asked of SQLite when first needed. */
  readonly collations: Map<string, BuiltInCollation | Error>;
}

type Affinity = 'TEXT' | 'NUMERIC' | 'INTEGER' | 'REAL' | 'BLOB';

/** An update's prepared statement, or why its shape cannot be written. */
type UpdateStatement = { statement: Database.Statement } | { error: string };

/** How an update's WHERE guards a field: `n` IS NULL, `u` IS the before-image, `-` not at all. */
function guardKind(f: WriteRequest['fields'][number]): string {
  if (f.guard === 'absent' || (f.guard === 'unchanged' && (f.before === undefined || f.before === null))) return 'n';
  return f.guard === 'unchanged' ? 'u' : '-';
}

/**
 * A column's type affinity from its declared type, by SQLite's rules in order: INT → INTEGER;
 * CHAR, CLOB or TEXT → TEXT; BLOB or no type → BLOB; REAL, FLOA or DOUB → REAL; else NUMERIC.
 * https://www.sqlite.org/datatype3.html, 3.1 Determination Of Column Affinity.
 */
export function affinityOf(declared: string): Affinity {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'INTEGER';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'TEXT';
  if (t.includes('BLOB') || t === '') return 'BLOB'; // a quoted type of spaces is a type: NUMERIC
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'REAL';
  return 'NUMERIC';
}

/**
 * Text SQLite reads as a number when a column's affinity asks for one: a well-formed literal with
 * only ASCII spaces around it (SQLite's isspace, not Unicode's), read up to a NUL, where SQLite
 * stops reading text for a number.
 */
const NUMERIC_TEXT = /^[ \t\n\v\f\r]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\v\f\r]*$/;
const numericText = (text: string): boolean => NUMERIC_TEXT.test(text.split('\u0000')[0] as string);

type Target = Extract<FixPlan['target'], { backend: 'sqlite' }>;

/**
 * Where live runs keep their position, inside the target so that it commits in the same
 * transaction as the page's writes. Created on the first live run; one row per fix.
 */
export const CHECKPOINT_TABLE = '_datafix_checkpoints';
const CHECKPOINT_TABLE_SQL = `CREATE TABLE IF NOT EXISTS ${CHECKPOINT_TABLE} (id TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at TEXT NOT NULL)`;

export function createSqliteAdapter(target: Target, options: SqliteAdapterOptions = {}): Adapter {
  const readOnly = options.readonly ?? false;
  const db = openDatabase(target, readOnly);
  // A connection that only reads maps the file instead of copying each page through a read()
  // (see READ_ONLY_MMAP_BYTES); one that writes keeps SQLite's default.
  if (readOnly) db.pragma(`mmap_size = ${READ_ONLY_MMAP_BYTES}`);
  const onTransaction = options.onTransaction;
  const stats: Record<string, number> = {};
  const count = (op: string) => {
    stats[op] = (stats[op] ?? 0) + 1;
  };
  const tables = new Map<string, TableInfo>();
  /** Where writes go once `overlapWrites` said yes: a connection of their own, in a worker thread. */
  let thread: WriteThread | undefined;
  const normalize = (value: unknown) => fromSqlValue(toSqlValue(value));
  // Every record of a fix usually has the same update shape (table, key, fields, guards): its
  // SQL is assembled and checked once, not once per row.
  const updates = new Map<string, UpdateStatement>();
  /** The last shape asked for: consecutive records nearly always share it, and comparing costs less than a key. */
  let last: { table: string; keyCols: string[]; fields: { name: string; guard: string }[]; known: UpdateStatement } | undefined;
  const sameAsLast = (table: string, keyCols: string[], fields: WriteRequest['fields']): UpdateStatement | undefined => {
    if (!last || last.table !== table || last.keyCols.length !== keyCols.length || last.fields.length !== fields.length) return undefined;
    for (let i = 0; i < keyCols.length; i++) if (last.keyCols[i] !== keyCols[i]) return undefined;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as WriteRequest['fields'][number];
      const l = last.fields[i] as { name: string; guard: string };
      if (l.name !== f.name || l.guard !== guardKind(f)) return undefined;
    }
    return last.known;
  };
  const updateFor = (table: string, keyCols: string[], fields: WriteRequest['fields']): UpdateStatement => {
    const same = sameAsLast(table, keyCols, fields);
    if (same) return same;
    let shape = `${table}\u0000${keyCols.join('\u0000')}`;
    for (const f of fields) shape += `\u0000${f.name}\u0001${guardKind(f)}`;
    let known = updates.get(shape);
    if (!known) {
      const bad = [table, ...keyCols, ...fields.map((f) => f.name)].find((c) => !SQL_IDENT.test(c));
      if (bad !== undefined) known = { error: `bad name ${JSON.stringify(bad)}` };
      else {
        const guards: string[] = [];
        for (const f of fields) {
          if (f.guard === 'absent' || (f.guard === 'unchanged' && (f.before === undefined || f.before === null)))
            guards.push(`${quoteIdent(f.name)} IS NULL`);
          // BINARY: a value changed since the read only in case (NOCASE) or trailing spaces
          // (RTRIM) is still a change, and is kept.
          else if (f.guard === 'unchanged') guards.push(`${quoteIdent(f.name)} IS ? COLLATE BINARY`);
        }
        const sql =
          // OR ABORT overrides a table's own ON CONFLICT REPLACE/ROLLBACK: a write that breaks a
          // constraint fails alone, never deleting another row nor undoing the batch.
          `UPDATE OR ABORT ${quoteIdent(table)} SET ${fields.map((f) => `${quoteIdent(f.name)} = ?`).join(', ')}` +
          ` WHERE ${[...keyCols.map((k) => `${quoteIdent(k)} = ?`), ...guards].join(' AND ')}`;
        try {
          known = { statement: db.prepare(sql) };
        } catch (err) {
          if (isLockedError(err)) throw err;
          // check() prepared the whole update; a shape it did not cover fails its records alone.
          known = { error: (err as Error).message };
        }
      }
      updates.set(shape, known);
    }
    last = { table, keyCols: [...keyCols], fields: fields.map((f) => ({ name: f.name, guard: guardKind(f) })), known };
    return known;
  };
  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let st = statements.get(sql);
    if (!st) {
      st = db.prepare(sql);
      // Integers beyond 2^53 must come back exact; ordinary ones are turned back into numbers.
      if (st.reader) st.safeIntegers(true);
      statements.set(sql, st);
    }
    return st;
  };

  /**
   * A read-only connection's mapping (READ_ONLY_MMAP_BYTES), and the file's size when last seen.
   * SQLite maps the file up to its size at a transaction's start and learns of changes other
   * SQLite connections make; a file cut shorter by anything else (a copy over it, a truncate)
   * leaves mapped pages without bytes behind them, and reading one ends the process with SIGBUS
   * (https://www.sqlite.org/mmap.html). Before each page the file's size is looked at: once it
   * shrank, the mapping is dropped, and SQLite's reads say what they find (DF421). Every read
   * goes through `wrapBusy`, which looks first.
   */
  let mapped = readOnly;
  let lastSize = readOnly ? fileSize(target.path) : 0;
  const unmapIfShrunk = (): void => {
    if (!mapped) return;
    const size = fileSize(target.path);
    if (size < lastSize) {
      db.pragma('mmap_size = 0');
      mapped = false;
    }
    lastSize = size;
  };

  const rowStatements = new Map<string, Database.Statement>();
  /**
   * A source page's SELECT, reading rows as arrays (`raw`): datafix builds each row's object
   * itself (`rowOf`), which costs less per row than better-sqlite3's own objects.
   */
  const prepareRows = (sql: string): Database.Statement => {
    let statement = rowStatements.get(sql);
    if (!statement) {
      statement = db.prepare(sql).safeIntegers(true).raw(true);
      rowStatements.set(sql, statement);
    }
    return statement;
  };

  const wrapBusy = <T>(fn: () => T): T => {
    unmapIfShrunk();
    try {
      return fn();
    } catch (err) {
      if (isLockedError(err)) {
        // A connection that only reads (a dry run, a plan) has no batch to speak of. A writer that
        // commits without pause can keep a reader of a database in rollback-journal mode waiting;
        // in WAL mode readers never wait for writers (https://www.sqlite.org/wal.html).
        const next = readOnly
          ? 'this run only reads, so nothing was written. A process committing without pause can keep readers out of a database in rollback-journal mode (WAL mode lets them read meanwhile). Retry'
          : 'nothing of the current batch was written. Retry';
        throw lockedError(target.path, target.busyTimeoutMs, next);
      }
      throw err;
    }
  };

  const tableInfo = (table: string): TableInfo | undefined => {
    const known = tables.get(table);
    if (known) return known;
    if (!SQL_IDENT.test(table)) return undefined;
    // Reading the schema takes the same locks as reading rows: a locked database must end in
    // DF411 here too, not in a raw driver error.
    return wrapBusy(() => {
      const listing = db.prepare("SELECT wr, strict FROM pragma_table_list WHERE name = ? AND type = 'table'").get(table) as
        | { wr: number; strict: number }
        | undefined;
      if (!listing) return undefined;
      // table_xinfo, not table_info: generated columns are columns a spec may read and key by
      // (hidden 2 and 3); hidden 1 is a virtual table's hidden column.
      const cols = db
        .prepare(
          'SELECT name, pk, type, "notnull" AS nn, dflt_value IS NOT NULL AS dflt, hidden FROM pragma_table_xinfo(?) WHERE hidden <> 1',
        )
        .all(table) as {
        name: string;
        pk: number;
        type: string;
        nn: number;
        dflt: number;
        hidden: number;
      }[];
      const primaryKey = cols
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name);
      // A key names one row only where SQLite compares it as the unique index does: an index
      // that is partial, or that compares a column by another collation than the column's own
      // (a BINARY key over a NOCASE column), lets `key = ?` match several rows. Such an index
      // is remembered only to say why a key is refused.
      const uniqueKeys: string[][] = [];
      const notKeys: string[] = [];
      let primaryKeyCollations: string[] | undefined;
      const indexes = db.prepare('SELECT name, "unique" AS u, origin, partial FROM pragma_index_list(?)').all(table) as {
        name: string;
        u: number;
        origin: string;
        partial: number;
      }[];
      for (const idx of indexes.filter((i) => i.u)) {
        const idxCols = db.prepare('SELECT name, coll FROM pragma_index_xinfo(?) WHERE key = 1 ORDER BY seqno').all(idx.name) as {
          name: string | null;
          coll: string;
        }[];
        if (idxCols.some((c) => c.name === null)) continue; // an expression index names no columns
        const names = idxCols.map((c) => c.name as string);
        if (idx.origin === 'pk') primaryKeyCollations = idxCols.map((c) => c.coll.toUpperCase());
        // Keys unique by any collation are distinct bytes, so a BINARY column's `=` still finds one
        // row; a NOCASE or RTRIM column's `=` is coarser than a BINARY or other index.
        const otherCollation = idxCols.find((c) => {
          const own = columnCollation(db, table, c.name as string);
          return own !== 'BINARY' && own !== c.coll.toUpperCase();
        });
        if (idx.partial) notKeys.push(`(${names.join(', ')}) is unique only where its index \`${idx.name}\`'s WHERE holds`);
        else if (otherCollation) {
          notKeys.push(
            `(${names.join(', ')}) is unique by collation ${otherCollation.coll.toUpperCase()}, but \`${otherCollation.name}\` compares by its own`,
          );
        } else if (idx.origin === 'pk') uniqueKeys.unshift(names);
        else uniqueKeys.push(names);
      }
      // An INTEGER PRIMARY KEY is the rowid itself: unique, with no index of its own.
      if (primaryKey.length && primaryKeyCollations === undefined) {
        uniqueKeys.unshift(primaryKey);
        primaryKeyCollations = primaryKey.map(() => 'BINARY');
      }
      // A table without a primary key is addressed by its rowid, unless a column of that name in any case hides it.
      const names = cols.map((c) => c.name);
      if (!listing.wr && primaryKey.length === 0 && !names.some((n) => n.toLowerCase() === 'rowid')) {
        names.push('rowid');
        uniqueKeys.push(['rowid']);
      }
      // In a STRICT table an ANY column keeps every value as given (no affinity).
      const affinity = new Map(
        cols.map((c) => [c.name, listing.strict && (c.type ?? '').toUpperCase() === 'ANY' ? ('BLOB' as const) : affinityOf(c.type ?? '')]),
      );
      // The pragma gives no type ('') also for a quoted empty one (`c ""`), which is a type to
      // SQLite: NUMERIC. Asked of SQLite, which takes the text '12' as equal to 12 only then.
      for (const c of cols) {
        if ((c.type ?? '') !== '' || listing.strict) continue;
        try {
          if (probeColumn(db, table, c.name, '12', "v = '12' AS numeric").numeric) affinity.set(c.name, 'NUMERIC');
        } catch (err) {
          // A table with a column of an application's collation cannot be probed by position.
          if (!isMissingCollation(err)) throw err;
        }
      }
      const info: TableInfo = {
        columns: new Set(names),
        primaryKey,
        shadowsRowid: cols.some((c) => c.name.toLowerCase() === 'rowid'),
        generated: new Set(cols.filter((c) => c.hidden === 2 || c.hidden === 3).map((c) => c.name)),
        rowidAlias: primaryKey.length > 0 && !indexes.some((i) => i.origin === 'pk'),
        notNull: new Set(cols.filter((c) => c.nn).map((c) => c.name)),
        // NOT NULL without a default: an INSERT must give it (a generated column computes it).
        insertNeeds: new Set(cols.filter((c) => c.nn && !c.dflt && c.hidden === 0).map((c) => c.name)),
        primaryKeyCollations: primaryKeyCollations ?? [],
        uniqueKeys,
        notKeys,
        affinity,
        collations: new Map(),
      };
      tables.set(table, info);
      return info;
    });
  };

  // `at` is where the checked value sits in the spec, so the error can point at its line.
  const requireTable = (table: string, at: readonly string[]): TableInfo => {
    const info = tableInfo(table);
    if (!info) {
      throw targetMismatch(
        'DF401',
        `${at.length ? `${at.join('.')}: ` : ''}table \`${table}\` does not exist in ${target.path}; check the name against the database's tables`,
        at,
      );
    }
    return info;
  };
  const requireColumns = (info: TableInfo, table: string, columns: Iterable<string>, at: readonly string[]): void => {
    const missing = [...columns].filter((c) => !info.columns.has(c));
    if (missing.length) {
      throw targetMismatch(
        'DF405',
        `${at.join('.')}: table \`${table}\` has no column ${missing.map((m) => `\`${m}\``).join(', ')}; it has ${[...info.columns].join(', ')}`,
        // Under update.set/touch each column is a key of its own: point at the first missing one.
        ['update', 'delete', 'create'].includes(at[0] as string) && at[1] !== 'key' ? [...at, missing[0] as string] : at,
      );
    }
  };
  const requireUnique = (info: TableInfo, table: string, columns: string[], at: readonly string[]): void => {
    const wanted = [...columns].sort().join(',');
    if (!info.uniqueKeys.some((k) => [...k].sort().join(',') === wanted)) {
      throw targetMismatch(
        'DF403',
        `${at.join('.')}: (${columns.join(', ')}) is not the primary key or a unique index of \`${table}\`, so it could match several rows${info.notKeys.length ? ` (${info.notKeys.join('; ')})` : ''}; key by ${info.uniqueKeys.length ? info.uniqueKeys.map((k) => `(${k.join(', ')})`).join(' or ') : 'a unique column'}`,
        at,
      );
    }
  };

  /**
   * DF205 when a primary key column of `table` has a name that is not a plain identifier: datafix
   * `does` something in key order, which names the key in SQL, and it names only plain identifiers.
   */
  const requirePlainKey = (info: TableInfo, table: string, at: readonly string[], does: string): void => {
    const odd = info.primaryKey.find((k) => !SQL_IDENT.test(k));
    if (odd === undefined) return;
    throw targetMismatch(
      'DF205',
      `${at.join('.')}: the primary key column \`${odd}\` of \`${table}\` is not a plain identifier; datafix ${does} and names only plain identifiers in SQL. Rename the column`,
      at,
    );
  };

  /**
   * `update.remove` sets a column NULL, SQLite's only "absent": refused where the column does not
   * exist (DF405), cannot hold NULL (NOT NULL: DF262), or is the primary key (DF263; NULL into an
   * INTEGER PRIMARY KEY would give the row a new rowid, not remove a value).
   */
  const checkRemovable = (info: TableInfo, table: string, columns: readonly string[]): void => {
    columns.forEach((c, i) => {
      const at = ['update', 'remove', i];
      if (!info.columns.has(c)) {
        throw targetMismatch(
          'DF405',
          `update.remove: table \`${table}\` has no column \`${c}\`; it has ${[...info.columns].join(', ')}`,
          at,
        );
      }
      if (info.primaryKey.includes(c)) {
        throw targetMismatch(
          'DF263',
          `update.remove: \`${c}\` is part of the primary key of \`${table}\`; a key column cannot be removed. To remove the row, write a fix with \`delete\``,
          at,
        );
      }
      if (info.notNull.has(c)) {
        throw targetMismatch(
          'DF262',
          `update.remove: \`${c}\` of \`${table}\` is NOT NULL; on SQLite, remove writes NULL, which this column cannot hold. Write a value with update.set (overwrite) instead`,
          at,
        );
      }
    });
  };
  /**
   * A delete must change only the row it deletes: a foreign key whose ON DELETE action changes
   * other rows (CASCADE, SET NULL, SET DEFAULT) would change rows datafix neither shows, journals
   * nor undoes (DF264). RESTRICT / NO ACTION make the delete of such a row fail, which is safe.
   */
  const checkDeleteCascades = (table: string): void => {
    if (!db.pragma('foreign_keys', { simple: true })) return;
    const hit = wrapBusy(
      () =>
        db
          .prepare(
            "SELECT m.name AS child, f.\"from\" AS fromCol, f.on_delete AS action FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND f.\"table\" = ? AND f.on_delete IN ('CASCADE', 'SET NULL', 'SET DEFAULT') LIMIT 1",
          )
          .get(table) as { child: string; fromCol: string; action: string } | undefined,
    );
    if (hit) {
      throw targetMismatch(
        'DF264',
        `delete: \`${hit.child}\`.\`${hit.fromCol}\` references \`${table}\` ON DELETE ${hit.action}, so deleting a row would also change rows of \`${hit.child}\`, which datafix neither shows, journals nor undoes. Delete (or fix) those rows with their own fix first, or change the foreign key`,
        ['delete'],
      );
    }
  };

  /** A column's collation, or an Error when SQLite cannot compare it (an application's collation). */
  const collationOf = (table: string, column: string): BuiltInCollation | Error => {
    const info = tableInfo(table);
    if (!info?.columns.has(column)) return 'BINARY'; // a missing column is refused by its own check
    let coll = info.collations.get(column);
    if (coll === undefined) {
      coll = wrapBusy(() => columnCollation(db, table, column));
      info.collations.set(column, coll);
    }
    return coll;
  };

  /**
   * `value` as SQLite converts it for column `field` of `table` by the column's type affinity
   * (https://www.sqlite.org/datatype3.html, 3 and 4.2), asking SQLite itself (the same routine as
   * a CAST). To store: a number into a TEXT column becomes its text, numeric text into a
   * NUMERIC, INTEGER or REAL column a number (REAL: a REAL). To compare (`col = value`): the same,
   * except that a REAL column takes numeric text as NUMERIC (so '9007199254740993' stays that
   * integer) and numbers are left as they are (SQLite compares numbers by value).
   */
  const converted = (table: string | undefined, field: string, value: unknown, purpose: 'store' | 'compare'): unknown => {
    if (value === undefined || value === null || value instanceof Uint8Array || table === undefined) return value;
    const affinity = tableInfo(table)?.affinity.get(field);
    if (!affinity || affinity === 'BLOB') return value;
    const isNumber =
      typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || exactNumberText(value) !== undefined;
    // Whether text looks like a number matters only where the column can make it one.
    const numeric = affinity !== 'TEXT' && typeof value === 'string' && numericText(value);
    let sql: string | undefined;
    if (affinity === 'TEXT' && isNumber) sql = 'SELECT CAST(? AS TEXT) AS v';
    else if (affinity === 'REAL' && purpose === 'store' && (isNumber || numeric)) sql = 'SELECT CAST(? AS REAL) AS v';
    else if (affinity !== 'TEXT' && (numeric || (isNumber && purpose === 'store'))) sql = 'SELECT CAST(? AS NUMERIC) AS v';
    if (!sql) return value;
    const exact = exactNumberText(value);
    if (exact !== undefined && !sqliteHoldsExactly(exact)) return value; // fails in the write with value_not_exact
    const got = (prepare(sql).get(toSqlValue(value)) as { v: unknown }).v;
    if (purpose === 'store' && typeof got === 'number' && Number.isInteger(got)) {
      // A NUMERIC or INTEGER column stores a whole REAL as an INTEGER wherever one holds it, while
      // CAST keeps it REAL from 2^51 up (SQLite's sqlite3VdbeIntegerAffinity and sqlite3RealSameAsInt).
      if ((affinity === 'NUMERIC' || affinity === 'INTEGER') && got > -(2 ** 63) && got < 2 ** 63) return fromSqlValue(BigInt(got));
      // A REAL column keeps a whole REAL as an integer on disk, so -0.0 reads back as 0.0.
      if (affinity === 'REAL' && Object.is(got, -0)) return fromReal(0);
    }
    return fromStored(got);
  };

  /** A column's built-in collation; check() refused comparing one SQLite cannot apply. */
  const knownCollation = (table: string, column: string): BuiltInCollation => {
    const coll = collationOf(table, column);
    return coll instanceof Error ? 'BINARY' : coll;
  };

  const requireKnownCollation = (table: string, column: string, at: readonly (string | number)[]): void => {
    const coll = collationOf(table, column);
    if (!(coll instanceof Error)) return;
    throw targetMismatch(
      'DF413',
      `${at.join('.')}: SQLite cannot compare column \`${column}\` of \`${table}\` here (${coll.message}): its collation is the application's own, and datafix knows only SQLite's (BINARY, NOCASE, RTRIM)`,
      at,
    );
  };

  /** Per source table, the columns the checked plan reads (undefined: all of them). */
  const sourceColumns = new Map<string, string[] | undefined>();

  /**
   * The source's paged SELECT: the first page, a page after a cursor (the last key read), and the
   * count of what remains after a cursor, all with the source's `where`.
   */
  const sourceQuery = (source: SourcePlan) => {
    if (source.kind !== 'table') throw new DatafixError('config', 'DF205', 'a SQLite target reads with source.table');
    const info = requireTable(source.table, ['source', 'table']);
    const keyCols = info.primaryKey.length ? info.primaryKey : ['rowid'];
    const usesRowid = info.primaryKey.length === 0;
    const compiled = source.where ? compileWhere(source.where, (c) => knownCollation(source.table, c)) : undefined;
    // Bound as every other value is (200 as the INTEGER 200, not the REAL 200.0, which a TEXT
    // column would compare as '200.0'), so `where` and a skip rule agree on the same data.
    const where = compiled ? { sql: compiled.sql, params: compiled.params.map(toSqlValue) } : undefined;
    // In the column's own collation where the key's index has it too (SQLite then seeks with
    // the index); else BINARY, in which keys unique by any collation are still distinct (a
    // BINARY key over a NOCASE column holds 'a' and 'A', which NOCASE would take as one).
    const keyList = keyCols
      .map((k, i) =>
        (info.primaryKeyCollations[i] ?? 'BINARY') === collationOf(source.table, k) ? quoteIdent(k) : `${quoteIdent(k)} COLLATE BINARY`,
      )
      .join(', ');
    const columns = sourceColumns.get(source.table);
    const list = columns ? columns.map(quoteIdent).join(', ') : '*';
    const from = ` FROM ${quoteIdent(source.table)}`;
    const select = `SELECT ${usesRowid ? 'rowid AS "rowid", ' : ''}${list}${from}`;
    const order = ` ORDER BY ${keyList} LIMIT ?`;
    const whereFirst = where ? ` WHERE (${where.sql})` : '';
    const whereAfter = ` WHERE ${where ? `(${where.sql}) AND ` : ''}(${keyList}) > (${keyCols.map(() => '?').join(', ')})`;
    return {
      keyCols,
      where,
      firstSql: `${select}${whereFirst}${order}`,
      afterSql: `${select}${whereAfter}${order}`,
      countFirstSql: `SELECT count(*) AS n${from}${whereFirst}`,
      countAfterSql: `SELECT count(*) AS n${from}${whereAfter}`,
    };
  };

  /** See Adapter.keyIdentity. */
  function keyIdentity(table: string | undefined, field: string, value: unknown): unknown {
    const v = normalize(converted(table, field, value, 'compare'));
    const n = numberIdentity(v);
    if (n !== undefined) return { n };
    if (typeof v === 'string' && table !== undefined) {
      // As `key = ?` compares (the column's collation; check() admits only keys it keeps unique).
      const coll = collationOf(table, field);
      return { s: collationKey(coll instanceof Error ? 'BINARY' : coll, v) };
    }
    return toJsonSafe(v);
  }

  return {
    backend: 'sqlite',
    // better-sqlite3 reads synchronously: reading ahead would only evict the page being written.
    readsAhead: false,

    async check(plan: FixPlan): Promise<void> {
      const src = plan.source;
      // Where in the spec the write is: update, delete or create.
      const section = plan.update.action ?? 'update';
      const removed = plan.update.remove ?? [];
      /** Where the update writes `field`, for a refusal's message and location: set, touch or remove. */
      const writtenAt = (field: string): (string | number)[] =>
        plan.update.set.some((f) => f.field === field)
          ? [section, 'set', field]
          : plan.update.touch.some((f) => f.field === field)
            ? [section, 'touch', field]
            : [section, 'remove', removed.indexOf(field)];
      if (src.kind !== 'table') {
        throw new DatafixError('config', 'DF205', 'a SQLite target reads with source.table');
      }
      const info = requireTable(src.table, ['source', 'table']);
      requirePlainKey(info, src.table, ['source', 'table'], 'reads a table in the order of its primary key');
      sourceColumns.set(src.table, referencedColumns(plan, info));
      if (src.where)
        requireColumns(
          info,
          src.table,
          conditionRefs(src.where).map((r) => r.root),
          ['source', 'where'],
        );
      for (const l of plan.lookups) {
        const table = l.table ?? '';
        const li = requireTable(table, ['lookups', l.name, 'table']);
        if (l.kind === 'list') {
          // Any columns may select several rows; they need only exist.
          const cols = [...l.match.map(([k]) => k), ...(l.where ? conditionRefs(l.where).map((r) => r.root) : [])];
          requireColumns(li, table, cols, ['lookups', l.name, 'where']);
          requirePlainKey(
            li,
            table,
            ['lookups', l.name, 'table'],
            'returns the rows of a lookup of several rows in the order of its primary key',
          );
          continue;
        }
        const cols = l.key.map(([k]) => k);
        requireColumns(li, table, cols, ['lookups', l.name, 'get']);
        requireUnique(li, table, cols, ['lookups', l.name, 'get']);
      }
      // A reference to a column the table lacks is a typo, not a missing value: SQLite tables
      // have a fixed set of columns (DynamoDB items do not, so there it is simply missing).
      for (const { ref, at } of planRefs(plan)) {
        const column = columnReadBy(plan, ref);
        if (!column) continue;
        const [t, c] = column;
        const ti = tableInfo(t);
        if (ti && !ti.columns.has(c)) {
          throw targetMismatch(
            'DF405',
            `${at.join('.')}: \`${ref.text}\` reads column \`${c}\`, which table \`${t}\` does not have; it has ${[...ti.columns].join(', ')}`,
            at,
          );
        }
      }
      // Every column compared by its own collation: by SQLite (where, keyset paging, lookup and
      // update keys) or by datafix (skip rules). Both need one of SQLite's own collations.
      const compared: (readonly [table: string, column: string, at: readonly (string | number)[]])[] = [
        ...(src.where ? conditionRefs(src.where, true) : []).map((r) => [src.table, r.root, ['source', 'where']] as const),
        ...info.primaryKey.map((k) => [src.table, k, ['source', 'table']] as const),
        ...plan.lookups.flatMap((l) => {
          const at = ['lookups', l.name, l.kind === 'list' ? 'where' : 'get'];
          const cols =
            l.kind === 'list'
              ? // Numbering each key's rows (at most max + 1 read) makes SQLite hold every column of
                // the table with its collation, compared or not: the matched ones and the rest.
                [...(tableInfo(l.table ?? '')?.columns ?? [])]
              : l.key.map(([k]) => k);
          return cols.map((k) => [l.table ?? '', k, at] as const);
        }),
        ...plan.update.key.map(([k]) => [plan.update.table ?? src.table, k, [section, 'key']] as const),
        ...(['skip', 'fail'] as const).flatMap((rules) =>
          (plan[rules] ?? []).flatMap((rule, i) =>
            conditionRefs(rule.when, true).flatMap((ref) => {
              const column = columnOfRef(plan, ref);
              return column ? [[column[0], column[1], [rules, i, 'when']] as const] : [];
            }),
          ),
        ),
      ];
      for (const [table, column, at] of compared) requireKnownCollation(table, column, at);
      // Paging is by the primary key (or the rowid): a run that rewrote it would meet rows again
      // after the cursor, without end; a column named rowid would hide the rowid itself.
      if (info.primaryKey.length === 0 && info.shadowsRowid) {
        throw targetMismatch(
          'DF419',
          `source.table: \`${src.table}\` has no primary key and a column named rowid, which hides SQLite's rowid; datafix reads a table in primary key (or rowid) order and cannot page this one. Give the table a primary key, or rename the column`,
          ['source', 'table'],
        );
      }
      if ((plan.update.table ?? src.table) === src.table) {
        const pagingKey = info.primaryKey.length ? info.primaryKey : ['rowid'];
        const rewritten = [...plan.update.set.map((f) => f.field), ...plan.update.touch.map((f) => f.field)].find((f) =>
          pagingKey.includes(f),
        );
        if (rewritten !== undefined && plan.update.action !== 'create') {
          throw targetMismatch(
            'DF419',
            `${writtenAt(rewritten).join('.')}: \`${rewritten}\` is the primary key datafix reads \`${src.table}\` in order of; rewriting it would move rows past the cursor to be read and rewritten again, without end. Write the new value to another column (and swap the columns in a later step), or change the key outside datafix`,
            writtenAt(rewritten),
          );
        }
      }
      // SQLite lets a rowid table's PRIMARY KEY column hold NULL (unless NOT NULL); keyset paging
      // cannot go past such a row, so a source that selects one is refused before reading.
      if (info.primaryKey.length && !info.rowidAlias) {
        const nullable = info.primaryKey.filter((k) => !info.notNull.has(k));
        if (nullable.length) {
          const cond = nullable.map((k) => `${quoteIdent(k)} IS NULL`).join(' OR ');
          const where = src.where ? compileWhere(src.where, (c) => knownCollation(src.table, c)) : undefined;
          const hit = wrapBusy(() =>
            db
              .prepare(`SELECT 1 FROM ${quoteIdent(src.table)} WHERE ${where ? `(${where.sql}) AND ` : ''}(${cond}) LIMIT 1`)
              .get(...(where?.params ?? []).map(toSqlValue)),
          );
          if (hit) throw nullKeyError(src.table, nullable, ['source', 'table']);
        }
      }
      const table = plan.update.table ?? src.table;
      const ui = requireTable(table, plan.update.table === undefined ? ['source', 'table'] : [section, 'table']);
      const keyCols = plan.update.key.map(([k]) => k);
      requireColumns(ui, table, keyCols, [section, 'key']);
      requireUnique(ui, table, keyCols, [section, 'key']);
      requireColumns(
        ui,
        table,
        plan.update.set.map((f) => f.field),
        [section, 'set'],
      );
      checkRemovable(ui, table, removed);
      requireColumns(
        ui,
        table,
        plan.update.touch.map((f) => f.field),
        ['update', 'touch'],
      );
      for (const [part, fields] of [
        ['set', plan.update.set.map((f) => f.field)],
        ['touch', plan.update.touch.map((f) => f.field)],
        ['remove', removed],
        ...(plan.update.action === 'create' ? [['key', keyCols] as const] : []),
      ] as const) {
        const gen = fields.findIndex((f) => ui.generated.has(f));
        if (gen >= 0) {
          const name = fields[gen] as string;
          throw targetMismatch(
            'DF405',
            `${section}.${part}.${name}: \`${name}\` of \`${table}\` is a generated column; SQLite computes it from other columns, so it cannot be written. Write the columns it is computed from`,
            [section, part, part === 'remove' ? gen : name],
          );
        }
      }
      if (plan.update.action === 'delete') {
        checkDeleteCascades(table);
        // A row is held as a JavaScript object, in which `__proto__` cannot be an ordinary key:
        // the delete's before-image, its guard and its undo would all go without that column.
        if (ui.columns.has('__proto__')) {
          throw targetMismatch(
            'DF422',
            `delete: \`${table}\` has a column named \`__proto__\`, which datafix cannot hold in a row, so a delete could neither guard on it nor journal it for undo. Rename the column, or delete these rows another way`,
            ['delete'],
          );
        }
      }
      if (plan.update.action === 'create') {
        // Every created row would fail on a NOT NULL column without a default that `create` never writes.
        const given = new Set([...keyCols, ...plan.update.set.map((f) => f.field)]);
        const needed = [...ui.insertNeeds].filter((c) => !given.has(c) && !(ui.rowidAlias && ui.primaryKey.includes(c)));
        if (needed.length > 0) {
          throw targetMismatch(
            'DF265',
            `create: \`${table}\` has NOT NULL column${needed.length > 1 ? 's' : ''} ${needed.map((c) => `\`${c}\``).join(', ')} without a default, which create.set does not write; every row would fail. Add ${needed.length > 1 ? 'them' : 'it'} to create.set`,
            ['create', 'set'],
          );
        }
      }
      // A foreign key whose ON UPDATE action changes other rows (CASCADE, SET NULL, SET DEFAULT)
      // would change rows datafix neither shows, journals nor undoes (this connection enforces
      // foreign keys, as better-sqlite3 does by default).
      // An INSERT fires no ON UPDATE action: a create writes nothing else.
      if (plan.update.action !== 'create' && db.pragma('foreign_keys', { simple: true })) {
        const written = new Set([...plan.update.set.map((f) => f.field), ...plan.update.touch.map((f) => f.field), ...removed]);
        const refs = wrapBusy(
          () =>
            db
              .prepare(
                "SELECT m.name AS child, f.\"from\" AS fromCol, f.\"to\" AS toCol, f.on_update AS action FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND f.\"table\" = ? AND f.on_update IN ('CASCADE', 'SET NULL', 'SET DEFAULT')",
              )
              .all(table) as { child: string; fromCol: string; toCol: string | null; action: string }[],
        );
        const hit = refs.find((r) => written.has(r.toCol ?? ui.primaryKey[0] ?? ''));
        if (hit) {
          const field = hit.toCol ?? (ui.primaryKey[0] as string);
          throw targetMismatch(
            'DF420',
            `${writtenAt(field).join('.')}: \`${hit.child}\`.\`${hit.fromCol}\` references \`${table}\`.\`${field}\` ON UPDATE ${hit.action}, so writing it would also change rows of \`${hit.child}\`, which datafix neither shows, journals nor undoes. Change those rows with their own fix, or write another column`,
            writtenAt(field),
          );
        }
      }
      // SQLite builds an UPDATE's indexes, triggers and CHECKs into the statement: one that needs
      // an application's collation or function fails here, before any row is read, not mid-run.
      const fields = [...plan.update.set.map((f) => f.field), ...plan.update.touch.map((f) => f.field), ...removed];
      const where = keyCols.map((k) => `${quoteIdent(k)} = ?`).join(' AND ');
      const statement =
        plan.update.action === 'delete'
          ? `DELETE FROM ${quoteIdent(table)} WHERE ${where}`
          : plan.update.action === 'create'
            ? `INSERT INTO ${quoteIdent(table)} (${[...keyCols, ...fields].map(quoteIdent).join(', ')}) VALUES (${[...keyCols, ...fields].map(() => '?').join(', ')})`
            : `UPDATE ${quoteIdent(table)} SET ${fields.map((f) => `${quoteIdent(f)} = ?`).join(', ')} WHERE ${where}`;
      try {
        wrapBusy(() => db.prepare(statement));
      } catch (err) {
        if (err instanceof DatafixError) throw err;
        throw targetMismatch(
          'DF417',
          `${section}: SQLite cannot prepare the ${section} of \`${table}\` (${(err as Error).message}): an index, trigger or CHECK of the table needs something only the application defines, so datafix cannot write this table`,
          plan.update.action === 'delete' ? ['delete'] : [section, 'set'],
        );
      }
    },

    async *readPages(source: SourcePlan, options: ReadOptions): AsyncGenerator<SourcePage> {
      const { keyCols, where, firstSql, afterSql } = sourceQuery(source);
      const table = source.kind === 'table' ? source.table : '';
      // The cursor leaves the adapter JSON-safe (checkpoints and state files are JSON): a key
      // beyond 2^53 or a whole REAL keeps its exact value and type through a resume.
      let cursor = Array.isArray(options.cursor) ? (fromJsonSafe(options.cursor) as unknown[]) : undefined;
      // A page ends at pageSize rows or once its rows hold pageBytes, whichever comes first (at
      // least one row), so a table of very large rows cannot multiply memory by the page size.
      const pageBytes = options.pageBytes ?? PAGE_BYTES;
      for (;;) {
        if (options.signal?.aborted) return;
        const sql = cursor ? afterSql : firstSql;
        const params = [...(where?.params ?? []), ...(cursor ?? []).map(toSqlValue), options.pageSize];
        const records: { key: Item; item: Item }[] = [];
        let bytes = 0;
        try {
          wrapBusy(() => {
            const statement = prepareRows(sql);
            const rows: unknown[][] = [];
            for (const values of statement.iterate(...params) as IterableIterator<unknown[]>) {
              rows.push(values);
              for (const v of values) bytes += valueBytes(v);
              if (bytes >= pageBytes) break;
            }
            // The names as of this page's rows: another connection's schema change (a column
            // dropped or renamed) makes SQLite prepare the statement again as it steps, and a
            // `*` then gives other columns than the page before.
            const names = statement.columns().map((c) => c.name);
            for (const values of rows) {
              const item: Item = {};
              rowOf(names, values, item);
              const key: Item = {};
              for (const k of keyCols) key[k] = item[k];
              records.push({ key, item });
            }
          });
        } catch (err) {
          // A locked database is DF411 already; anything else is a row SQLite cannot read (a
          // generated column it cannot compute for it): the run stops here, said in its terms.
          if (err instanceof DatafixError) throw err;
          throw targetMismatch(
            'DF421',
            `source.table: SQLite cannot read the next rows of \`${table}\` (${(err as Error).message}); a generated column it cannot compute for a row is the usual cause. Rows before were handled; fix that row (or read only the columns the fix needs), then --resume continues from the last checkpoint`,
            ['source', 'table'],
          );
        }
        count('select');
        if (records.length === 0) return;
        const lastRecord = records[records.length - 1] as { key: Item };
        cursor = keyCols.map((k) => lastRecord.key[k]);
        const done = records.length < options.pageSize && bytes < pageBytes;
        // NULL compares as unknown: a keyset after it would silently end the read here.
        if (!done && cursor.some((v) => v === null || v === undefined)) throw nullKeyError(table, keyCols);
        // Text read back with U+FFFD was not valid in the database's encoding: bound again it is
        // other bytes than the row holds, and the keyset would not move past that row.
        if (!done && cursor.some((v) => typeof v === 'string' && v.includes('\uFFFD'))) {
          throw new DatafixError(
            'config',
            'DF419',
            `\`${table}\`: a primary key (${keyCols.join(', ')}) holds text that is not valid in the database's encoding; datafix reads in key order and cannot page past it. Fix that key first; rows before it were handled, and --resume continues from the last checkpoint`,
          );
        }
        yield { records, cursor: done ? undefined : toJsonSafe(cursor) };
        if (done) return;
      }
    },

    async count(source: SourcePlan, options: { cursor?: unknown }) {
      // A null cursor is the position after the last page: nothing is left.
      if (options.cursor === null) return { records: 0, estimate: false };
      const { where, countFirstSql, countAfterSql } = sourceQuery(source);
      const cursor = Array.isArray(options.cursor) ? (fromJsonSafe(options.cursor) as unknown[]) : undefined;
      const params = [...(where?.params ?? []), ...(cursor ?? []).map(toSqlValue)];
      // One pass over the table (or its index), far quicker than reading the records themselves.
      const row = wrapBusy(() => prepare(cursor ? countAfterSql : countFirstSql).get(...params)) as { n: number | bigint };
      count('count');
      // Integers come back as bigint (exact values); a row count fits a number.
      return { records: Number(row.n), estimate: false };
    },

    async lookup(requests: readonly LookupRequest[]): Promise<(Item | undefined | LookupRejected)[]> {
      const cache = new Map<string, Item | undefined>();
      return requests.map((r) => {
        const table = r.table ?? '';
        const cols = Object.keys(r.key);
        // One record's key that SQLite cannot compare with a column fails that record alone.
        const bad = cols.find((c) => lookupKeyProblem(r.key[c]) !== undefined);
        if (bad !== undefined) return new LookupRejected('key_invalid', `key column \`${bad}\`: ${lookupKeyProblem(r.key[bad])}`);
        // Keys that bind alike, type included: the text "1" and the integer 1 are different keys
        // to SQLite (in a column without a numeric affinity), so they are different lookups here.
        const memo = JSON.stringify([
          table,
          cols,
          cols.map((c) => {
            const bound = toSqlValue(r.key[c]);
            return [typeof bound, bound instanceof Uint8Array ? Buffer.from(bound).toString('base64') : String(bound)];
          }),
        ]);
        if (cache.has(memo)) return cache.get(memo);
        // After check(), only a table gone since (or undo's journal of one) gets here: no spec place.
        requireTable(table, []);
        for (const c of cols)
          if (!SQL_IDENT.test(c)) throw new DatafixError('config', 'DF205', `lookup column \`${c}\` must be a plain identifier`);
        const sql = `SELECT * FROM ${quoteIdent(table)} WHERE ${cols.map((c) => `${quoteIdent(c)} = ?`).join(' AND ')} LIMIT 1`;
        let row: Item | undefined;
        try {
          row = wrapBusy(() => prepare(sql).get(...cols.map((c) => toSqlValue(r.key[c])))) as Item | undefined;
        } catch (err) {
          // A locked database is the environment's problem; anything else is this key's.
          if (err instanceof DatafixError) throw err;
          return new LookupRejected('key_invalid', `SQLite cannot look up this key: ${(err as Error).message}`);
        } finally {
          count('lookup');
        }
        const item = row ? fromRow(row) : undefined;
        cache.set(memo, item);
        return item;
      });
    },

    async lookupMany(requests: readonly ListLookupRequest[]): Promise<(Item[] | LookupRejected)[]> {
      const answers: (Item[] | LookupRejected | undefined)[] = requests.map(() => undefined);
      // Requests of one lookup share table, columns, `where` and `max`: one statement a chunk.
      const groups = new Map<string, number[]>();
      requests.forEach((r, i) => {
        const shape = JSON.stringify([r.table ?? '', Object.keys(r.match), r.where ?? null, r.max]);
        const group = groups.get(shape);
        if (group) group.push(i);
        else groups.set(shape, [i]);
      });
      for (const indexes of groups.values()) {
        const first = requests[indexes[0] as number] as ListLookupRequest;
        const table = first.table ?? '';
        const info = requireTable(table, []);
        const cols = Object.keys(first.match);
        for (const c of cols)
          if (!SQL_IDENT.test(c)) throw new DatafixError('config', 'DF205', `lookup column \`${c}\` must be a plain identifier`);
        // One entry per distinct key as the table compares it (affinity, collation), so two
        // records naming the same rows share them, and rows are grouped back by that identity.
        const identityOf = (values: readonly unknown[]) => JSON.stringify(cols.map((c, i) => keyIdentity(table, c, values[i])));
        const wanted = new Map<string, { values: unknown[]; owners: number[] }>();
        for (const i of indexes) {
          const r = requests[i] as ListLookupRequest;
          const values = cols.map((c) => r.match[c]);
          const bad = cols.findIndex((_, ci) => lookupKeyProblem(values[ci]) !== undefined);
          if (bad >= 0) {
            answers[i] = new LookupRejected('key_invalid', `column \`${cols[bad]}\`: ${lookupKeyProblem(values[bad])}`);
            continue;
          }
          const id = identityOf(values);
          const entry = wanted.get(id);
          if (entry) entry.owners.push(i);
          else wanted.set(id, { values, owners: [i] });
        }
        const where = first.where ? compileWhere(first.where, (c) => knownCollation(table, c)) : undefined;
        const whereParams = (where?.params ?? []).map(toSqlValue);
        const keyList = (info.primaryKey.length ? info.primaryKey : ['rowid']).map(quoteIdent).join(', ');
        // Bound parameters per statement stay under SQLite's limit (SQLITE_MAX_VARIABLE_NUMBER,
        // 32766 since SQLite 3.32, which better-sqlite3 bundles).
        const perChunk = Math.max(1, Math.floor((MAX_BOUND - whereParams.length - 1) / Math.max(1, cols.length)));
        const entries = [...wanted.values()];
        /** Answers the requests of `chunk` (keys of one lookup) with one statement. */
        const readChunk = (chunk: typeof entries): void => {
          const tests: string[] = [];
          const params: unknown[] = [...whereParams];
          if (where) tests.push(`(${where.sql})`);
          if (cols.length === 1) {
            // `c IN (…)` compares as `c = ?` does: the column's affinity and collation.
            tests.push(`${quoteIdent(cols[0] as string)} IN (${chunk.map(() => '?').join(', ')})`);
            for (const e of chunk) params.push(toSqlValue(e.values[0]));
          } else if (cols.length > 1) {
            // A row value against VALUES compares each column as `c = ?` does (values without
            // affinity take the column's; the column's collation), and, unlike a chain of ORs,
            // stays within SQLite's expression depth limit (1000) however many keys a page has.
            const tuple = `(${cols.map(() => '?').join(', ')})`;
            tests.push(`(${cols.map(quoteIdent).join(', ')}) IN (VALUES ${chunk.map(() => tuple).join(', ')})`);
            for (const e of chunk) for (const v of e.values) params.push(toSqlValue(v));
          }
          // At most max + 1 rows per key: enough to tell "more than max" without reading them all.
          // The key order is carried out of the subquery as a column (a rowid would not be).
          const numbered = `row_number() OVER (${cols.length ? `PARTITION BY ${cols.map(quoteIdent).join(', ')} ` : ''}ORDER BY ${keyList})`;
          const order = info.primaryKey.length ? keyList : ROW_ID;
          const sql = `SELECT * FROM (SELECT *, ${info.primaryKey.length ? '' : `rowid AS ${ROW_ID}, `}${numbered} AS ${ROW_NUMBER} FROM ${quoteIdent(table)}${tests.length ? ` WHERE ${tests.join(' AND ')}` : ''}) WHERE ${ROW_NUMBER} <= ? ORDER BY ${order}`;
          params.push(BigInt(first.max + 1));
          let rows: Item[];
          try {
            rows = wrapBusy(() => prepare(sql).all(...params)) as Item[];
          } catch (err) {
            // As for one row: a locked database is the environment's problem; anything else (a
            // generated column SQLite cannot compute for a matched row) fails these keys' records.
            if (err instanceof DatafixError) throw err;
            // Each key alone, so that only the records of the key whose rows fail fail.
            if (chunk.length > 1) {
              for (const e of chunk) readChunk([e]);
              return;
            }
            const rejected = new LookupRejected('key_invalid', `SQLite cannot look up the rows of this key: ${(err as Error).message}`);
            for (const e of chunk) for (const i of e.owners) answers[i] = rejected;
            return;
          } finally {
            count('lookupMany');
          }
          const found = new Map<string, Item[]>(chunk.map((e) => [identityOf(e.values), []]));
          for (const raw of rows) {
            const { [ROW_NUMBER_COLUMN]: _n, [ROW_ID_COLUMN]: _rowid, ...row } = raw;
            const item = fromRow(row);
            found.get(identityOf(cols.map((c) => item[c])))?.push(item);
          }
          for (const e of chunk) {
            const items = found.get(identityOf(e.values)) ?? [];
            const answer =
              items.length > first.max
                ? new LookupRejected('lookup_over_max', `more than ${first.max} rows of \`${table}\` match (max: ${first.max})`)
                : items;
            for (const i of e.owners) answers[i] = answer;
          }
        };
        for (let at = 0; at < entries.length; at += perChunk) readChunk(entries.slice(at, at + perChunk));
      }
      return answers.map((a) => a ?? []);
    },

    overlapWrites(plan: FixPlan): boolean {
      if (readOnly) return false;
      const source = plan.source;
      if (source.kind !== 'table' || plan.update.table !== source.table || plan.update.action !== undefined) return false;
      const info = tableInfo(source.table);
      if (!info) return false;
      // The update key must be the row's own keyset key, read from the row: then a page writes
      // only its own rows, and the next page (keys after its last) holds none of them.
      const keyCols = info.primaryKey.length ? info.primaryKey : ['rowid'];
      const key = plan.update.key;
      if (key.length !== keyCols.length) return false;
      for (const [name, t] of key) {
        if (!keyCols.includes(name) || t.kind !== 'ref') return false;
        const { root, path, indexes } = t.ref;
        if (root !== source.as || path.length !== 1 || path[0] !== name || indexes?.length) return false;
      }
      // A trigger can write other rows (of later pages, or of tables read) as a batch runs.
      const trigger = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE").get(source.table);
      if (trigger) return false;
      thread ??= new WriteThread(target);
      return true;
    },

    async write(requests: readonly WriteRequest[], options?: WriteOptions): Promise<WriteResult[]> {
      if (thread) return thread.write(requests, options ?? { concurrency: 1 });
      const results: WriteResult[] = [];
      const checkpoint = options?.checkpoint;
      const asked = performance.now();
      let began: number | undefined;
      const applyAll = db.transaction(() => {
        began = performance.now();
        for (const r of requests) results.push(writeOne(r));
        if (checkpoint) {
          db.exec(CHECKPOINT_TABLE_SQL);
          prepare(
            `INSERT INTO ${CHECKPOINT_TABLE} (id, cursor, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
          ).run(checkpoint.id, checkpoint.cursor, new Date().toISOString());
        }
      });
      /**
       * Why this write could not keep a value exactly, or undefined. Checked in the write's own
       * transaction, before anything of the record is written: text SQLite cannot store as given
       * (a lone UTF-16 surrogate), and a before-image read as text with U+FFFD in it whose stored
       * bytes differ (TEXT that is not valid in the database's encoding reads back replaced, so
       * restoring it would not give the same bytes).
       */
      const inexactField = (table: string, keyCols: string[], r: WriteRequest): string | undefined => {
        for (const f of r.fields) {
          if (typeof f.value === 'string' && hasLoneSurrogate(f.value)) {
            return `${f.name}: the new text has a lone UTF-16 surrogate, which SQLite cannot store as given`;
          }
          const number = exactNumberText(f.value);
          if (number !== undefined && !sqliteHoldsExactly(number)) {
            return `${f.name}: ${number} is beyond what SQLite stores exactly (a 64-bit INTEGER, or a REAL that reads back as the same number)`;
          }
          if (typeof f.before !== 'string' || !f.before.includes('\uFFFD') || !SQL_IDENT.test(f.name)) continue;
          const same = prepare(
            `SELECT CAST(${quoteIdent(f.name)} AS BLOB) IS CAST(? AS BLOB) AS same FROM ${quoteIdent(table)} WHERE ${keyCols.map((k) => `${quoteIdent(k)} = ?`).join(' AND ')}`,
          ).get(f.before, ...keyCols.map((k) => toSqlValue(r.key[k]))) as { same: bigint } | undefined;
          if (same && !same.same) {
            return `${f.name}: the stored text is not valid in the database's encoding, so its before-image cannot restore it byte for byte`;
          }
        }
        return undefined;
      };
      const writeOne = (r: WriteRequest): WriteResult => {
        const table = r.table ?? '';
        const keyCols = Object.keys(r.key);
        if (r.action === 'delete') return deleteOne(table, keyCols, r);
        if (r.action === 'create') return createOne(table, keyCols, r);
        const update = updateFor(table, keyCols, r.fields);
        if ('error' in update) return { status: 'failed', reason: 'write_rejected', message: update.error };
        const inexact = inexactField(table, keyCols, r);
        if (inexact) return { status: 'failed', reason: 'value_not_exact', message: inexact };
        const params: unknown[] = [];
        for (const f of r.fields) params.push(toSqlValue(f.value));
        for (const k of keyCols) params.push(toSqlValue(r.key[k]));
        for (const f of r.fields)
          if (f.guard === 'unchanged' && f.before !== undefined && f.before !== null) params.push(toSqlValue(f.before));
        let changes: number;
        try {
          changes = update.statement.run(...params).changes;
        } catch (err) {
          return statementFailure(table, keyCols, r, err);
        } finally {
          count('update');
        }
        if (changes === 1) return { status: 'applied' };
        if (changes > 1) {
          // check() admits only keys SQLite's `=` keeps unique; should one still match several
          // rows (a schema changed under the run), the whole batch rolls back and the run stops.
          throw new DatafixError(
            'config',
            'DF403',
            `the update of \`${table}\` by (${keyCols.join(', ')}) changed ${changes} rows, not one; nothing of the current batch was written. The key is not unique as SQLite compares it: key by the primary key`,
          );
        }
        // The guard failed: tell a row someone else changed from one that was deleted.
        const current = prepare(`SELECT * FROM ${quoteIdent(table)} WHERE ${keyWhere(keyCols)}`).get(
          ...keyCols.map((k) => toSqlValue(r.key[k])),
        ) as Item | undefined;
        // SQLite loses no acknowledgements: a failed guard is always someone else's change, even
        // one that happens to hold our value (every field is guarded on the value read, touch
        // fields included, so a row someone else changed keeps that writer's values).
        if (current) return { status: 'conflict' };
        // A key read back with U+FFFD was TEXT not valid in the database's encoding: the row is
        // there, but no bound text can name it. That is this record's failure, not a deletion.
        const unaddressable = keyCols.find((k) => typeof r.key[k] === 'string' && (r.key[k] as string).includes('\uFFFD'));
        if (unaddressable !== undefined) {
          return {
            status: 'failed',
            reason: 'value_not_exact',
            message: `key column \`${unaddressable}\`: its stored text is not valid in the database's encoding (it reads back with U+FFFD), so SQLite cannot address the row by it`,
          };
        }
        return { status: 'not_found' };
      };
      const keyWhere = (keyCols: string[]) => keyCols.map((k) => `${quoteIdent(k)} = ?`).join(' AND ');
      /**
       * A statement that failed on this record alone, or the batch's end: a trigger's
       * RAISE(ROLLBACK) ends the whole transaction, so what the batch wrote before this record is
       * gone and the batch cannot go on as if only this record failed (DF418).
       */
      const statementFailure = (table: string, keyCols: string[], r: WriteRequest, err: unknown): WriteResult => {
        if (isLockedError(err)) throw err;
        if (!db.inTransaction) {
          throw new DatafixError(
            'config',
            'DF418',
            `writing \`${table}\` (${keyCols.map((k) => `${k}=${String(r.key[k])}`).join(', ')}): ${(err as Error).message}; SQLite rolled back the whole batch (a trigger's RAISE(ROLLBACK)), so nothing of it was written. Fix that record's data or the trigger, then --resume`,
          );
        }
        return { status: 'failed', reason: 'write_failed', message: (err as Error).message };
      };
      /**
       * A delete guarded on the whole before-image: every column the record was read with must
       * still hold, byte for byte (BINARY), what was read, in this transaction.
       */
      const deleteOne = (table: string, keyCols: string[], r: WriteRequest): WriteResult => {
        const bad = [table, ...keyCols, ...r.fields.map((f) => f.name)].find((c) => !SQL_IDENT.test(c));
        if (bad !== undefined) return { status: 'failed', reason: 'write_rejected', message: `bad name ${JSON.stringify(bad)}` };
        const guards = r.fields.map((f) =>
          f.before === undefined || f.before === null ? `${quoteIdent(f.name)} IS NULL` : `${quoteIdent(f.name)} IS ? COLLATE BINARY`,
        );
        const params = [
          ...keyCols.map((k) => toSqlValue(r.key[k])),
          ...r.fields.filter((f) => f.before !== undefined && f.before !== null).map((f) => toSqlValue(f.before)),
        ];
        let changes: number;
        try {
          changes = prepare(`DELETE FROM ${quoteIdent(table)} WHERE ${[keyWhere(keyCols), ...guards].join(' AND ')}`).run(
            ...params,
          ).changes;
        } catch (err) {
          return statementFailure(table, keyCols, r, err);
        } finally {
          count('delete');
        }
        if (changes === 1) return { status: 'applied' };
        if (changes > 1) {
          throw new DatafixError(
            'config',
            'DF403',
            `the delete from \`${table}\` by (${keyCols.join(', ')}) matched ${changes} rows, not one; nothing of the current batch was written. The key is not unique as SQLite compares it: key by the primary key`,
          );
        }
        const current = prepare(`SELECT 1 FROM ${quoteIdent(table)} WHERE ${keyWhere(keyCols)}`).get(
          ...keyCols.map((k) => toSqlValue(r.key[k])),
        );
        return current ? { status: 'conflict' } : { status: 'not_found' };
      };
      /**
       * A create: an INSERT only where no row has the key, checked in this transaction; a row with
       * the key is a conflict, never replaced (OR ABORT overrides a table's ON CONFLICT REPLACE).
       */
      const createOne = (table: string, keyCols: string[], r: WriteRequest): WriteResult => {
        // Generated columns (in a deleted row's before-image, which undo creates again) are
        // SQLite's to compute.
        const generated = tableInfo(table)?.generated;
        // The key too, where the fields lack it: a row keyed by its rowid (which `SELECT *` does
        // not read) is created again under that rowid, not a new one.
        const fields = [
          ...keyCols.filter((k) => !r.fields.some((f) => f.name === k)).map((k) => ({ name: k, value: r.key[k] })),
          ...r.fields.filter((f) => !generated?.has(f.name)),
        ];
        const cols = fields.map((f) => f.name);
        const bad = [table, ...keyCols, ...cols].find((c) => !SQL_IDENT.test(c));
        if (bad !== undefined) return { status: 'failed', reason: 'write_rejected', message: `bad name ${JSON.stringify(bad)}` };
        const inexact = inexactField(table, keyCols, r);
        if (inexact) return { status: 'failed', reason: 'value_not_exact', message: inexact };
        const existing = prepare(`SELECT 1 FROM ${quoteIdent(table)} WHERE ${keyWhere(keyCols)}`).get(
          ...keyCols.map((k) => toSqlValue(r.key[k])),
        );
        if (existing) return { status: 'conflict' };
        try {
          prepare(
            `INSERT OR ABORT INTO ${quoteIdent(table)} (${cols.map(quoteIdent).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
          ).run(...fields.map((f) => toSqlValue(f.value)));
        } catch (err) {
          return statementFailure(table, keyCols, r, err);
        } finally {
          count('create');
        }
        // The row as stored, defaults and triggers included: undo deletes it only while it is so.
        const stored = prepare(`SELECT * FROM ${quoteIdent(table)} WHERE ${keyWhere(keyCols)}`).get(
          ...keyCols.map((k) => toSqlValue(r.key[k])),
        ) as Item | undefined;
        return stored ? { status: 'applied', stored: fromRow(stored) } : { status: 'applied' };
      };
      // IMMEDIATE takes the write lock up front, so a busy database fails before any row changes.
      try {
        wrapBusy(() => applyAll.immediate());
      } catch (err) {
        if (err instanceof DatafixError) throw err;
        // COMMIT itself failed (a DEFERRABLE foreign key the batch broke): SQLite rolled it back.
        throw new DatafixError(
          'config',
          'DF418',
          `committing a batch of writes to ${target.path}: ${(err as Error).message}; SQLite rolled back the whole batch, so nothing of it was written. A record of it breaks a deferred constraint: find it with a smaller --limit or fix the data it points at, then --resume`,
        );
      } finally {
        if (began !== undefined) onTransaction?.({ waitedMs: began - asked, heldMs: performance.now() - began });
      }
      return results;
    },

    normalize,

    keyIdentity,

    equalInColumn(table: string, field: string, stored: unknown, value: unknown): boolean {
      const a = normalize(stored);
      const b = normalize(converted(table, field, value, 'compare'));
      const [na, nb] = [numberIdentity(a), numberIdentity(b)];
      if (na !== undefined && nb !== undefined) return na === nb;
      if (typeof a === 'string' && typeof b === 'string') {
        const coll = collationOf(table, field);
        // check() refused rules on any other collation.
        const c = coll instanceof Error ? 'BINARY' : coll;
        return collationKey(c, a) === collationKey(c, b);
      }
      return deepEqual(a, b);
    },

    satisfies(op: ValueTestOp, values: readonly unknown[], stored: unknown, column?: readonly [string, string]): boolean {
      // SQLite itself evaluates the very SQL a `where` runs (valueTestSql), over the value read:
      // a constant first takes the column's type affinity, as it does against the column
      // (https://www.sqlite.org/datatype3.html, 4.2), and the column's collation is named.
      const affinityApplies = column !== undefined && op !== 'beginsWith' && op !== 'contains' && op !== 'type';
      const operands = affinityApplies ? values.map((v) => converted(column[0], column[1], v, 'compare')) : values;
      const params: unknown[] = [];
      const test = valueTestSql(op, 'v', operands, params, column ? knownCollation(column[0], column[1]) : 'BINARY');
      params.push(stored);
      const row = wrapBusy(() => prepare(`SELECT ${test} AS r FROM (SELECT ? AS v)`).get(...params.map(toSqlValue))) as { r: unknown };
      return Number(row.r) === 1;
    },

    storedAs(table: string | undefined, field: string, value: unknown): unknown {
      return converted(table, field, value, 'store');
    },

    checkpoints: {
      read(id: string): string | undefined {
        const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(CHECKPOINT_TABLE);
        if (!exists) return undefined;
        const row = db.prepare(`SELECT cursor FROM ${CHECKPOINT_TABLE} WHERE id = ?`).get(id) as { cursor: string } | undefined;
        return row?.cursor;
      },
      write(id: string, cursor: string): void {
        // One IMMEDIATE transaction creates the table and stores the row: two processes can
        // never see the table half made, nor one drop it between the other's check and write.
        const store = db.transaction(() => {
          db.exec(CHECKPOINT_TABLE_SQL);
          db.prepare(
            `INSERT INTO ${CHECKPOINT_TABLE} (id, cursor, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
          ).run(id, cursor, new Date().toISOString());
        });
        wrapBusy(() => store.immediate());
      },
      clear(id: string): void {
        const drop = db.transaction(() => {
          const exists = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(CHECKPOINT_TABLE);
          if (!exists) return;
          db.prepare(`DELETE FROM ${CHECKPOINT_TABLE} WHERE id = ?`).run(id);
          // Leave the schema as it was found once no run is in progress.
          if (!db.prepare(`SELECT 1 FROM ${CHECKPOINT_TABLE} LIMIT 1`).get()) db.exec(`DROP TABLE ${CHECKPOINT_TABLE}`);
        });
        wrapBusy(() => drop.immediate());
      },
    },

    stats: () => {
      const all = { ...stats };
      for (const [op, n] of Object.entries(thread?.stats() ?? {})) all[op] = (all[op] ?? 0) + n;
      return all;
    },

    async close(): Promise<void> {
      await thread?.close();
      if (db.open) db.close();
    },
  };
}

/** Bound parameters one statement may hold: SQLite's SQLITE_MAX_VARIABLE_NUMBER default since 3.32. */
const MAX_BOUND = 32_766;
/** The row number a lookup of several rows counts each key's rows by; never a column of the answer. */
const ROW_NUMBER_COLUMN = 'datafix:n';
const ROW_NUMBER = `"${ROW_NUMBER_COLUMN}"`;
/** The rowid of a table without a primary key, carried out of that subquery to order by. */
const ROW_ID_COLUMN = 'datafix:rowid';
const ROW_ID = `"${ROW_ID_COLUMN}"`;

/** Largest integer SQLite stores (a signed 64-bit INTEGER). */
const MAX_INT64 = 2n ** 63n - 1n;
const MIN_INT64 = -(2n ** 63n);

/**
 * Why a value cannot be a lookup key, or undefined: a key is compared with a column with `=`, so
 * it must be one SQLite value (TEXT, INTEGER within 64 bits, REAL or BLOB), never a map, list or
 * set (whose JSON text would match nothing meaningful).
 */
/** DF416: rows the source selects hold NULL in a primary key column, which keyset paging cannot pass. */
function nullKeyError(table: string, columns: readonly string[], at: readonly (string | number)[] = ['source', 'table']): DatafixError {
  return targetMismatch(
    'DF416',
    `${at.join('.')}: rows of \`${table}\` that the source selects hold NULL in primary key column ${columns.map((c) => `\`${c}\``).join(', ')} (SQLite allows it in a table with a rowid); datafix reads in primary key order and cannot page past them. Add \`where: { notNull: ${columns[0]} }\` to the source, or fix those rows first`,
    at,
  );
}

function lookupKeyProblem(value: unknown): string | undefined {
  if (value === null || value === undefined) return 'it has no value';
  if (value instanceof Uint8Array || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return undefined;
  const exact = exactNumberText(value);
  if (exact !== undefined) {
    return /^-?[0-9]+$/.test(exact) && !sqliteHoldsExactly(exact) ? `${exact} does not fit a 64-bit SQLite INTEGER` : undefined;
  }
  return `a ${value instanceof Set ? 'set' : Array.isArray(value) ? 'list' : 'map'} is not a single SQLite value`;
}

/**
 * Opens the database file, or throws a DatafixError saying what is wrong with it and what to do:
 * missing (DF410), a directory or not a SQLite file (DF410), or, for a run that writes,
 * read-only (DF415). SQLite opens a write-protected file read-only without a word and fails only
 * at the first write, and it writes its rollback journal next to the file, so both the file and
 * its directory are checked here, before anything else of the run happens.
 */
function openDatabase(target: Target, readonly: boolean): Database.Database {
  const path = target.path;
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new DatafixError(
      'connection',
      'DF410',
      `SQLite database not found: ${path}. Check the path in the spec's target (or the environment variable it reads)`,
    );
  }
  if (!isFile) {
    throw new DatafixError(
      'connection',
      'DF410',
      `${path} is not a file, so it cannot be a SQLite database; give the path of the database file itself`,
    );
  }
  let db: Database.Database;
  try {
    db = new Database(path, { fileMustExist: true, readonly, timeout: target.busyTimeoutMs });
    // Opening reads nothing; the first read of the header tells a database from any other file.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (err) {
    if (isLockedError(err)) throw lockedError(path, target.busyTimeoutMs, 'retry');
    const code = (err as { code?: string }).code ?? '';
    const why = code === 'SQLITE_NOTADB' ? 'it is not a SQLite database' : (err as Error).message;
    throw new DatafixError('connection', 'DF410', `cannot open SQLite database ${path}: ${why}. Check the path in the spec's target`);
  }
  if (!readonly) {
    // better-sqlite3's `db.readonly` echoes the option asked for, not what SQLite did: a file the
    // user cannot write is opened read-only without a word, so the file's mode is asked directly.
    const why =
      db.readonly || !canAccess(path, constants.W_OK)
        ? 'the file is read-only'
        : !writable(dirname(resolve(path)))
          ? `its directory ${dirname(resolve(path))} is not writable, and SQLite keeps its rollback journal there`
          : undefined;
    if (why) {
      db.close();
      throw new DatafixError(
        'config',
        'DF415',
        `cannot write to SQLite database ${path}: ${why}. Nothing was written; give the user running datafix write access (or use --dry-run to only look)`,
      );
    }
  }
  return db;
}

/** The size of the file at `path` in bytes; 0 when it is gone. */
function fileSize(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.size ?? 0;
}

function writable(dir: string): boolean {
  return canAccess(dir, constants.W_OK | constants.X_OK);
}

/** access(2) for the user running datafix; `mode` is a mask of `constants.R_OK/W_OK/X_OK`. */
function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** A decimal text as sign, significant digits and exponent (`12.50` → 125e-1); undefined if not one. */
/**
 * A number's value as canonical text (digits and exponent), equal for equal values whatever the
 * storage class: INTEGER 1 and REAL 1.0 are both `1e0`, as SQLite compares them. Undefined for
 * anything that is not a number.
 */
function numberIdentity(v: unknown): string | undefined {
  const text = exactNumberText(v) ?? (typeof v === 'bigint' || (typeof v === 'number' && Number.isFinite(v)) ? String(v) : undefined);
  if (text === undefined) return typeof v === 'number' ? String(v) : undefined; // ±Infinity
  const parts = decimalParts(text);
  return parts ? `${parts.neg ? '-' : ''}${parts.digits}e${parts.exp}` : text;
}

function decimalParts(text: string): { neg: boolean; digits: string; exp: number } | undefined {
  const m = /^(-?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
  if (!m || `${m[2]}${m[3] ?? ''}` === '') return undefined;
  let digits = `${m[2]}${m[3] ?? ''}`.replace(/^0+/, '');
  let exp = Number(m[4] ?? 0) - (m[3] ?? '').length;
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    exp++;
  }
  return digits === '' ? { neg: false, digits: '0', exp: 0 } : { neg: m[1] === '-', digits, exp };
}

/**
 * Whether SQLite can store an exact number's text without changing it: an integer within the
 * 64-bit INTEGER range, or a decimal whose double prints back as the same decimal (so a REAL read
 * back gives the same number; `-0.0` included). https://www.sqlite.org/datatype3.html (INTEGER:
 * up to 8 bytes; REAL: an 8-byte IEEE floating point number).
 */
export function sqliteHoldsExactly(text: string): boolean {
  if (/^-?[0-9]+$/.test(text)) {
    const n = BigInt(text);
    return n >= MIN_INT64 && n <= MAX_INT64;
  }
  const double = Number(text);
  if (!Number.isFinite(double)) return false;
  const a = decimalParts(text);
  const b = decimalParts(String(double));
  return a !== undefined && b !== undefined && a.neg === b.neg && a.digits === b.digits && a.exp === b.exp;
}

/** Values as SQLite stores them: booleans as 0/1, structures as JSON text, binary as a Buffer. */
export function toSqlValue(value: unknown): unknown {
  // Text first: most values written are, and it needs no conversion.
  if (typeof value === 'string' || value === null) return value;
  if (value === undefined) return null;
  // better-sqlite3 binds every JS number as REAL; a whole number must stay INTEGER (7, not 7.0).
  // -0 is a REAL (-0.0): as an INTEGER it would lose its sign.
  if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) return BigInt(value);
  // An INTEGER 1 or 0, not the REAL a JS number would bind as (1.0 into a TEXT column is "1.0").
  if (typeof value === 'boolean') return value ? 1n : 0n;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const exact = exactNumberText(value);
  if (exact !== undefined) return /^-?[0-9]+$/.test(exact) ? BigInt(exact) : Number(exact);
  if (value instanceof Set) return jsonText([...value]);
  if (value !== null && typeof value === 'object') return jsonText(value);
  return value;
}

/**
 * Marks an exact number's text in JSON while it is written; made once per process, so no text of
 * a value can hold it by chance.
 */
const NUMBER_MARK = `\u0000${randomUUID()}:`;
const MARKED_NUMBER = new RegExp(`"${JSON.stringify(NUMBER_MARK).slice(1, -1).replace(/\\/g, '\\\\')}([-+.0-9eE]+)"`, 'g');

/**
 * JSON text of a structure with every number as its own digits: a 64-bit integer (bigint) or an
 * exact number inside a map or list (rows of a lookup of several rows hold them) is written as
 * the number it is, never refused nor rounded to a double.
 */
function jsonText(value: unknown): string {
  let marked = false;
  const text = JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const exact = exactNumberText(this[key]);
    if (exact === undefined) return v;
    marked = true;
    return `${NUMBER_MARK}${exact}`;
  });
  return marked ? text.replace(MARKED_NUMBER, '$1') : text;
}

/** A value as better-sqlite3 read it with safe integers on: an integer a double holds as a number. */
export function fromSqlValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  return value;
}

/**
 * Whether `text` holds a lone UTF-16 surrogate, which no SQLite encoding can hold as given.
 * String.prototype.isWellFormed (ES2024, Node 20+) answers natively, several times faster than
 * a /\p{Cs}/u scan, on every string the run writes.
 */
const hasLoneSurrogate = (text: string): boolean => !(text as string & { isWellFormed(): boolean }).isWellFormed();

/**
 * Statements read with safe integers on, so a JS number in a row is always a REAL. A whole REAL
 * (7.0, -0.0, 1e20) is kept as an exact number with its REAL text, so that writing it back (an
 * undo, an overwrite's copy) binds a REAL again rather than the INTEGER 7 or 0.
 */
function fromReal(value: number): unknown {
  if (!Number.isInteger(value)) return value;
  const text = Object.is(value, -0) ? '-0.0' : String(value);
  return new ExactNumber(/^-?[0-9]+$/.test(text) ? `${text}.0` : text);
}

/**
 * A value as datafix holds it, read with safe integers on: an INTEGER (a bigint) as
 * `fromSqlValue` gives it, a REAL as `fromReal` does, anything else as it is.
 */
function fromStored(value: unknown): unknown {
  return typeof value === 'bigint' ? fromSqlValue(value) : typeof value === 'number' ? fromReal(value) : value;
}

/** A row value's size as a page counts it: text by its length, blobs by their bytes, anything else 8. */
function valueBytes(value: unknown): number {
  return typeof value === 'string' ? value.length : value instanceof Uint8Array ? value.byteLength : 8;
}

/**
 * A row as datafix holds it: its values through `fromStored`. In place: better-sqlite3 makes a
 * fresh object per row, and a copy per row was a tenth of a light fix's read time. Its keys are
 * own data properties; a column named `__proto__` never becomes one (better-sqlite3 assigns it
 * through the prototype setter, which drops it). for…in, not Object.keys: no array per row (rows
 * are plain objects, nothing inherited).
 */
function fromRow(row: Item): Item {
  for (const k in row) {
    const v = row[k];
    if (typeof v === 'bigint' || typeof v === 'number') row[k] = fromStored(v);
  }
  return row;
}

/**
 * A row read as an array (`names` its columns in order) made into `item`, its values through
 * `fromStored`. A later column of the same name wins, as in better-sqlite3's own objects, and
 * `__proto__` never becomes a key (a BLOB assigned to it would become the object's prototype).
 */
function rowOf(names: readonly string[], values: readonly unknown[], item: Item): void {
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (name !== '__proto__') item[name] = fromStored(values[i]);
  }
}

/**
 * The source columns a plan reads from each record, or undefined when it may read the whole
 * record: every ref rooted at the source alias in the lookups, extracts, skip rules and update,
 * the fields the update writes (their before-images come from the record) and the primary key.
 */
function referencedColumns(plan: FixPlan, info: TableInfo): string[] | undefined {
  const alias = plan.source.as;
  const cols = new Set<string>();
  let whole = false;
  for (const { ref } of planRefs(plan)) {
    if (ref.root !== alias) continue;
    if (ref.path[0] !== undefined && !ref.indexes?.includes(0)) cols.add(ref.path[0]);
    else whole = true;
  }
  if (whole) return undefined;
  if (plan.update.before.kind === 'context' && plan.update.before.root === alias) {
    // A delete's before-image, and its guard, is the whole row.
    if (plan.update.action === 'delete') return undefined;
    for (const f of [...plan.update.set, ...plan.update.touch]) cols.add(f.field);
    for (const f of plan.update.remove ?? []) cols.add(f);
  }
  for (const k of info.primaryKey) cols.add(k);
  const list = [...cols].filter((c) => info.columns.has(c));
  // Only plain identifiers are ever named in SQL: a column named otherwise is read with the whole row.
  return list.every((c) => SQL_IDENT.test(c)) ? list : undefined;
}
