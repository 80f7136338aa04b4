/**
 * The engine's write loop, in the test process on real SQLite files: before-images reach the
 * journal before a batch is sent, throttled writes are requeued with backoff at a lower
 * concurrency until they land or run out of requeues, and what the run reports per record and in
 * its summary. SQLite is never throttled, so the throttling answer (`retry`, what the DynamoDB
 * adapter returns once the SDK's own retries ran out) is put in front of the real adapter's
 * `write`; every write that lands is the real adapter's. Expected values are written here.
 */
import { describe, expect, it, vi } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { Adapter, WriteOptions, WriteRequest, WriteResult } from '../../src/adapters/types.js';
import type { EngineEvent } from '../../src/engine/events.js';
import { type CheckpointProgress, type CheckpointSink, runFix, stoppedWhileWaiting, type WriteJournal } from '../../src/engine/run.js';
import { DatafixError } from '../../src/errors.js';
import { plan, scanSource, target } from '../dynamodb/fixtures.js';
import { createMediaTable, mediaItem, seedItems, startDynalite } from '../helpers/dynalite.js';
import { startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { scanAll } from '../reliability/support.js';
import { createDb, openDb, query, runYaml, sqliteTarget } from '../sqlite/fixtures.js';

const tmp = useTempDirs();

/** `items (id INTEGER PRIMARY KEY, status TEXT)` holding ids 1..count, status `old`. */
function itemsDb(count: number): string {
  const path = tmp().file('items.db');
  const rows = Array.from({ length: count }, (_, i) => `(${i + 1}, 'old')`).join(',');
  createDb(path, `CREATE TABLE items (id INTEGER PRIMARY KEY, status TEXT); INSERT INTO items VALUES ${rows}`);
  return path;
}

/** Sets status `new` on every item, overwriting. */
const renameSpec = (db: string, batchSize: number) =>
  `name: rename\n${sqliteTarget(db)}source: { as: item, table: items }\n` +
  `update:\n  key: { id: "{{ item.id }}" }\n  set: { status: new }\n  overwrite: true\nrun: { batchSize: ${batchSize} }\n`;

const statuses = (db: string) => query<{ id: number; status: string }>(db, 'SELECT id, status FROM items ORDER BY id').map((r) => r.status);

/** One call of the adapter's `write`: the keys it carried and the options it was given. */
interface WriteCall {
  readonly ids: unknown[];
  readonly concurrency: number;
  readonly resend: boolean;
}

/**
 * Answers the first `throttledCalls` write calls with `retry` (nothing written, as a throttled
 * DynamoDB request writes nothing) and passes the others to the real adapter; logs every call
 * into `log` and `calls`.
 */
function throttling(
  throttledCalls: number,
  calls: WriteCall[],
  log: string[],
  message = 'throughput exceeded',
  times: number[] = [],
): (a: Adapter) => Adapter {
  return (a) => ({
    ...a,
    readPages: a.readPages.bind(a),
    write: async (requests: readonly WriteRequest[], options: WriteOptions): Promise<WriteResult[]> => {
      times.push(performance.now());
      calls.push({ ids: requests.map((r) => r.key.id), concurrency: options.concurrency, resend: options.resend === true });
      log.push(`write ${requests.map((r) => r.key.id).join(',')}`);
      if (calls.length <= throttledCalls) return requests.map(() => ({ status: 'retry', message }));
      return a.write(requests, options);
    },
  });
}

/** A journal that logs what it is told, in order. */
function loggingJournal(log: string[]): WriteJournal {
  return {
    intend: (requests) => {
      log.push(`intend ${requests.map((r) => `${r.key.id}:${r.fields.map((f) => `${f.name}=${String(f.before)}`).join(';')}`).join(',')}`);
    },
    settle: (requests, results) => {
      log.push(`settle ${requests.map((r, i) => `${r.key.id}:${results[i]?.status}`).join(',')}`);
    },
  };
}

describe('throttled writes', () => {
  it('are requeued until they land: half the concurrency per throttled attempt, one step back per clean batch, sent again as resends', async () => {
    const db = itemsDb(4);
    const calls: WriteCall[] = [];
    const log: string[] = [];
    const times: number[] = [];
    const throttled: Extract<EngineEvent, { type: 'throttled' }>[] = [];
    const run = await runYaml(renameSpec(db, 2), {
      concurrency: 8,
      retryBaseMs: 100,
      wrap: throttling(2, calls, log, 'throughput exceeded', times),
      journal: loggingJournal(log),
      onEvent: (e) => e.type === 'throttled' && throttled.push(e),
    });
    expect(run.summary).toMatchObject({ total: 4, updated: 4, skipped: 0, failed: 0, reasons: {} });
    expect(statuses(db)).toEqual(['new', 'new', 'new', 'new']);
    // The first batch: throttled at 8 and at 4, lands at 2 (then 3); the second batch lands at 3.
    expect(calls).toEqual([
      { ids: [1, 2], concurrency: 8, resend: false },
      { ids: [1, 2], concurrency: 4, resend: true },
      { ids: [1, 2], concurrency: 2, resend: true },
      { ids: [3, 4], concurrency: 3, resend: false },
    ]);
    expect(throttled.map((e) => ({ records: e.records, concurrency: e.concurrency }))).toEqual([
      { records: 2, concurrency: 4 },
      { records: 2, concurrency: 2 },
    ]);
    // Backoff: base × 2^attempt, jittered down to no less than half of it.
    const [first, second] = throttled.map((e) => e.waitMs);
    expect(first).toBeGreaterThanOrEqual(50);
    expect(first).toBeLessThanOrEqual(100);
    expect(second).toBeGreaterThanOrEqual(100);
    expect(second).toBeLessThanOrEqual(200);
    // …and each requeue is sent only after a wait. (Timers count from the event loop's cached
    // clock, which lags under load, so a timer may end early by that lag: half the wait is asserted.)
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual((first as number) / 2);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual((second as number) / 2);
    // Before-images are journaled once per batch, before its first attempt; every attempt's
    // answer is settled before the next is sent.
    expect(log).toEqual([
      'intend 1:status=old,2:status=old',
      'write 1,2',
      'settle 1:retry,2:retry',
      'write 1,2',
      'settle 1:retry,2:retry',
      'write 1,2',
      'settle 1:applied,2:applied',
      'intend 3:status=old,4:status=old',
      'write 3,4',
      'settle 3:applied,4:applied',
    ]);
  });

  it('a write still throttled after its last requeue fails with reason throttled and the backend message; its record keeps its value', async () => {
    const db = itemsDb(2);
    const calls: WriteCall[] = [];
    const run = await runYaml(renameSpec(db, 1), {
      concurrency: 4,
      retryBaseMs: 1,
      maxRequeues: 2,
      // Item 1's three attempts are throttled; item 2's batch lands.
      wrap: throttling(3, calls, [], 'Throughput exceeds the current capacity of your table'),
    });
    expect(calls.map((c) => c.ids)).toEqual([[1], [1], [1], [2]]);
    expect(run.summary).toMatchObject({ total: 2, updated: 1, skipped: 0, failed: 1, reasons: { throttled: 1 } });
    expect(run.outcomes.get(1)).toEqual({
      outcome: 'failed',
      reason: 'throttled',
      message: 'Throughput exceeds the current capacity of your table',
    });
    expect(statuses(db)).toEqual(['old', 'new']);
    // A batch that gave up still halved the concurrency: the next batch is sent at 1, not 4.
    expect(calls.map((c) => c.concurrency)).toEqual([4, 2, 1, 1]);
  });
  it('by default the first requeue waits 100–200 ms; no wait is longer than 20 s, however many requeues came before', async () => {
    const db = itemsDb(1);
    const waits: number[] = [];
    await runYaml(renameSpec(db, 1), {
      wrap: throttling(1, [], []),
      onEvent: (e) => e.type === 'throttled' && waits.push(e.waitMs),
    });
    expect(statuses(db)).toEqual(['new']);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThanOrEqual(100);
    expect(waits[0]).toBeLessThanOrEqual(200);

    // A base of 100 s would wait 50–100 s at once: the wait is capped at 20 s (jittered to 10–20 s).
    // The clock is a fake one, moved on by the wait as soon as it is announced.
    const capped = itemsDb(1);
    const longWaits: number[] = [];
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      await runYaml(renameSpec(capped, 1), {
        retryBaseMs: 100_000,
        wrap: throttling(1, [], []),
        onEvent: (e) => {
          if (e.type !== 'throttled') return;
          longWaits.push(e.waitMs);
          // The engine's timer is set right after this event; move the clock past it then.
          queueMicrotask(() => vi.advanceTimersByTime(20_000));
        },
      });
    } finally {
      vi.useRealTimers();
    }
    expect(statuses(capped)).toEqual(['new']);
    expect(longWaits).toHaveLength(1);
    expect(longWaits[0]).toBeGreaterThanOrEqual(10_000);
    expect(longWaits[0]).toBeLessThanOrEqual(20_000);
  });
});

