/**
 * A SQLite adapter's writes on a connection of their own, in a worker thread. better-sqlite3 is
 * synchronous: a batch's statements and its COMMIT (the fsyncs) hold the thread that runs them.
 * On the main thread they stop everything else; here, the main thread reads and computes the
 * next page meanwhile (the engine's `overlapWrites`), and the batch still commits or rolls back
 * whole, with the same statements, guards and errors as on the main thread, because the worker
 * runs the same adapter's `write` (src/adapters/sqlite/write-worker.ts).
 *
 * Values cross the thread boundary by the structured clone algorithm
 * (https://nodejs.org/api/worker_threads.html#portpostmessagevalue-transferlist), which keeps
 * strings, numbers (-0, NaN), bigints, undefined and bytes exactly but not classes: an
 * `ExactNumber` crosses as an object tagged with a key made once per process (no value of a
 * record can hold it by chance), and a `DatafixError` as its category, code, message and
 * diagnostics.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { DatafixError, type Diagnostic, type ErrorCategory } from '../../errors.js';
import { ExactNumber } from '../../plan/values.js';
import type { Item, WriteOptions, WriteRequest, WriteResult } from '../types.js';

/** What the worker is started with (`workerData`). */
export interface WriteThreadData {
  readonly target: { readonly backend: 'sqlite'; readonly path: string; readonly busyTimeoutMs: number };
  /** The key that tags an exact number on the wire. */
  readonly tag: string;
  /**
   * Two 32-bit cells: [0] batches handed to the worker and not yet finished (committed, rolled
   * back or not run); [1] 1 once the process is exiting: batches not yet started are not run.
   */
  readonly shared: SharedArrayBuffer;
}

/** A message to the worker: one batch, or the end. */
export type ToWorker =
  | {
      readonly type: 'write';
      readonly id: number;
      /** The batch sent before this one (0: none): if it failed, this one is not run. */
      readonly after: number;
      readonly batch: WireBatch;
      readonly options: WriteOptions;
    }
  | { readonly type: 'close' };

/**
 * A batch as it crosses. A page's requests nearly always share one shape (table, key columns,
 * fields with their guards): then the shape crosses once and each request as a row of values
 * (its key's, then each field's value and before-image), which clones several times faster than
 * the same requests as objects. Requests of several shapes cross whole.
 */
export type WireBatch =
  | { readonly shape: WireShape; readonly rows: readonly (readonly unknown[])[] }
  | { readonly requests: readonly WriteRequest[] };

/** What the requests of a batch share: all but the values. */
export interface WireShape {
  /** The request without `key` and `fields` (its `action`, `table`). */
  readonly head: Record<string, unknown>;
  readonly keys: readonly string[];
  /** Each field without `value` and `before`; `hasBefore`: whether it has a `before` property. */
  readonly fields: readonly { readonly rest: Record<string, unknown>; readonly hasBefore: boolean }[];
}

/** The worker's answer to one batch, with its adapter's request counts so far. */
export type FromWorker =
  | { readonly type: 'written'; readonly id: number; readonly results: readonly WriteResult[]; readonly stats: Record<string, number> }
  | { readonly type: 'failed'; readonly id: number; readonly error: WireError; readonly stats: Record<string, number> };

/** An error as it crosses: a `DatafixError`'s fields, or any other error's name and message. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly category?: ErrorCategory;
  readonly code?: string;
  readonly diagnostics?: readonly Diagnostic[];
  /** Any other error's stack, as the worker saw it. */
  readonly stack?: string;
}

/** `value` with every `ExactNumber` (at any depth) replaced by `{ [tag]: digits }`. */
export function toWire(value: unknown, tag: string): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof ExactNumber) return { [tag]: value.value };
  if (value instanceof Uint8Array) return value;
  if (value instanceof Set) return new Set([...value].map((v) => toWire(v, tag)));
  if (Array.isArray(value)) return value.map((v) => toWire(v, tag));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) out[k] = toWire((value as Record<string, unknown>)[k], tag);
  return out;
}

/** The inverse of `toWire`. */
export function fromWire(value: unknown, tag: string): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return value;
  if (value instanceof Set) return new Set([...value].map((v) => fromWire(v, tag)));
  if (Array.isArray(value)) return value.map((v) => fromWire(v, tag));
  const keys = Object.keys(value);
  const record = value as Record<string, unknown>;
  if (keys.length === 1 && keys[0] === tag && typeof record[tag] === 'string') return new ExactNumber(record[tag]);
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = fromWire(record[k], tag);
  return out;
}

