/**
 * Helpers for the safety acceptance tests: CLI processes the test can signal part-way (kill -9,
 * Ctrl-C), bounded polling, the `.datafix/` state a run leaves in its working directory, whole
 * SQLite databases and DynamoDB tables read back independently of datafix, and generated data.
 */

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AttributeValue, ScanCommand } from '@aws-sdk/client-dynamodb';
import Database from 'better-sqlite3';
import { afterEach } from 'vitest';
import { createVeo3Database, type SampleRow } from '../../src/demo/sqlite-sample.js';
import { BIN, type CliResult, TIME_SCALE } from '../helpers/cli.js';
import { createMediaTable, rawClient, seedItems } from '../helpers/dynalite.js';
import { noteChildStderr } from '../helpers/warnings.js';

export const SYNC_FIX = fileURLToPath(new URL('../../fixes/sync-media-generation-ids.yaml', import.meta.url));
export const I2V_FIX = fileURLToPath(new URL('../../fixes/i2v-thumbnails.yaml', import.meta.url));
export const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every `intervalMs` until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000) * TIME_SCALE;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(options.intervalMs ?? 10);
  }
}

// --- CLI processes the test can signal ---------------------------------------------------------

export interface RunningCli {
  readonly child: ChildProcessWithoutNullStreams;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects on a non-zero exit). */
  readonly done: Promise<CliResult>;
  stdout(): string;
  stderr(): string;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
const running = new Set<ChildProcessWithoutNullStreams>();

/** The environment `runCli` gives the CLI (CI=true, no colours), plus `env` (undefined removes). */
export function cliEnv(env: Readonly<Record<string, string | undefined>> = {}, base: { ci?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
  if (base.ci ?? true) out.CI = 'true';
  else delete out.CI;
  out.NO_COLOR = '1';
  delete out.FORCE_COLOR;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * Starts `node bin/datafix.js ARGS` like `runCli` does (no TTY, CI=true unless `ci: false`) but
 * returns at once, so the test can watch it and signal it. stdin stays open unless `input` is
 * given. Every process started here is SIGKILLed after the test if it is still running.
 */
export function startCli(
  args: readonly string[],
  options: { cwd: string; env?: Readonly<Record<string, string | undefined>>; ci?: boolean; input?: string; timeoutMs?: number },
): RunningCli {
  return startProcess(process.execPath, [BIN, ...args], options);
}

/** Starts any command with the CLI's environment; tracked and killed after the test like `startCli`. */
export function startProcess(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Readonly<Record<string, string | undefined>>; ci?: boolean; input?: string; timeoutMs?: number },
): RunningCli {
  const child = spawn(command, [...args], {
    cwd: options.cwd,
    env: cliEnv(options.env, { ci: options.ci ?? true }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), (options.timeoutMs ?? 60_000) * TIME_SCALE);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      running.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      noteChildStderr(`${command} ${args.join(' ')}`, err);
      resolve({ code: code ?? 128 + (SIGNALS[signal ?? ''] ?? 0), stdout: out, stderr: err });
    });
  });
  if (options.input !== undefined) child.stdin.end(options.input);
  return { child, pid: child.pid as number, done, stdout: () => out, stderr: () => err };
}

/** Registers an afterEach that SIGKILLs every process `startCli` started and is still running. */
export function killLeftoverProcesses(): void {
  afterEach(async () => {
    const left = [...running];
    for (const c of left) c.kill('SIGKILL');
    await Promise.all(left.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('close', r)))));
  });
}

// --- .datafix state in a working directory -----------------------------------------------------

export interface StateFile {
  readonly file: string;
  readonly fix: string;
  readonly status: 'running' | 'interrupted' | 'done';
  readonly pages: number;
  readonly records: number;
  readonly journal: string;
  readonly cursor?: unknown;
  /** Pages the run committed inside the target (SQLite). */
  readonly committedPages?: number;
  readonly specChecksum: string;
  readonly startedAt: string;
}