describe('checkpoints', () => {
  /** Items 1..5 with 3 and 4 already `new`, renamed in pages of 2, one write per batch. */
  async function checkpointedRun(dryRun: boolean) {
    const db = tmp().file('checkpoints.db');
    createDb(
      db,
      "CREATE TABLE items (id INTEGER PRIMARY KEY, status TEXT); INSERT INTO items VALUES (1, 'old'), (2, 'old'), (3, 'new'), (4, 'new'), (5, 'old')",
    );
    const saves: ({ cursor: unknown } & CheckpointProgress)[] = [];
    const sink: CheckpointSink = {
      id: 'fix-1',
      save: (cursor, progress) => {
        saves.push({ cursor, ...progress });
      },
      encode: (cursor, progress) => JSON.stringify({ cursor, ...progress }),
    };
    const writes: { ids: unknown[]; checkpoint: string | undefined }[] = [];
    const run = await runYaml(
      renameSpec(db, 1).replace('source: { as: item, table: items }', 'source: { as: item, table: items, pageSize: 2 }'),
      {
        dryRun,
        checkpoint: sink,
        wrap: (a) => ({
          ...a,
          readPages: a.readPages.bind(a),
          write: (requests, options) => {
            writes.push({ ids: requests.map((r) => r.key.id), checkpoint: options.checkpoint?.cursor });
            return a.write(requests, options);
          },
        }),
      },
    );
    return { db, run, saves, writes };
  }

  it('each page is saved once its writes are done, with the run so far; the target keeps the position with the page’s last write', async () => {
    const { db, run, saves, writes } = await checkpointedRun(false);
    expect(run.summary).toMatchObject({ total: 5, updated: 3, skipped: 2, reasons: { no_change: 2 } });
    expect(saves).toEqual([
      { cursor: [2], pages: 1, records: 2, updated: 2, skipped: 0, failed: 0, reasons: {} },
      { cursor: [4], pages: 2, records: 4, updated: 2, skipped: 2, failed: 0, reasons: { no_change: 2 } },
      { cursor: undefined, pages: 3, records: 5, updated: 3, skipped: 2, failed: 0, reasons: { no_change: 2 } },
    ]);
    // Page 2 writes nothing, so it leaves the target untouched; pages 1 and 3 commit their
    // position in the transaction of their last write, with how many writes the page sends
    // (page 1: two, in batches of one).
    expect(writes).toEqual([
      { ids: [1], checkpoint: undefined },
      { ids: [2], checkpoint: '{"cursor":[2],"pages":1,"records":2,"writes":2}' },
      { ids: [5], checkpoint: '{"pages":3,"records":5,"writes":1}' },
    ]);
    expect(query(db, 'SELECT id, cursor FROM _datafix_checkpoints')).toEqual([
      { id: 'fix-1', cursor: '{"pages":3,"records":5,"writes":1}' },
    ]);
    expect(statuses(db)).toEqual(['new', 'new', 'new', 'new', 'new']);
  });

  it('a dry run saves no checkpoint and writes nothing', async () => {
    const { db, run, saves, writes } = await checkpointedRun(true);
    expect(run.summary).toMatchObject({ total: 5, updated: 3, skipped: 2 });
    expect(saves).toEqual([]);
    expect(writes).toEqual([]);
    expect(query(db, "SELECT name FROM sqlite_master WHERE name = '_datafix_checkpoints'")).toEqual([]);
    expect(statuses(db)).toEqual(['old', 'old', 'new', 'new', 'old']);
  });
});

