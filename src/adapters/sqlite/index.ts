/**
 * SQLite backend on better-sqlite3. Spec text never becomes SQL: table and column names are
 * checked against `^[A-Za-z_][A-Za-z0-9_]*$` and against the live schema, then quoted; every
 * value is a bound parameter. Pages are read by keyset on the primary key, so rows the run
 * updates (and that drop out of `where`) never shift the pages still to come.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { DatafixError, targetMismatch } from '../../errors.js';
import { columnOfRef, conditionRefs } from '../../plan/conditions.js';
import type { FixPlan, SourcePlan } from '../../plan/types.js';
import { deepEqual, ExactNumber, exactNumberText } from '../../plan/values.js';
import {
  type Adapter,
  type Item,
  LookupRejected,
  type LookupRequest,
  type ReadOptions,
  type SourcePage,
  type WriteOptions,
  type WriteRequest,
  type WriteResult,
} from '../types.js';
import { type BuiltInCollation, collatedEqual, columnCollation } from './collation.js';
import { compileWhere, quoteIdent, SQL_IDENT } from './sql.js';

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

export interface SqliteAdapterOptions {
  /** Open read-only: a dry run cannot write even by mistake. */
  readonly readonly?: boolean;
}

interface TableInfo {
  readonly columns: Set<string>;
  /** Primary key columns in key order; empty when the table has none (rowid is used). */
  readonly primaryKey: string[];
  /** Column sets that identify one row: the primary key and every unique index. */
  readonly uniqueKeys: string[][];
  /** Each column's type affinity, from its declared type. */
  readonly affinity: Map<string, Affinity>;
  /** Each column's collation, asked of SQLite when first needed. */
  readonly collations: Map<string, BuiltInCollation | Error>;
}

type Affinity = 'TEXT' | 'NUMERIC' | 'INTEGER' | 'REAL' | 'BLOB';

/**
 * A column's type affinity from its declared type, by SQLite's rules in order: INT → INTEGER;
 * CHAR, CLOB or TEXT → TEXT; BLOB or no type → BLOB; REAL, FLOA or DOUB → REAL; else NUMERIC.
 * https://www.sqlite.org/datatype3.html, 3.1 Determination Of Column Affinity.
 */
