/**
 * The SQLite write thread's worker (src/adapters/sqlite/write-thread.ts): the SQLite adapter on
 * a connection of its own, running each batch it is sent with the adapter's `write`, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Adapter } from '../types.js';
import { createSqliteAdapter } from './index.js';
import {
  batchFromWire,
  EXITING,
  errorToWire,
  type FromWorker,
  IN_FLIGHT,
  mapResult,
  type ToWorker,
  toWire,
  type WriteThreadData,
} from './write-thread.js';

const { target, tag, shared } = workerData as WriteThreadData;
const cells = new Int32Array(shared);
const port = parentPort;
/** Opened at the first batch, so a database that cannot be opened fails that batch, with its error. */
let adapter: Adapter | undefined;
/** Batches that failed or were not run: a batch sent behind one of them is not run either. */
const failed = new Set<number>();
/**
 * Once another connection was seen writing (a BEGIN IMMEDIATE of ours waited for the lock), the
 * lock is left free after each batch for as long as the batch held it (at most `MAX_GAP_MS`),
 * as a page at a time leaves it free while the next page is read and computed. SQLite has no
 * queue for its write lock: a writer waiting for it polls from its busy handler, at 1, 2, 5, 10 …
 * 100 ms intervals, and one that keeps finding it held (batches back to back) can wait out its
 * busy timeout (https://www.sqlite.org/c3ref/busy_timeout.html).
 */
let sharing = false;
let gapMs = 0;
const MAX_GAP_MS = 50;
const pause = new Int32Array(new SharedArrayBuffer(4));

// One batch at a time: the next message waits for this one's promise.
let queue: Promise<void> = Promise.resolve();
port?.on('message', (m: ToWorker) => {
  queue = queue.then(() => handle(m));
});

async function handle(m: ToWorker): Promise<void> {
  if (m.type === 'close') {
    await adapter?.close();
    port?.close();
    return;
  }
  let answer: FromWorker;
  try {
    if (m.after !== 0 && failed.has(m.after)) {
      throw new Error('not written: the batch sent before it failed, and a batch never runs past a failed one');
    }
    if (Atomics.load(cells, EXITING) === 1) throw new Error('not written: the process is exiting');
    adapter ??= createSqliteAdapter(target, {
      onTransaction: ({ waitedMs, heldMs }) => {
        // The busy handler's first sleep is 1 ms: a BEGIN that took that long found the lock held.
        if (waitedMs >= 1) sharing = true;
        gapMs = sharing ? Math.min(heldMs, MAX_GAP_MS) : 0;
      },
    });
    const results = await adapter.write(batchFromWire(m.batch, tag), m.options);
    answer = { type: 'written', id: m.id, results: results.map((r) => mapResult(r, (v) => toWire(v, tag))), stats: adapter.stats() };
  } catch (err) {
    failed.add(m.id);
    answer = { type: 'failed', id: m.id, error: errorToWire(err), stats: adapter?.stats() ?? {} };
  }
  port?.postMessage(answer);
  // The batch has committed or rolled back: an exiting main thread may go on.
  Atomics.sub(cells, IN_FLIGHT, 1);
  Atomics.notify(cells, IN_FLIGHT);
  if (gapMs > 0) Atomics.wait(pause, 0, 0, gapMs);
}