describe('what each record reports', () => {
  it('a write the backend gave no answer for counts failed (write_failed), never updated', async () => {
    const db = itemsDb(2);
    const run = await runYaml(renameSpec(db, 2), {
      // An answer for the first write only; nothing is written.
      wrap: (a) => ({ ...a, readPages: a.readPages.bind(a), write: async () => [{ status: 'applied' }] }),
    });
    expect(run.summary).toMatchObject({ total: 2, updated: 1, failed: 1, reasons: { write_failed: 1 } });
    expect(run.outcomes.get(2)).toEqual({ outcome: 'failed', reason: 'write_failed', message: 'no result from the backend' });
  });

  it('an update names the record written and its changes; skips and failures carry only their reason (and message)', async () => {
    const path = tmp().file('events.db');
    createDb(
      path,
      'CREATE TABLE src (id INTEGER PRIMARY KEY, target_id TEXT, json TEXT); CREATE TABLE dst (id TEXT PRIMARY KEY, label TEXT);' +
        "INSERT INTO src VALUES (1, 'd1', '{\"l\":\"one\"}'), (2, 'd2', '{\"l\":\"two\"}'), (3, 'd3', 'not json'), (4, NULL, '{\"l\":\"four\"}');" +
        "INSERT INTO dst VALUES ('d1', NULL), ('d2', 'two')",
    );
    const started = performance.now();
    const run = await runYaml(
      `name: events\n${sqliteTarget(path)}source: { as: s, table: src }\n` +
        'extract:\n  label: { from: s.json, parse: json, path: $.l }\n' +
        'update:\n  table: dst\n  key: { id: "{{ s.target_id }}" }\n  set: { label: "{{ label }}" }\n',
    );
    const elapsed = performance.now() - started;
    expect(run.events[0]).toEqual({ type: 'start', fix: 'events', dryRun: false, backend: 'sqlite' });
    const byId = new Map(run.records.map((r) => [r.key.id, r]));
    expect(byId.get(1)).toEqual({
      type: 'record',
      outcome: 'updated',
      key: { id: 1 },
      changes: [{ field: 'label', before: null, after: 'one', guard: 'absent' }],
      target: { table: 'dst', key: { id: 'd1' } },
    });
    expect(byId.get(2)).toEqual({ type: 'record', outcome: 'skipped', key: { id: 2 }, reason: 'no_change' });
    expect(byId.get(3)).toMatchObject({ type: 'record', outcome: 'failed', key: { id: 3 }, reason: 'invalid_json' });
    expect(Object.keys(byId.get(3) ?? {}).sort()).toEqual(['key', 'message', 'outcome', 'reason', 'type']);
    expect(byId.get(4)).toEqual({
      type: 'record',
      outcome: 'failed',
      key: { id: 4 },
      reason: 'template_error',
      message: 'the update key references a missing value',
    });
    expect(query(path, 'SELECT id, label FROM dst ORDER BY id')).toEqual([
      { id: 'd1', label: 'one' },
      { id: 'd2', label: 'two' },
    ]);
    expect(run.summary).toMatchObject({ total: 4, updated: 1, skipped: 1, failed: 2 });
    // Reasons in the summary are in alphabetical order, whatever order the records came in.
    expect(Object.keys(run.summary.reasons)).toEqual(['invalid_json', 'no_change', 'template_error']);
    expect(run.summary).not.toHaveProperty('action');
    // The duration is the run's own, in whole milliseconds.
    expect(Number.isInteger(run.summary.durationMs)).toBe(true);
    expect(run.summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(run.summary.durationMs).toBeLessThanOrEqual(Math.ceil(elapsed));
    expect(run.events.at(-1)).toEqual({ type: 'done', summary: run.summary, interrupted: false });
  });

  it('a record that fails does not claim its target record: the next source record naming it updates it', async () => {
    const path = tmp().file('claim.db');
    createDb(
      path,
      'CREATE TABLE src (id INTEGER PRIMARY KEY, json TEXT); CREATE TABLE dst (id TEXT PRIMARY KEY, label TEXT);' +
        'INSERT INTO src VALUES (1, \'{"l":{"map":1}}\'), (2, \'{"l":"two"}\'); INSERT INTO dst VALUES (\'d1\', NULL)',
    );
    const run = await runYaml(
      `name: claim\n${sqliteTarget(path)}source: { as: s, table: src }\n` +
        'extract:\n  label: { from: s.json, parse: json, path: $.l }\n' +
        'update:\n  table: dst\n  key: { id: d1 }\n  set: { label: "x{{ label }}" }\n',
    );
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'failed', reason: 'template_error' });
    expect(run.outcomes.get(2)).toEqual({ outcome: 'updated' });
    expect(query(path, 'SELECT id, label FROM dst')).toEqual([{ id: 'd1', label: 'xtwo' }]);
  });

  it('a record whose write meets a conflict reports its reason alone, neither changes nor a target', async () => {
    const db = itemsDb(2);
    const run = await runYaml(renameSpec(db, 2), {
      wrap: (a) => ({
        ...a,
        readPages: a.readPages.bind(a),
        write: (requests, options) => {
          // Another writer changes item 2 between the read and the write.
          const other = openDb(db);
          other.prepare("UPDATE items SET status = 'theirs' WHERE id = 2").run();
          other.close();
          return a.write(requests, options);
        },
      }),
    });
    expect(run.records.find((r) => r.key.id === 2)).toEqual({ type: 'record', outcome: 'skipped', key: { id: 2 }, reason: 'conflict' });
    expect(statuses(db)).toEqual(['new', 'theirs']);
  });

  it('a delete shows the whole record going, every field guarded on the value read', async () => {
    const db = itemsDb(2);
    const run = await runYaml(
      `name: purge\n${sqliteTarget(db)}source: { as: item, table: items }\n` +
        'skip:\n  - { reason: keep, when: { equals: { item.id: 2 } } }\n' +
        'delete:\n  key: { id: "{{ item.id }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 1, skipped: 1, action: 'delete' });
    expect(run.records.find((r) => r.key.id === 1)).toEqual({
      type: 'record',
      outcome: 'updated',
      key: { id: 1 },
      changes: [
        { field: 'id', before: 1, after: undefined, guard: 'unchanged' },
        { field: 'status', before: 'old', after: undefined, guard: 'unchanged' },
      ],
      target: { table: 'items', key: { id: 1 }, action: 'delete' },
    });
    expect(query(db, 'SELECT id FROM items')).toEqual([{ id: 2 }]);
  });

  it('a create names its action on each record and in the summary', async () => {
    const path = tmp().file('create.db');
    createDb(
      path,
      'CREATE TABLE src (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE dst (id INTEGER PRIMARY KEY, name TEXT);' +
        "INSERT INTO src VALUES (1, 'a'), (2, 'b'); INSERT INTO dst VALUES (2, 'b')",
    );
    const run = await runYaml(
      `name: copy\n${sqliteTarget(path)}source: { as: s, table: src }\n` +
        'create:\n  table: dst\n  key: { id: "{{ s.id }}" }\n  set: { name: "{{ s.name }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 2, updated: 1, skipped: 1, action: 'create', reasons: { exists: 1 } });
    // The change shown (and saved in a plan) is the whole new record, every field absent before.
    expect(run.records.find((r) => r.key.id === 1)).toMatchObject({
      target: { table: 'dst', key: { id: 1 }, action: 'create' },
      changes: [
        { field: 'id', before: undefined, after: 1, guard: 'absent' },
        { field: 'name', before: undefined, after: 'a', guard: 'absent' },
      ],
    });
    expect(query(path, 'SELECT id, name FROM dst ORDER BY id')).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
    ]);
  });
});