/** Every `.datafix/runs/*.state.json` under `dir` (a torn or half-written one is skipped). */
export function stateFiles(dir: string): StateFile[] {
  const runs = join(dir, '.datafix', 'runs');
  if (!existsSync(runs)) return [];
  const out: StateFile[] = [];
  for (const f of readdirSync(runs).filter((n) => n.endsWith('.state.json'))) {
    try {
      out.push({ file: join(runs, f), ...(JSON.parse(readFileSync(join(runs, f), 'utf8')) as Omit<StateFile, 'file'>) });
    } catch {
      // being replaced right now
    }
  }
  return out;
}

/** The one state file in `dir` (fails the test when there are several). */
export function onlyState(dir: string): StateFile | undefined {
  const all = stateFiles(dir);
  if (all.length > 1) throw new Error(`expected one state file in ${dir}, found ${all.length}`);
  return all[0];
}

/**
 * The pages a live SQLite run has committed, from its checkpoint row in `db` (0 before the first,
 * or while the row cannot be read): its progress as the database holds it, which the state file
 * follows at most once a second.
 */
export function committedPages(db: string): number {
  try {
    const reader = new Database(db, { readonly: true, fileMustExist: true, timeout: 0 });
    try {
      const row = reader.prepare('SELECT cursor FROM _datafix_checkpoints').get() as { cursor: string } | undefined;
      return row ? ((JSON.parse(row.cursor) as { pages?: number }).pages ?? 0) : 0;
    } finally {
      reader.close();
    }
  } catch {
    return 0;
  }
}

/**
 * The target lock files a test's runs can leave: next to SQLite databases in `dir`, and in the
 * test's DynamoDB lock directory (`DATAFIX_LOCK_DIR`, see test/helpers/lock-dir.ts).
 */
export function lockFiles(dir: string): string[] {
  const places = [dir, process.env.DATAFIX_LOCK_DIR].filter((d): d is string => d !== undefined && existsSync(d));
  return places.flatMap((d) =>
    readdirSync(d)
      .filter((f) => f.endsWith('.lock'))
      .map((f) => join(d, f)),
  );
}

/**
 * Parses a JSON Lines file (journal, plan). `completeOnly`: leaves out a last line without its
 * newline, as a SIGKILL mid-write leaves it (resume cuts it off the same way).
 */
export function jsonLines(file: string, options: { completeOnly?: boolean } = {}): Record<string, unknown>[] {
  let text = readFileSync(file, 'utf8');
  if (options.completeOnly) text = text.slice(0, text.lastIndexOf('\n') + 1);
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A journal's writes in file order, one object per write whatever its format (format 5 holds a
 * batch of writes on one `writes` line, numbered on from its `seq`; formats 1–4 a `write` line
 * each): `{ type: 'write', seq, action?, table?, key, fields }`.
 */
export function journalWrites(file: string): Record<string, unknown>[] {
  return perRecordJournalLines(jsonLines(file)).filter((l) => l.type === 'write');
}

/**
 * The writes of a format-5 `writes` line, `{ table?, key, fields: [{ name, before, after }] }`
 * each: from its `writes`, or from its `rows` under its shared `table` and `fields`.
 */
export function batchWrites(line: Record<string, unknown>): Record<string, unknown>[] {
  if (Array.isArray(line.writes)) return line.writes as Record<string, unknown>[];
  const names = line.fields as string[];
  return (line.rows as unknown[][]).map((row) => ({
    ...(line.table !== undefined ? { table: line.table } : {}),
    key: row[0],
    fields: names.map((name, j) => ({ name, before: row[1 + 2 * j], after: row[2 + 2 * j] })),
  }));
}

/** A journal's write outcomes in file order, one object per outcome: `{ type: 'result', seq, status, stored? }`. */
export function journalResults(file: string): Record<string, unknown>[] {
  return perRecordJournalLines(jsonLines(file)).filter((l) => l.type === 'result');
}

/**
 * A journal's lines as formats 1–4 have them (datafix versions before batched lines wrote
 * these): each batch's `writes` line becomes a `write` line per write, each `results` line a
 * `result` line per outcome; `sum` is dropped (the caller recomputes or omits it).
 */