/** `requests` as they cross to the worker, values through `toWire`. */
export function batchToWire(requests: readonly WriteRequest[], tag: string): WireBatch {
  const first = requests[0];
  if (!first || !requests.every((r) => r === first || sameShape(first, r))) {
    return { requests: requests.map((r) => mapRequest(r, (v) => toWire(v, tag))) };
  }
  const shape = shapeOf(first);
  const rows = requests.map((r) => {
    const row: unknown[] = [];
    for (const k of shape.keys) row.push(toWire(r.key[k], tag));
    for (const f of r.fields) row.push(toWire(f.value, tag), toWire(f.before, tag));
    return row;
  });
  return { shape, rows };
}

/** The requests a `WireBatch` carries, values through `fromWire`. */
export function batchFromWire(batch: WireBatch, tag: string): WriteRequest[] {
  if ('requests' in batch) return batch.requests.map((r) => mapRequest(r, (v) => fromWire(v, tag)));
  const { head, keys, fields } = batch.shape;
  // Built property by property, values of one row in order: this runs on the writing thread,
  // for every record, and object spreads cost several times more.
  const value = (v: unknown) => (v !== null && typeof v === 'object' ? fromWire(v, tag) : v);
  return batch.rows.map((row) => {
    const key: Item = {};
    let at = 0;
    for (const k of keys) key[k] = value(row[at++]);
    const written: Record<string, unknown>[] = [];
    for (const { rest, hasBefore } of fields) {
      const f: Record<string, unknown> = Object.assign({}, rest);
      f.value = value(row[at++]);
      const before = value(row[at++]);
      if (hasBefore) f.before = before;
      written.push(f);
    }
    const r: Record<string, unknown> = Object.assign({}, head);
    r.key = key;
    r.fields = written;
    return r as unknown as WriteRequest;
  });
}

/** The shape of `r`: all but its values. */
function shapeOf(r: WriteRequest): WireShape {
  const { key, fields, ...head } = r;
  return {
    head,
    keys: Object.keys(key),
    fields: fields.map((f) => {
      const { value: _value, before: _before, ...rest } = f;
      return { rest, hasBefore: Object.hasOwn(f, 'before') };
    }),
  };
}

/** Whether `b` has `a`'s shape: the same head, key columns in order, and fields but for values. */
function sameShape(a: WriteRequest, b: WriteRequest): boolean {
  if (a.action !== b.action || a.table !== b.table || Object.keys(b).length !== Object.keys(a).length) return false;
  const ak = Object.keys(a.key);
  const bk = Object.keys(b.key);
  if (ak.length !== bk.length || ak.some((k, i) => bk[i] !== k)) return false;
  if (a.fields.length !== b.fields.length) return false;
  for (let i = 0; i < a.fields.length; i++) {
    const fa = a.fields[i] as unknown as Record<string, unknown>;
    const fb = b.fields[i] as unknown as Record<string, unknown>;
    const ka = Object.keys(fa);
    const kb = Object.keys(fb);
    if (ka.length !== kb.length) return false;
    for (let j = 0; j < ka.length; j++) {
      const k = ka[j] as string;
      if (kb[j] !== k) return false;
      if (k !== 'value' && k !== 'before' && fa[k] !== fb[k]) return false;
    }
  }
  return true;
}

/** A write request's values (key, new values, before-images) through `convert`; names and guards as they are. */
export function mapRequest(r: WriteRequest, convert: (v: unknown) => unknown): WriteRequest {
  return {
    ...r,
    key: convert(r.key) as Item,
    fields: r.fields.map((f) => ({ ...f, value: convert(f.value), before: convert(f.before) })),
  };
}

/** A write result's stored record (a create's) through `convert`. */
export function mapResult(r: WriteResult, convert: (v: unknown) => unknown): WriteResult {
  return r.status === 'applied' && r.stored ? { ...r, stored: convert(r.stored) as Item } : r;
}

/** `err` as it can cross the thread boundary. */
export function errorToWire(err: unknown): WireError {
  if (err instanceof DatafixError) {
    return { name: err.name, message: err.message, category: err.category, code: err.code, diagnostics: err.diagnostics };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message, ...(e.stack !== undefined ? { stack: e.stack } : {}) };
}

function errorFromWire(w: WireError): Error {
  if (w.code !== undefined && w.category !== undefined) return new DatafixError(w.category, w.code, w.message, w.diagnostics ?? []);
  const e = new Error(w.message);
  e.name = w.name;
  // A bug's report points into the worker, where it happened.
  if (w.stack !== undefined) e.stack = w.stack;
  return e;
}

/**
 * The worker's module. Tests run the TypeScript sources, which a worker thread cannot load, so
 * from there the build's copy is used (`npm test` builds first).
 */