/**
 * Runs `run` to its end and returns how it settled, with every rejection left unhandled meanwhile
 * (Node ends the process on one: the CLI would crash mid-page instead of reporting the error).
 */
async function settledWithUnhandled<T>(run: () => Promise<T>): Promise<{ result: PromiseSettledResult<T>; unhandled: unknown[] }> {
  const unhandled: unknown[] = [];
  const listener = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', listener);
  try {
    const [result] = await Promise.allSettled([run()]);
    return { result: result as PromiseSettledResult<T>, unhandled };
  } finally {
    process.off('unhandledRejection', listener);
  }
}

describe('a source read ahead (a remote source, as DynamoDB is read)', () => {
  /**
   * Runs the rename over 6 items in pages of 2 on the real SQLite source, read ahead as the engine
   * reads a remote one; `failAt` makes the read of that page (0-based) fail. `closed` tells
   * whether the source's reader was closed.
   */
  async function readAheadRun(db: string, options: { limit?: number; failAt?: number }) {
    const state = { closed: false };
    const wrap = (a: Adapter): Adapter => ({
      ...a,
      readsAhead: undefined,
      readPages: async function* (source, readOptions) {
        let n = 0;
        try {
          for await (const page of a.readPages(source, readOptions)) {
            if (n++ === options.failAt) throw new Error('the connection was reset');
            yield page;
          }
        } finally {
          state.closed = true;
        }
      },
    });
    const spec = renameSpec(db, 2).replace('source: { as: item, table: items }', 'source: { as: item, table: items, pageSize: 2 }');
    const settled = await settledWithUnhandled(() => runYaml(spec, { ...(options.limit ? { limit: options.limit } : {}), wrap }));
    return { ...settled, closed: state.closed };
  }

  it('a run stopped by its limit closes the source, with the next page already being read', async () => {
    const db = itemsDb(6);
    const { result, unhandled, closed } = await readAheadRun(db, { limit: 2 });
    expect(unhandled).toEqual([]);
    expect(result.status === 'fulfilled' && result.value.summary).toMatchObject({ total: 2, updated: 2 });
    expect(statuses(db)).toEqual(['new', 'new', 'old', 'old', 'old', 'old']);
    expect(closed).toBe(true);
  });

  it('a read ahead that fails after the run reached its limit is not the run’s error: it ends with its records', async () => {
    const db = itemsDb(6);
    const { result, unhandled } = await readAheadRun(db, { limit: 2, failAt: 1 });
    expect(unhandled).toEqual([]);
    expect(result.status === 'fulfilled' && result.value.summary).toMatchObject({ total: 2, updated: 2, failed: 0 });
    expect(statuses(db)).toEqual(['new', 'new', 'old', 'old', 'old', 'old']);
  });

  it('a read that fails before the limit is the run’s error, raised after the page before it was written', async () => {
    const db = itemsDb(6);
    const { result, unhandled } = await readAheadRun(db, { failAt: 1 });
    expect(unhandled).toEqual([]);
    expect(result.status === 'rejected' && String(result.reason)).toBe('Error: the connection was reset');
    expect(statuses(db)).toEqual(['new', 'new', 'old', 'old', 'old', 'old']);
  });
});