export function perRecordJournalLines(lines: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return lines.flatMap(({ sum: _sum, ...l }) => {
    if (l.type === 'writes') return batchWrites(l).map((w, i) => ({ type: 'write', seq: (l.seq as number) + i, ...w }));
    if (l.type === 'results') return (l.results as Record<string, unknown>[]).map((r) => ({ type: 'result', ...r }));
    return [l];
  });
}

/**
 * Journal text of `lines` with each line's checksum chained from the header's, as the journal
 * format defines it (sha256 of the previous sum, a newline and the line without its sum; the
 * first 32 hex digits), computed here without datafix: what a tool that rewrote a journal writes.
 */
export function sealedJournalText(lines: readonly Record<string, unknown>[]): string {
  let sum = '';
  return lines
    .map(({ sum: _old, ...l }) => {
      const body = JSON.stringify(l);
      sum = createHash('sha256').update(`${sum}\n${body}`).digest('hex').slice(0, 32);
      return `${body.slice(0, -1)},"sum":"${sum}"}\n`;
    })
    .join('');
}

/** The single JSON object a `--json` command prints on stdout. */
export function jsonSummary(r: CliResult): Record<string, unknown> {
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1) throw new Error(`expected one JSON line on stdout, got:\n${r.stdout}\n--- stderr:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

/** A short view of a CLI result for assertion messages. */
export function show(r: CliResult): string {
  return `exit ${r.code}\n--- stdout (tail):\n${r.stdout.slice(-1500)}\n--- stderr (tail):\n${r.stderr.slice(-3000)}`;
}

// --- SQLite ------------------------------------------------------------------------------------

/**
 * A copy of the shipped i2v fix in `dir` that reads `pageSize` videos per query page instead of
 * 200, so a test can run through several pages of a small table (a slow machine runs few items).
 */
export function i2vSpecWithPageSize(dir: { write(name: string, text: string): string }, pageSize: number): string {
  const text = readFileSync(I2V_FIX, 'utf8');
  const edited = text.replace(/pageSize: 200\b/, `pageSize: ${pageSize}`);
  if (edited === text) throw new Error('could not set the i2v spec page size');
  return dir.write(`i2v-pages-of-${pageSize}.yaml`, edited);
}

/**
 * A copy of the shipped sync fix in `dir` whose target waits only `busyTimeoutMs` for a locked
 * database (the shipped one waits 5 s), so a test can make a live run fail fast with DF411.
 */
export function syncSpecWithBusyTimeout(dir: { write(name: string, text: string): string }, busyTimeoutMs: number): string {
  const text = readFileSync(SYNC_FIX, 'utf8');
  const edited = text.replace(/path: \$\{VEO3_DB_PATH:-[^}]*\}/, `path: \${VEO3_DB_PATH}\n    busyTimeoutMs: ${busyTimeoutMs}`);
  if (edited === text) throw new Error('could not set busyTimeoutMs in the sync spec');
  return dir.write('sync-busy.yaml', edited);
}

/**
 * SIGSTOPs a process writing `db` at a moment it holds no SQLite lock (between two
 * transactions), so that other connections can read and write the database while it is paused.
 */
export async function pauseBetweenTransactions(writer: { kill(signal: NodeJS.Signals): boolean }, db: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    writer.kill('SIGSTOP');
    const probe = new Database(db, { fileMustExist: true, timeout: 0 });
    try {
      probe.exec('BEGIN IMMEDIATE; ROLLBACK');
      return;
    } catch (err) {
      if (attempt > 500 || !String((err as { code?: string }).code).startsWith('SQLITE_BUSY')) throw err;
    } finally {
      probe.close();
    }
    writer.kill('SIGCONT');
    await sleep(2);
  }
}

/**
 * Runs `fn` while another connection holds the database's write lock (BEGIN IMMEDIATE: others
 * still read), or with `exclusive` its exclusive lock (others cannot even read).
 */
export async function whileWriteLocked<T>(path: string, fn: () => Promise<T>, options: { exclusive?: boolean } = {}): Promise<T> {
  const app = new Database(path, { fileMustExist: true });
  if (options.exclusive) app.pragma('locking_mode = EXCLUSIVE');
  app.exec(options.exclusive ? 'BEGIN EXCLUSIVE' : 'BEGIN IMMEDIATE');
  try {
    return await fn();
  } finally {
    app.exec('ROLLBACK');
    app.close();
  }
}

export interface SqliteDump {
  /** Every schema object: type, name and SQL, sorted by name. */
  readonly schema: { type: string; name: string; sql: string | null }[];
  /** Every row of every table, in rowid order, integers exact (bigint). */
  readonly rows: Record<string, Record<string, unknown>[]>;
}

/**
 * A read-only connection to `path`. A process SIGKILLed inside a write transaction leaves a hot
 * rollback journal, which a read-only connection may not roll back (SQLITE_READONLY_ROLLBACK):
 * then one read-write connection reads once, rolling it back as any next connection (datafix's
 * own --resume included) would, and the read-only one is opened again.
 */
function openForReading(path: string): Database.Database {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return db;
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_READONLY_ROLLBACK') throw err;
    const recover = new Database(path, { fileMustExist: true });
    try {
      recover.prepare('SELECT count(*) FROM sqlite_master').get();
    } finally {
      recover.close();
    }
    return new Database(path, { readonly: true, fileMustExist: true });
  }
}

/** Reads the whole database with an independent connection: every table, every row. */
export function dumpSqlite(path: string): SqliteDump {
  const db = openForReading(path);
  try {
    db.defaultSafeIntegers(true);
    const schema = db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all() as SqliteDump['schema'];
    const rows: Record<string, Record<string, unknown>[]> = {};
    for (const t of schema.filter((s) => s.type === 'table' && !s.name.startsWith('sqlite_'))) {
      rows[t.name] = db.prepare(`SELECT * FROM "${t.name.replace(/"/g, '""')}" ORDER BY rowid`).all() as Record<string, unknown>[];
    }
    return { schema, rows };
  } finally {
    db.close();
  }
}

