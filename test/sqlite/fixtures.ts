/**
 * Shared helpers for tests that run fixes against real SQLite files: build a database from SQL,
 * read rows back with an independent connection, and run a YAML spec through the library
 * (load → compile → adapter.check → runFix) while recording every record event.
 */
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { Adapter } from '../../src/adapters/types.js';
import type { EngineEvent, RecordEvent, RunSummary } from '../../src/engine/events.js';
import { type RunOptions, runFix } from '../../src/engine/run.js';
import { DatafixError } from '../../src/errors.js';
import { compileSpec } from '../../src/language/compile.js';
import type { EnvSource } from '../../src/language/env.js';
import { loadSpecText } from '../../src/language/load.js';
import type { FixPlan } from '../../src/plan/types.js';

export type Row = Record<string, unknown>;

/** Creates a database file from SQL statements (schema and inserts). */
export function createDb(path: string, sql: string): void {
  const db = new Database(path);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

/**
 * Creates a database file at `path` as an application makes it, with a collation (`app_order`)
 * and a function (`app_fn`) only that application defines: better-sqlite3 cannot register a
 * collation, Python's sqlite3 module can (python3 is needed).
 */
export function createAppDb(path: string, sql: string): void {
  const made = spawnSync('python3', [
    '-c',
    'import sqlite3, sys\n' +
      'c = sqlite3.connect(sys.argv[1])\n' +
      'c.create_collation("app_order", lambda a, b: (a > b) - (a < b))\n' +
      'c.create_function("app_fn", 1, lambda v: v)\n' +
      'c.executescript(sys.argv[2])\n' +
      'c.commit()\n' +
      'c.close()\n',
    path,
    sql,
  ]);
  expect(made.status, `python3 with its sqlite3 module is needed to make the database: ${made.error ?? made.stderr}`).toBe(0);
}

/** Runs `fn` with a SQLite adapter on `db` (busy timeout 1 s), closing it afterwards. */
export async function withAdapter<T>(db: string, fn: (adapter: Adapter) => Promise<T>): Promise<T> {
  const adapter = createSqliteAdapter({ backend: 'sqlite', path: db, busyTimeoutMs: 1000 });
  try {
    return await fn(adapter);
  } finally {
    await adapter.close();
  }
}

/** Opens a second, independent connection (the "other writer" or the checker). */
export function openDb(path: string, options: { safeIntegers?: boolean } = {}): Database.Database {
  const db = new Database(path);
  if (options.safeIntegers) db.defaultSafeIntegers(true);
  return db;
}

/** Runs a query on a fresh connection and returns all rows. */
export function query<T = Row>(path: string, sql: string, params: unknown[] = [], options: { safeIntegers?: boolean } = {}): T[] {
  const db = openDb(path, options);
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** Rows of a table keyed by a column, for "which rows changed" comparisons. */
export function rowsById(path: string, table: string, idColumn = 'id'): Map<unknown, Row> {
  return new Map(query(path, `SELECT * FROM "${table}"`).map((r) => [r[idColumn], r]));
}

export interface SpecRun {
  readonly plan: FixPlan;
  readonly summary: RunSummary;
  /** Record events, in the order they were reported. */
  readonly records: RecordEvent[];
  /** Every engine event. */
  readonly events: EngineEvent[];
  /** Adapter request counts (select, lookup, update). */
  readonly requests: Record<string, number>;
  /** Outcome/reason per record, keyed by the JSON of the record key's values (one column: the value itself). */
  readonly outcomes: Map<unknown, { outcome: string; reason?: string; message?: string }>;
}

export interface SpecRunOptions extends Omit<Partial<RunOptions>, 'onEvent'> {
  readonly env?: EnvSource;
  readonly onEvent?: (event: EngineEvent) => void;
  /** Lets a test put a wrapper (fault, concurrent writer) around the real adapter. */
  readonly wrap?: (adapter: Adapter) => Adapter;
}

export function compileYaml(yaml: string, env: EnvSource = {}): FixPlan {
  return compileSpec(loadSpecText(yaml, 'spec.yaml'), { env });
}

/** Loads, compiles and runs a spec against its SQLite target, as `runSpecFile` does. */
export async function runYaml(yaml: string, options: SpecRunOptions = {}): Promise<SpecRun> {
  const plan = compileYaml(yaml, options.env ?? {});
  if (plan.target.backend !== 'sqlite') throw new Error('runYaml is for SQLite specs');
  const dryRun = options.dryRun ?? false;
  const adapter = createSqliteAdapter(plan.target, { readonly: dryRun });
  const records: RecordEvent[] = [];
  const events: EngineEvent[] = [];
  try {
    await adapter.check(plan);
    const { env: _env, wrap, onEvent, ...rest } = options;
    const summary = await runFix(plan, wrap ? wrap(adapter) : adapter, {
      ...rest,
      dryRun,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'record') records.push(e);
        onEvent?.(e);
      },
    });
    const outcomes = new Map<unknown, { outcome: string; reason?: string; message?: string }>();
    for (const r of records) {
      const values = Object.values(r.key);
      const k = values.length === 1 ? values[0] : JSON.stringify(values, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
      outcomes.set(k, { outcome: r.outcome, ...(r.reason ? { reason: r.reason } : {}), ...(r.message ? { message: r.message } : {}) });
    }
    return { plan, summary, records, events, requests: adapter.stats(), outcomes };
  } finally {
    await adapter.close();
  }
}

/** A SQLite spec header pointing at `dbPath`. */
export function sqliteTarget(dbPath: string, extra = ''): string {
  return `target:\n  sqlite:\n    path: ${JSON.stringify(dbPath)}\n${extra}`;
}

/** The DatafixError `promise` rejects with (a test fails if it resolves or throws anything else). */
export async function refusal(promise: Promise<unknown>): Promise<DatafixError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DatafixError);
    return err as DatafixError;
  }
  throw new Error('expected a refusal');
}