describe('a DynamoDB scan whose next page cannot be read', () => {
  it('while the page before it is written, stops the run with DF401 (not a crash of the process); that page is written', async () => {
    const dynamo = await startDynalite();
    const table = 'media-read-ahead';
    // Every Scan after the first is answered as for a table deleted since (an error no retry
    // mends); each write waits 100 ms first, so the failed read ahead arrives while page 1 is
    // being written.
    const proxy = await startCountingProxy(dynamo.endpoint, {
      fault: (r) =>
        r.operation === 'Scan' && r.nth >= 2
          ? {
              respond: {
                status: 400,
                body: { __type: 'com.amazonaws.dynamodb.v20120810#ResourceNotFoundException', message: 'Requested resource not found' },
              },
            }
          : r.operation === 'UpdateItem'
            ? { beforeForward: () => new Promise((resolve) => setTimeout(resolve, 100)) }
            : undefined,
    });
    try {
      await createMediaTable(dynamo.endpoint, table);
      await seedItems(
        dynamo.endpoint,
        table,
        ['a', 'b', 'c', 'd'].map((id) => mediaItem(id, '2024-01-01T00:00:00Z')),
      );
      const adapter = await createDynamoAdapter(target(proxy.endpoint, table), { maxAttempts: 1, retryBaseMs: 1 });
      try {
        const { result, unhandled } = await settledWithUnhandled(() =>
          runFix(plan(target(proxy.endpoint, table), scanSource()), adapter, { dryRun: false, pageSize: 2 }),
        );
        expect(unhandled).toEqual([]);
        const err = result.status === 'rejected' ? result.reason : undefined;
        expect(err).toBeInstanceOf(DatafixError);
        expect((err as DatafixError).code).toBe('DF401');
      } finally {
        await adapter.close();
      }
      const items = await scanAll(dynamo.endpoint, table);
      expect(items.filter((i) => i.thumbnailUrl === 'x')).toHaveLength(2);
    } finally {
      await proxy.stop();
      await dynamo.stop();
    }
  });
});