export function affinityOf(declared: string): Affinity {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'INTEGER';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'TEXT';
  if (t.includes('BLOB') || t.trim() === '') return 'BLOB';
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
  const db = openDatabase(target, options.readonly ?? false);
  const stats: Record<string, number> = {};
  const count = (op: string) => {
    stats[op] = (stats[op] ?? 0) + 1;
  };
  const tables = new Map<string, TableInfo>();
  const normalize = (value: unknown) => fromSqlValue(toSqlValue(value));
  // Every record of a fix usually has the same update shape (table, key, fields, guards): its
  // SQL is assembled and checked once, not once per row.
  const updates = new Map<string, { statement: Database.Statement } | { error: string }>();
  const updateFor = (table: string, keyCols: string[], fields: WriteRequest['fields']) => {
    let shape = `${table}\u0000${keyCols.join('\u0000')}`;
    for (const f of fields) {
      const guard =
        f.guard === 'absent' || (f.guard === 'unchanged' && (f.before === undefined || f.before === null))
          ? 'n'
          : f.guard === 'unchanged'
            ? 'u'
            : '-';
      shape += `\u0000${f.name}\u0001${guard}`;
    }
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
          `UPDATE ${quoteIdent(table)} SET ${fields.map((f) => `${quoteIdent(f.name)} = ?`).join(', ')}` +
          ` WHERE ${[...keyCols.map((k) => `${quoteIdent(k)} = ?`), ...guards].join(' AND ')}`;
        known = { statement: db.prepare(sql) };
      }
      updates.set(shape, known);
    }
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

  const wrapBusy = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (isLockedError(err)) throw lockedError(target.path, target.busyTimeoutMs, 'nothing of the current batch was written. Retry');
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
      const cols = db.prepare('SELECT name, pk, type FROM pragma_table_info(?)').all(table) as { name: string; pk: number; type: string }[];
      const primaryKey = cols
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name);
      const uniqueKeys = primaryKey.length ? [primaryKey] : [];
      const indexes = db.prepare('SELECT name, "unique" AS u FROM pragma_index_list(?)').all(table) as { name: string; u: number }[];
      for (const idx of indexes.filter((i) => i.u)) {
        const idxCols = db.prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno').all(idx.name) as { name: string }[];
        uniqueKeys.push(idxCols.map((c) => c.name));
      }
      // A table without a primary key is addressed by its rowid, which reads like a column.
      const names = cols.map((c) => c.name);
      if (!listing.wr && primaryKey.length === 0 && !names.includes('rowid')) {
        names.push('rowid');
        uniqueKeys.push(['rowid']);
      }
      // In a STRICT table an ANY column keeps every value as given (no affinity).
      const affinity = new Map(
        cols.map((c) => [c.name, listing.strict && (c.type ?? '').toUpperCase() === 'ANY' ? ('BLOB' as const) : affinityOf(c.type ?? '')]),
      );
      const info: TableInfo = { columns: new Set(names), primaryKey, uniqueKeys, affinity, collations: new Map() };
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
        `${at.join('.')}: table \`${table}\` does not exist in ${target.path}; check the name against the database's tables`,
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
        at[0] === 'update' && at[1] !== 'key' ? [...at, missing[0] as string] : at,
      );
    }
  };
  const requireUnique = (info: TableInfo, table: string, columns: string[], at: readonly string[]): void => {
    const wanted = [...columns].sort().join(',');
    if (!info.uniqueKeys.some((k) => [...k].sort().join(',') === wanted)) {
      throw targetMismatch(
        'DF403',
        `${at.join('.')}: (${columns.join(', ')}) is not the primary key or a unique index of \`${table}\`, so it could match several rows; key by the primary key (${info.primaryKey.join(', ') || 'rowid'})`,
        at,
      );
    }
  };

  /** A column's collation, or an Error when SQLite cannot compare it (an application's collation). */
  const collationOf = (table: string, column: string): BuiltInCollation | Error => {
    const info = tableInfo(table);
    if (!info || !SQL_IDENT.test(column)) return 'BINARY';
    let coll = info.collations.get(column);
    if (coll === undefined) {
      coll = wrapBusy(() => columnCollation(db, table, column));
      info.collations.set(column, coll);
    }
    return coll;
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
    if (source.kind !== 'table') throw new DatafixError('config', 'DF406', 'a SQLite target reads with source.table');
    const info = requireTable(source.table, ['source', 'table']);
    const keyCols = info.primaryKey.length ? info.primaryKey : ['rowid'];
    const usesRowid = info.primaryKey.length === 0;
    const compiled = source.where ? compileWhere(source.where) : undefined;
    // Bound as every other value is (200 as the INTEGER 200, not the REAL 200.0, which a TEXT
    // column would compare as '200.0'), so `where` and a skip rule agree on the same data.
    const where = compiled ? { sql: compiled.sql, params: compiled.params.map(toSqlValue) } : undefined;
    const keyList = keyCols.map(quoteIdent).join(', ');
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

  return {
    backend: 'sqlite',
    // better-sqlite3 reads synchronously: reading ahead would only evict the page being written.
    readsAhead: false,

    async check(plan: FixPlan): Promise<void> {
      const src = plan.source;
      if (src.kind !== 'table') {
        throw new DatafixError('config', 'DF406', 'a SQLite target reads with source.table');
      }
      const info = requireTable(src.table, ['source', 'table']);
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
        const cols = l.key.map(([k]) => k);
        requireColumns(li, table, cols, ['lookups', l.name, 'get']);
        requireUnique(li, table, cols, ['lookups', l.name, 'get']);
      }
      // Every column compared by its own collation: by SQLite (where, keyset paging, lookup and
      // update keys) or by datafix (skip rules). Both need one of SQLite's own collations.
      const compared: (readonly [table: string, column: string, at: readonly (string | number)[]])[] = [
        ...(src.where ? conditionRefs(src.where, true) : []).map((r) => [src.table, r.root, ['source', 'where']] as const),
        ...info.primaryKey.map((k) => [src.table, k, ['source', 'table']] as const),
        ...plan.lookups.flatMap((l) => l.key.map(([k]) => [l.table ?? '', k, ['lookups', l.name, 'get']] as const)),
        ...plan.update.key.map(([k]) => [plan.update.table ?? src.table, k, ['update', 'key']] as const),
        ...plan.skip.flatMap((rule, i) =>
          conditionRefs(rule.when, true).flatMap((ref) => {
            const column = columnOfRef(plan, ref);
            return column ? [[column[0], column[1], ['skip', i, 'when']] as const] : [];
          }),
        ),
      ];
      for (const [table, column, at] of compared) requireKnownCollation(table, column, at);
      const table = plan.update.table ?? src.table;
      const ui = requireTable(table, plan.update.table === undefined ? ['source', 'table'] : ['update', 'table']);
      const keyCols = plan.update.key.map(([k]) => k);
      requireColumns(ui, table, keyCols, ['update', 'key']);
      requireUnique(ui, table, keyCols, ['update', 'key']);
      requireColumns(
        ui,
        table,
        plan.update.set.map((f) => f.field),
        ['update', 'set'],
      );
      requireColumns(
        ui,
        table,
        plan.update.touch.map((f) => f.field),
        ['update', 'touch'],
      );
    },

    async *readPages(source: SourcePlan, options: ReadOptions): AsyncGenerator<SourcePage> {
      const { keyCols, where, firstSql, afterSql } = sourceQuery(source);
      let cursor = Array.isArray(options.cursor) ? (options.cursor as unknown[]) : undefined;
      for (;;) {
        if (options.signal?.aborted) return;
        const params = [...(where?.params ?? []), ...(cursor ?? []).map(toSqlValue), options.pageSize];
        const rows = wrapBusy(() => prepare(cursor ? afterSql : firstSql).all(...params)) as Item[];
        count('select');
        if (rows.length === 0) return;
        const records = rows.map((raw) => {
          const item = fromRow(raw);
          const key: Item = {};
          for (const k of keyCols) key[k] = item[k];
          return { key, item };
        });
        const lastRecord = records[records.length - 1] as { key: Item };
        cursor = keyCols.map((k) => lastRecord.key[k]);
        const done = rows.length < options.pageSize;
        yield { records, cursor: done ? undefined : cursor };
        if (done) return;
      }
    },

    async count(source: SourcePlan, options: { cursor?: unknown }) {
      // A null cursor is the position after the last page: nothing is left.
      if (options.cursor === null) return { records: 0, estimate: false };
      const { where, countFirstSql, countAfterSql } = sourceQuery(source);
      const cursor = Array.isArray(options.cursor) ? (options.cursor as unknown[]) : undefined;
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
        requireTable(table, ['lookups']);
        for (const c of cols) if (!SQL_IDENT.test(c)) throw new DatafixError('config', 'DF405', `bad column name ${c}`);
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

    async write(requests: readonly WriteRequest[], options?: WriteOptions): Promise<WriteResult[]> {
      const results: WriteResult[] = [];
      const checkpoint = options?.checkpoint;
      const applyAll = db.transaction(() => {
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
          if (typeof f.value === 'string' && LONE_SURROGATE.test(f.value)) {
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
          if (isLockedError(err)) throw err;
          return { status: 'failed', reason: 'write_failed', message: (err as Error).message };
        } finally {
          count('update');
        }
        if (changes === 1) return { status: 'applied' };
        // The guard failed: tell a row someone else changed from one that was deleted.
        const current = prepare(`SELECT * FROM ${quoteIdent(table)} WHERE ${keyCols.map((k) => `${quoteIdent(k)} = ?`).join(' AND ')}`).get(
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
      // IMMEDIATE takes the write lock up front, so a busy database fails before any row changes.
      wrapBusy(() => applyAll.immediate());
      return results;
    },

    normalize,

    equalInColumn(table: string, field: string, stored: unknown, value: unknown): boolean {
      const a = normalize(stored);
      const b = normalize(this.storedAs?.(table, field, value) ?? value);
      if (typeof a === 'string' && typeof b === 'string') {
        const coll = collationOf(table, field);
        // check() refused rules on any other collation.
        return collatedEqual(coll instanceof Error ? 'BINARY' : coll, a, b);
      }
      return deepEqual(a, b);
    },

    storedAs(table: string | undefined, field: string, value: unknown): unknown {
      if (value === undefined || value === null || value instanceof Uint8Array || table === undefined) return value;
      const affinity = tableInfo(table)?.affinity.get(field);
      if (!affinity || affinity === 'BLOB') return value;
      const isNumber =
        typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean' || exactNumberText(value) !== undefined;
      // SQLite converts as it stores: a number into a TEXT column becomes its text; numeric text
      // into a NUMERIC, INTEGER or REAL column becomes a number. SQLite itself does the
      // conversion here (the same routine as a CAST), so what is journaled is what is stored.
      let sql: string | undefined;
      if (affinity === 'TEXT' && isNumber) sql = 'SELECT CAST(? AS TEXT) AS v';
      else if (affinity === 'REAL' && (isNumber || (typeof value === 'string' && numericText(value)))) sql = 'SELECT CAST(? AS REAL) AS v';
      else if ((affinity === 'NUMERIC' || affinity === 'INTEGER') && (isNumber || (typeof value === 'string' && numericText(value))))
        sql = 'SELECT CAST(? AS NUMERIC) AS v';
      if (!sql) return value;
      const exact = exactNumberText(value);
      if (exact !== undefined && !sqliteHoldsExactly(exact)) return value; // fails in the write with value_not_exact
      const got = (prepare(sql).get(toSqlValue(value)) as { v: unknown }).v;
      return typeof got === 'bigint' ? fromSqlValue(got) : typeof got === 'number' ? fromReal(got) : got;
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

    stats: () => ({ ...stats }),

    async close(): Promise<void> {
      if (db.open) db.close();
    },
  };
}

/** Largest integer SQLite stores (a signed 64-bit INTEGER). */
const MAX_INT64 = 2n ** 63n - 1n;
const MIN_INT64 = -(2n ** 63n);

/**
 * Why a value cannot be a lookup key, or undefined: a key is compared with a column with `=`, so
 * it must be one SQLite value (TEXT, INTEGER within 64 bits, REAL or BLOB), never a map, list or
 * set (whose JSON text would match nothing meaningful).
 */
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
  if (Object.is(double, -0)) return true;
  const a = decimalParts(text);
  const b = decimalParts(String(double));
  return a !== undefined && b !== undefined && a.neg === b.neg && a.digits === b.digits && a.exp === b.exp;
}

/** Values as SQLite stores them: booleans as 0/1, structures as JSON text, binary as a Buffer. */
export function toSqlValue(value: unknown): unknown {
  if (value === undefined) return null;
  // better-sqlite3 binds every JS number as REAL; a whole number must stay INTEGER (7, not 7.0).
  // -0 is a REAL (-0.0): as an INTEGER it would lose its sign.
  if (typeof value === 'number' && Number.isSafeInteger(value) && !Object.is(value, -0)) return BigInt(value);
  // An INTEGER 1 or 0, not the REAL a JS number would bind as (1.0 into a TEXT column is "1.0").
  if (typeof value === 'boolean') return value ? 1n : 0n;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const exact = exactNumberText(value);
  if (exact !== undefined) return /^-?[0-9]+$/.test(exact) ? BigInt(exact) : Number(exact);
  if (value instanceof Set) return JSON.stringify([...value]);
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return value;
}

function fromSqlValue(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  return value;
}

/** A lone UTF-16 surrogate: text no SQLite encoding can hold as given. */
const LONE_SURROGATE = /\p{Cs}/u;

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

function fromRow(row: Item): Item {
  const out: Item = {};
  for (const k of Object.keys(row)) {
    const v = row[k];
    const value = typeof v === 'bigint' ? fromSqlValue(v) : typeof v === 'number' ? fromReal(v) : v;
    // Defined, not assigned, so even a column named __proto__ stays plain data.
    if (k === '__proto__') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    else out[k] = value;
  }
  return out;
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
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (typeof o.root === 'string' && Array.isArray(o.path) && typeof o.text === 'string') {
      if (o.root === alias) {
        if (typeof o.path[0] === 'string') cols.add(o.path[0]);
        else whole = true;
      }
      return;
    }
    for (const x of Object.values(o)) visit(x);
  };
  visit([plan.lookups, plan.extracts, plan.skip, plan.update]);
  if (whole) return undefined;
  if (plan.update.before.kind === 'context' && plan.update.before.root === alias) {
    for (const f of [...plan.update.set, ...plan.update.touch]) cols.add(f.field);
  }
  for (const k of info.primaryKey) cols.add(k);
  return [...cols].filter((c) => info.columns.has(c) && SQL_IDENT.test(c));
}
