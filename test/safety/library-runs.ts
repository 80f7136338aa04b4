/**
 * Live runs through the library in the test process (`loadPlan` + `runPlanSafely`), so that the
 * run state, journal and undo code they exercise is the source Stryker mutates, not the build the
 * CLI tests spawn. A small `orders` table on a real SQLite file is the data; every expected value
 * is written here.
 */
import { afterAll, beforeAll, expect, onTestFinished } from 'vitest';
import { loadPlan } from '../../src/api.js';
import { DatafixError } from '../../src/errors.js';
import type { TargetPlan } from '../../src/plan/types.js';
import { TargetLock } from '../../src/safety/lock.js';
import { runPlanSafely, type SafeRunOptions, type SafeRunResult, stateSaves } from '../../src/safety/session.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import type { TempDir } from '../helpers/tmp.js';
import { createDb } from '../sqlite/fixtures.js';

/** One row of the `orders` table. */
export interface Order {
  readonly id: number;
  readonly status: string | null;
  readonly note: string | null;
}

/** `count` orders: ids 1..count, status `canceled`, note `note i`. */
export function cancelledOrders(count: number): Order[] {
  return Array.from({ length: count }, (_, i) => ({ id: i + 1, status: 'canceled', note: `note ${i + 1}` }));
}

/** Creates `orders (id INTEGER PRIMARY KEY, status TEXT, note TEXT)` in `path` holding `rows`. */
export function createOrdersDb(path: string, rows: readonly Order[]): void {
  const q = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);
  const values = rows.map((r) => `(${r.id}, ${q(r.status)}, ${q(r.note)})`);
  createDb(
    path,
    `CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, note TEXT);${values.length ? ` INSERT INTO orders VALUES ${values.join(',')};` : ''}`,
  );
}

/**
 * Renames status `canceled` to `cancelled`, `pageSize` orders a page (a page is a checkpoint);
 * an order already `cancelled` is skipped as `already_renamed`. The target waits `busyTimeoutMs`
 * for a database another connection has locked.
 */
export function renameSpec(pageSize: number, busyTimeoutMs = 5000): string {
  return `name: rename-status
target: { sqlite: { path: "\${DB}", busyTimeoutMs: ${busyTimeoutMs} } }
source: { table: orders, as: order, pageSize: ${pageSize} }
skip:
  - { reason: already_renamed, when: { equals: { order.status: cancelled } } }
update:
  table: orders
  key: { id: "{{ order.id }}" }
  set: { status: cancelled }
  overwrite: [status]
`;
}

/** A fix spec written to `dir`, with the variables its target is spelled with. */
export interface LibraryFix {
  readonly dir: TempDir;
  /** The SQLite database (`${DB}`); empty for a DynamoDB target. */
  readonly db: string;
  readonly spec: string;
  readonly env: Readonly<Record<string, string>>;
}

/** Writes `specText` to `dir` as `fix.yaml`, for the database `db` (its `${DB}`). */
export function libraryFix(dir: TempDir, db: string, specText: string): LibraryFix {
  return { dir, db, spec: dir.write('fix.yaml', specText), env: { DB: db } };
}

/** Writes `specText` to `dir` as `fix.yaml`, for a DynamoDB `table` at `endpoint` (`${TABLE}`, `${ENDPOINT}`). */
export function dynamoFix(dir: TempDir, endpoint: string, table: string, specText: string): LibraryFix {
  return { dir, db: '', spec: dir.write('fix.yaml', specText), env: { TABLE: table, ENDPOINT: endpoint } };
}

/**
 * A live run of `fix` with `dir` as the working directory (its `.datafix/` holds the state and the
 * journal), as `datafix run` does it.
 */
export function liveRun(fix: LibraryFix, options: Partial<SafeRunOptions> = {}): Promise<SafeRunResult> {
  const plan = loadPlan(fix.spec, { env: fix.env });
  return runPlanSafely(plan, { cwd: fix.dir.path, specFile: fix.spec, dryRun: false, ...options });
}

/**
 * For the calling test: a SQLite run saves its state file after every page, as a DynamoDB run
 * does, instead of at most once a second (its position is committed in the database anyway).
 */
export function saveStateEveryPage(): void {
  const { intervalMs } = stateSaves;
  stateSaves.intervalMs = 0;
  onTestFinished(() => {
    stateSaves.intervalMs = intervalMs;
  });
}

/** Options that stop a live run (as Ctrl-C does) once its `pages`th page is being written: that page still finishes, no later one is written. */
export function stopAfterPages(pages: number): Pick<SafeRunOptions, 'signal' | 'onEvent'> {
  const stop = new AbortController();
  let seen = 0;
  return {
    signal: stop.signal,
    onEvent: (e) => {
      // Once the page is being written: where pages overlap, the next one is then already
      // read, and its `page` event would come after the page after it is being written too.
      if (e.type === 'writing' && ++seen >= pages) stop.abort();
    },
  };
}

/**
 * Starts dynalite for the calling `describe` (stopped after it) and makes a new media table per
 * call (`<prefix>-1`, `<prefix>-2`, …) holding `items`.
 */
export function useDynaliteTables(prefix: string): {
  endpoint(): string;
  table(items: readonly Record<string, unknown>[]): Promise<string>;
} {
  let dynamo: RunningDynalite | undefined;
  let made = 0;
  beforeAll(async () => {
    dynamo = await startDynalite();
  });
  afterAll(async () => {
    await dynamo?.stop();
  });
  const endpoint = () => (dynamo as RunningDynalite).endpoint;
  return {
    endpoint,
    async table(items) {
      const table = `${prefix}-${++made}`;
      await createMediaTable(endpoint(), table);
      await seedItems(endpoint(), table, items);
      return table;
    },
  };
}

/** What `p` rejects with, or undefined when it resolves. */
export function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/**
 * As `datafix unlock --force` followed by another process's run: the lock on `target` is cleared
 * and taken by another fix. The caller releases the returned lock.
 */
export function takeLockOver(target: TargetPlan, spec: string): TargetLock {
  expect(TargetLock.clear(target, undefined, true)).toBe('cleared');
  return TargetLock.acquire(target, { fix: 'another-fix', spec, purpose: 'run' });
}

/**
 * The error a refused call throws (fails the test when it does not throw one), of `category`:
 * a refusal the person mends themselves is `usage` (exit 2, no stack).
 */
export async function refusal(p: Promise<unknown>, category = 'usage'): Promise<DatafixError> {
  const err = await rejectionOf(p);
  expect(err).toBeInstanceOf(DatafixError);
  expect((err as DatafixError).category).toBe(category);
  return err as DatafixError;
}