describe('a stop signal during a wait for a locked database', () => {
  /**
   * Renames items 1..4 in pages of 2 on a database whose busy timeout is 100 ms; page 2's write
   * finds it write-locked by another connection. `stopDuringWait` sends the stop signal while
   * that write waits (it is seen once the wait is over, as a Ctrl-C would be).
   */
  async function lockedRun(stopDuringWait: boolean | 'no-signal') {
    const db = itemsDb(4);
    const stop = new AbortController();
    const events: EngineEvent[] = [];
    let calls = 0;
    /** The write before, which must have ended before the lock is taken (pages may overlap). */
    let previous: Promise<unknown> = Promise.resolve();
    const spec = renameSpec(db, 2)
      .replace('source: { as: item, table: items }', 'source: { as: item, table: items, pageSize: 2 }')
      .replace(`path: ${JSON.stringify(db)}\n`, `path: ${JSON.stringify(db)}\n    busyTimeoutMs: 100\n`);
    const settled = await Promise.allSettled([
      runYaml(spec, {
        ...(stopDuringWait === 'no-signal' ? {} : { signal: stop.signal }),
        onEvent: (e) => events.push(e),
        wrap: (a) => ({
          ...a,
          readPages: a.readPages.bind(a),
          write: async (requests, options) => {
            if (++calls < 2) {
              const first = a.write(requests, options);
              previous = first.catch(() => undefined);
              return first;
            }
            await previous;
            const other = openDb(db);
            other.exec('BEGIN IMMEDIATE');
            try {
              if (stopDuringWait === true) setImmediate(() => stop.abort());
              return await a.write(requests, options);
            } finally {
              other.exec('ROLLBACK');
              other.close();
            }
          },
        }),
      }),
    ]);
    return { db, result: settled[0], events };
  }

  it('is an interruption: the run ends with the pages before it, the page it cut is neither counted nor written', async () => {
    const { db, result, events } = await lockedRun(true);
    expect(result.status).toBe('fulfilled');
    const summary = result.status === 'fulfilled' ? result.value.summary : undefined;
    expect(summary).toMatchObject({ total: 2, updated: 2, skipped: 0, failed: 0 });
    expect(events.at(-1)).toMatchObject({ type: 'done', interrupted: true });
    expect(statuses(db)).toEqual(['new', 'new', 'old', 'old']);
  });

  it('without a stop, a lock that outlasts the timeout stops the run with DF411', async () => {
    for (const mode of [false, 'no-signal'] as const) {
      const { db, result } = await lockedRun(mode);
      expect(result.status, String(mode)).toBe('rejected');
      expect(result.status === 'rejected' && (result.reason as DatafixError).code).toBe('DF411');
      expect(statuses(db)).toEqual(['new', 'new', 'old', 'old']);
    }
  });

  it('which errors count as a wait the stop cut short: a cut-off request or a lock, with the stop seen within two turns of the event loop', async () => {
    const locked = new DatafixError('connection', 'DF411', 'x.db is locked by another process');
    const cutOff = Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
    const stopped = new AbortController();
    stopped.abort();
    expect(await stoppedWhileWaiting(locked, stopped.signal)).toBe(true);
    expect(await stoppedWhileWaiting(cutOff, stopped.signal)).toBe(true);
    // No stop: never an interruption, whatever the error.
    expect(await stoppedWhileWaiting(cutOff, undefined)).toBe(false);
    expect(await stoppedWhileWaiting(locked, new AbortController().signal)).toBe(false);
    // Other errors stay errors, even with the stop sent.
    expect(await stoppedWhileWaiting(new DatafixError('connection', 'DF412', 'still throttled'), stopped.signal)).toBe(false);
    expect(await stoppedWhileWaiting(new Error('disk I/O error'), stopped.signal)).toBe(false);
    expect(await stoppedWhileWaiting(undefined, stopped.signal)).toBe(false);
    // A stop whose handler runs only on the loop's next turn after the wait is still seen.
    const late = new AbortController();
    setImmediate(() => setImmediate(() => late.abort()));
    expect(await stoppedWhileWaiting(locked, late.signal)).toBe(true);
  });
});