export function tableNames(path: string): string[] {
  return dumpSqlite(path)
    .schema.filter((s) => s.type === 'table')
    .map((s) => s.name);
}

export function sqliteExec(path: string, sql: string, ...params: unknown[]): void {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

export function sqliteAll<T = Record<string, unknown>>(path: string, sql: string, ...params: unknown[]): T[] {
  const db = openForReading(path);
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** id → media_generation_id (and updated_at) of every row. */
export function generationIds(path: string): Map<string, { mgid: string | null; updatedAt: string | null }> {
  return new Map(
    sqliteAll<{ id: string; media_generation_id: string | null; updated_at: string | null }>(
      path,
      'SELECT id, media_generation_id, updated_at FROM veo3_video_generations',
    ).map((r) => [r.id, { mgid: r.media_generation_id, updatedAt: r.updated_at }]),
  );
}

/**
 * A generated VEO3 database of `count` rows in every shape the sync fix reads, plus an unrelated
 * `app_settings` table that no fix touches. Returns the id each row must end with after the fix
 * (its current value when the fix must leave it alone).
 */
export function createGeneratedVeo3Db(
  path: string,
  count: number,
  options: { invalidJsonEvery?: number } = {},
): { expected: Map<string, string | null>; updatable: string[] } {
  const op = (fields: Record<string, unknown>) => ({ status: 'MEDIA_GENERATION_STATUS_SUCCESSFUL', ...fields });
  const nested = (id: string) => ({ operation: { metadata: { video: { mediaGenerationId: id } } } });
  const rows: SampleRow[] = [];
  const expected = new Map<string, string | null>();
  const updatable: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `gen-${String(i).padStart(6, '0')}`;
    const want = `MG-${i}-${(i * 7919) % 10007}`;
    let raw: string | null;
    let result: string | null = want;
    switch (i % 7) {
      case 0:
        raw = JSON.stringify({ operations: [op({ mediaGenerationId: want })] });
        break;
      case 1:
        raw = JSON.stringify({ operations: [op(nested(want))] });
        break;
      case 2:
        raw = JSON.stringify({ raw: { operations: [op({ mediaGenerationId: want })] } });
        break;
      case 3:
        raw = JSON.stringify({ raw: { operations: [op(nested(want))] } });
        break;
      case 4:
        raw = JSON.stringify({ operations: [op({ mediaGenerationId: '', ...nested(want) })] });
        break;
      case 5:
        raw = JSON.stringify({ operations: [op({ status: 'MEDIA_GENERATION_STATUS_FAILED' })] });
        result = null;
        break;
      default:
        raw = i % 2 ? null : JSON.stringify({ operations: [] });
        result = null;
    }
    if (options.invalidJsonEvery && i % options.invalidJsonEvery === options.invalidJsonEvery - 1) {
      raw = '{"operations": [ {"mediaGenerationId": "trunc';
      result = null;
    }
    if (i % 37 === 36) {
      rows.push({ id, raw_response: raw, media_generation_id: `KEEP-${i}`, updated_at: '2024-12-31T23:59:59.000Z' });
      expected.set(id, `KEEP-${i}`);
      continue;
    }
    rows.push({ id, raw_response: raw, media_generation_id: null });
    expected.set(id, result);
    if (result !== null) updatable.push(id);
  }
  createVeo3Database(path, rows);
  const db = new Database(path);
  try {
    db.exec(`CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT, big INTEGER);
      CREATE INDEX idx_gen_status ON veo3_video_generations (status);`);
    const ins = db.prepare('INSERT INTO app_settings (key, value, big) VALUES (?, ?, ?)');
    ins.run('theme', 'dark', 9007199254740993n);
    ins.run('lastSync', null, -1n);
  } finally {
    db.close();
  }
  return { expected, updatable };
}

// --- DynamoDB ----------------------------------------------------------------------------------

export type RawItem = Record<string, AttributeValue>;

/** Sorts set members so that two scans of equal items compare equal (sets have no order). */
export function canonical(v: AttributeValue): AttributeValue {
  if (v.SS) return { SS: [...v.SS].sort() };
  if (v.NS) return { NS: [...v.NS].sort() };
  if (v.M) return { M: Object.fromEntries(Object.entries(v.M).map(([k, x]) => [k, canonical(x)])) };
  if (v.L) return { L: v.L.map(canonical) };
  return v;
}

/** Every item of a table in the low-level form (exact number texts, sets), sorted by key. */
export async function scanRaw(endpoint: string, table: string): Promise<RawItem[]> {
  const client = rawClient(endpoint);
  const out: RawItem[] = [];
  try {
    let start: RawItem | undefined;
    do {
      const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start, ConsistentRead: true }));
      for (const item of page.Items ?? []) out.push(Object.fromEntries(Object.entries(item).map(([k, v]) => [k, canonical(v)])));
      start = page.LastEvaluatedKey;
    } while (start);
  } finally {
    client.destroy();
  }
  return out.sort((a, b) => {
    const ka = `${a.PK?.S}\u0000${a.SK?.S}`;
    const kb = `${b.PK?.S}\u0000${b.SK?.S}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** An item with its set members sorted, as `scanRaw` returns it. */
export function canonicalItem(item: RawItem): RawItem {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, canonical(v)]));
}

export const pkOf = (i: RawItem): string => String(i.PK?.S);

/** The environment that points fixes/i2v-thumbnails.yaml at a table behind an endpoint. */
export function dynamoEnv(table: string, endpoint: string): Record<string, string | undefined> {
  return {
    DYNAMODB_TABLE: table,
    LOCAL_AWS_ENDPOINT: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
  };
}

/**
 * Videos with their I2V jobs and source images, in eight kinds cycled: full fills, partial fills,
 * every skip reason, and thumbnail maps with nested values. Returns the items to seed and the
 * PKs of the videos the fix must update.
 */
export function videoDataset(count: number, prefix = 'v'): { items: Record<string, unknown>[]; updatable: string[] } {
  const items: Record<string, unknown>[] = [];
  const updatable: string[] = [];
  const thumbs = (id: string) => ({
    thumbnailUrl: `https://cdn.example.com/${id}/t.jpg`,
    thumbnailUrls: { small: `https://cdn.example.com/${id}/s.jpg`, large: `https://cdn.example.com/${id}/l.jpg`, dims: [320, 1080] },
  });
  for (let i = 0; i < count; i++) {
    const id = `${prefix}${String(i).padStart(5, '0')}`;
    const createdAt = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString();
    const video: Record<string, unknown> = {
      PK: `MEDIA#${id}`,
      SK: 'METADATA',
      id,
      type: 'video',
      createdAt,
      updatedAt: createdAt,
      GSI8PK: 'MEDIA_BY_TYPE_AND_CREATOR',
      GSI8SK: `video#${createdAt}#${id}`,
    };
    const img = `img-${id}`;
    const kind = i % 8;
    if (kind === 1) video.thumbnailUrl = `https://own.example.com/${id}.jpg`;
    if (kind === 2) Object.assign(video, thumbs(id)); // already_has_thumbnails
    items.push(video);
    if (kind === 3) continue; // no_i2v_job_found
    items.push({ PK: `I2VJOB#${id}`, SK: 'METADATA', jobId: id, mediaId: img, status: 'COMPLETED' });
    if (kind === 4) continue; // source_media_not_found
    const source: Record<string, unknown> = { PK: `MEDIA#${img}`, SK: 'METADATA', id: img, type: 'image', createdAt };
    if (kind === 5) {
      // source_has_no_thumbnails
    } else if (kind === 6) source.thumbnailUrl = thumbs(img).thumbnailUrl;
    else Object.assign(source, thumbs(img));
    items.push(source);
    if (kind !== 2 && kind !== 5) updatable.push(`MEDIA#${id}`);
  }
  return { items, updatable };
}