function workerUrl(): URL {
  const own = new URL('./write-worker.js', import.meta.url);
  return import.meta.url.endsWith('.ts') ? new URL(own.href.replace(/\/src\/adapters\/sqlite\//, '/dist/adapters/sqlite/')) : own;
}

/** The cells of `WriteThreadData.shared`. */
export const IN_FLIGHT = 0;
export const EXITING = 1;

/** How long an exiting process waits at most for a batch the worker is running to end, in ms. */
const EXIT_WAIT_MS = 60_000;

/**
 * The main thread's side of the write worker. Any number of batches may be queued (the engine
 * queues at most two); the worker runs them in order. Exiting the process (a second Ctrl-C,
 * `process.exit`) first waits for the batch in the worker to commit or roll back, so no exit
 * ends one half-done and leaves a hot rollback journal that read-only commands cannot recover;
 * batches queued behind it are not run (their journal lines have no outcome, as after a crash
 * before they were sent).
 */
export class WriteThread {
  private readonly worker: Worker;
  private readonly tag = `\u0000${randomUUID()}`;
  private readonly cells = new Int32Array(new SharedArrayBuffer(8));
  private readonly waiting = new Map<number, { resolve: (r: WriteResult[]) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  /** The last batch handed over, settled or not: the worker runs batches in order. */
  private last: Promise<unknown> = Promise.resolve();
  /** Why the worker stopped, once it has: every later batch fails with it. */
  private stopped: Error | undefined;
  private closing: Promise<void> | undefined;
  private workerStats: Record<string, number> = {};
  /** Exiting: the batch the worker runs commits or rolls back first; the ones queued are dropped. */
  private readonly onExit = () => {
    Atomics.store(this.cells, EXITING, 1);
    this.waitIdle(EXIT_WAIT_MS);
  };

  /** Starts the worker; it opens its own connection to `target` at its first batch. */
  constructor(target: WriteThreadData['target']) {
    const data: WriteThreadData = {
      target: { backend: 'sqlite', path: target.path, busyTimeoutMs: target.busyTimeoutMs },
      tag: this.tag,
      shared: this.cells.buffer as SharedArrayBuffer,
    };
    this.worker = new Worker(workerUrl(), { workerData: data });
    // An idle worker does not keep the process alive; one with a batch does (see `write`).
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => this.answer(m));
    this.worker.on('error', (err) => this.stop(new Error(`the SQLite write thread failed: ${err.message}`)));
    this.worker.on('exit', (code) => this.stop(new Error(`the SQLite write thread ended (exit code ${code})`)));
    process.on('exit', this.onExit);
  }

  /** Request counts of the worker's connection, by kind, as of its last answer. */
  stats(): Record<string, number> {
    return this.workerStats;
  }

  /**
   * Runs one batch in the worker: the adapter's `write`, in one IMMEDIATE transaction there.
   * Batches run in the order sent; one is not run if the one sent before it failed, whether or
   * not that failure was known when it was sent (a failed batch stops the writes after it).
   * @throws DatafixError as the adapter's `write` does (DF411, DF418, DF403 …); Error when the
   *   worker itself stopped (the batch's outcome is then unknown: the journal keeps it for undo).
   */
  write(requests: readonly WriteRequest[], options: WriteOptions): Promise<WriteResult[]> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    const message: ToWorker = {
      type: 'write',
      id,
      after: id - 1,
      batch: batchToWire(requests, this.tag),
      options,
    };
    const answer = new Promise<WriteResult[]>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) this.worker.ref();
      Atomics.add(this.cells, IN_FLIGHT, 1);
      this.worker.postMessage(message);
    });
    this.last = answer.catch(() => undefined);
    return answer;
  }

  /** Waits for queued batches, then closes the worker's connection and ends it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.last;
      process.off('exit', this.onExit);
      if (this.stopped) return;
      const ended = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      this.worker.ref();
      this.worker.postMessage({ type: 'close' } satisfies ToWorker);
      await ended;
    })();
    return this.closing;
  }

  /**
   * Blocks the calling thread until no batch is in the worker, or `timeoutMs` passed.
   * @returns whether the worker is idle.
   */
  waitIdle(timeoutMs: number): boolean {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const n = Atomics.load(this.cells, IN_FLIGHT);
      if (n <= 0) return true;
      const left = until - Date.now();
      if (left <= 0) return false;
      Atomics.wait(this.cells, IN_FLIGHT, n, left);
    }
  }

  private answer(m: FromWorker): void {
    this.workerStats = m.stats;
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if (this.waiting.size === 0) this.worker.unref();
    if (m.type === 'written') w.resolve(m.results.map((r) => mapResult(r, (v) => fromWire(v, this.tag))));
    else w.reject(errorFromWire(m.error));
  }

  private stop(why: Error): void {
    this.stopped ??= why;
    process.off('exit', this.onExit);
    for (const w of this.waiting.values()) w.reject(this.stopped);
    this.waiting.clear();
  }
}