/** An item without its `updatedAt`, for "equal apart from the run's timestamp". */
export function withoutUpdatedAt(item: RawItem): RawItem {
  const { updatedAt: _ignored, ...rest } = item;
  return rest;
}

/**
 * A fix that scans a DynamoDB table (`${TABLE}` at `${ENDPOINT}`) 10 items a page and copies each
 * item's `n` into `copyOfN`: every item is updated, and each once.
 */
export function markItemsSpec(dir: { write(name: string, text: string): string }): string {
  return dir.write(
    'mark.yaml',
    `name: mark-items
target:
  dynamodb: { table: "\${TABLE}", endpoint: "\${ENDPOINT}", region: us-east-1 }
source:
  as: item
  scan: { pageSize: 10 }
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set: { copyOfN: "{{ item.n }}" }
`,
  );
}

/** Creates `table` at `endpoint` holding `count` items `{PK: ITEM#i, SK: METADATA, n: i}`, the items `markItemsSpec`'s fix updates. */
export async function markItemsTable(endpoint: string, table: string, count: number): Promise<string> {
  await createMediaTable(endpoint, table);
  await seedItems(
    endpoint,
    table,
    Array.from({ length: count }, (_, i) => ({ PK: `ITEM#${i}`, SK: 'METADATA', n: i })),
  );
  return table;
}

/** How many items `table` holds, and how many of them the mark-items fix wrote (copyOfN equal to n), read from the table. */
export async function markedItems(endpoint: string, table: string): Promise<{ items: number; marked: number }> {
  const items = await scanRaw(endpoint, table);
  return { items: items.length, marked: items.filter((i) => i.copyOfN !== undefined && i.copyOfN.N === i.n?.N).length };
}

/** Makes a new media table seeded with `items` on each call (`<prefix>-1`, `<prefix>-2`, …). */
export function seededTables(
  endpoint: () => string,
  items: () => readonly Record<string, unknown>[],
  prefix: string,
): () => Promise<string> {
  let n = 0;
  return async () => {
    const table = `${prefix}-${++n}`;
    await createMediaTable(endpoint(), table);
    await seedItems(endpoint(), table, items());
    return table;
  };
}
