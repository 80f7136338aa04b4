/**
 * The one small interface every backend implements. The engine drives it; adapters never import
 * the engine, the spec loader or the CLI. Values cross this boundary as plain JS: strings,
 * numbers (or an exact-number object for DynamoDB numbers beyond double precision), booleans,
 * null, arrays, plain objects, `Set` and `Uint8Array`.
 */
import type { FailureReason } from '../plan/reasons.js';
import type { Condition, FixPlan, SortKeyOp, SourcePlan, ValueTestOp, WriteAction } from '../plan/types.js';

export type Item = Record<string, unknown>;

/** One record read from the source. */
export interface SourceRecord {
  /** The record's primary key, enough to address it in an update or a log line. */
  readonly key: Item;
  /** The whole record as read. */
  readonly item: Item;
}

/** A page of source records and the cursor to continue after it. */
export interface SourcePage {
  readonly records: readonly SourceRecord[];
  /** JSON-serialisable position after this page; `undefined` after the last page. */
  readonly cursor: unknown;
  /** Parallel scan segment this page came from, when segmented. */
  readonly segment?: number;
}

export interface ReadOptions {
  readonly pageSize: number;
  /**
   * Ends a page early once its records hold this many bytes as read (at least one record per
   * page), where the backend can tell; default: the adapter's own bound (SQLite: 8 MiB). A
   * DynamoDB page is bounded by the service itself: at most 1 MB of items per Query or Scan
   * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html).
   */
  readonly pageBytes?: number;
  /** Resume position from an earlier page's `cursor`. */
  readonly cursor?: unknown;
  /** Read only this segment of a parallel scan (another process reads the others). */
  readonly segment?: { readonly index: number; readonly total: number };
  readonly signal?: AbortSignal;
}

/** Where a count of the source's records starts: as `ReadOptions` without the page size. */
export interface CountOptions {
  readonly cursor?: unknown;
  readonly segment?: { readonly index: number; readonly total: number };
}

/** How many records a source holds from a position on: exact, or an estimate (said to be one). */
export interface RecordCount {
  readonly records: number;
  readonly estimate: boolean;
}

export interface LookupRequest {
  /** Undefined means the target's own table. */
  readonly table?: string;
  readonly key: Item;
  readonly consistentRead: boolean;
}

/** A lookup of every record that matches, for one source record (a `query` or `where` lookup). */
export interface ListLookupRequest {
  /** Undefined means the target's own table. */
  readonly table?: string;
  /** DynamoDB: the index to query; undefined means the table. */
  readonly index?: string;
  /** Equalities, rendered: SQLite columns, or the DynamoDB partition key. */
  readonly match: Item;
  /** DynamoDB: the sort-key condition with its rendered values. */
  readonly sortKey?: { readonly name: string; readonly op: SortKeyOp; readonly values: readonly unknown[] };
  /** SQLite: a condition on bare column names, the same for every request of a lookup. */
  readonly where?: Condition;
  /** The most records one request may have: more is `LookupRejected('lookup_over_max')`. */
  readonly max: number;
  readonly consistentRead: boolean;
}

/**
 * How a write protects data it did not read:
 * - `absent`: fill-only, write only where the field is absent or NULL;
 * - `unchanged`: write only where the field still equals `before` (absent when `before` is undefined);
 * - `none`: write unconditionally. The engine never uses it for a run's writes: touch fields are
 *   guarded `unchanged` on the value read, so every field's before-image is what the write replaced.
 */
export type WriteGuard = 'absent' | 'unchanged' | 'none';

export interface FieldWrite {
  readonly name: string;
  /** The value to write; `undefined` removes the field (DynamoDB REMOVE, SQLite NULL), as undo does. */
  readonly value: unknown;
  readonly guard: WriteGuard;
  readonly before?: unknown;
}

export interface WriteRequest {
  /**
   * Absent: update `fields` of the existing record. `delete`: delete the record, only where every
   * field still equals its `before` (fields are its whole before-image, guard `unchanged`, value
   * undefined). `create`: create the record from `fields` (key fields included, guard `absent`),
   * only where no record has the key; never a replace.
   */
  readonly action?: WriteAction;
  /** Undefined means the target's own table. */
  readonly table?: string;
  readonly key: Item;
  /** All guards hold or nothing is written: one record is one atomic conditional write. */
  readonly fields: readonly FieldWrite[];
}

export type WriteResult =
  | {
      readonly status: 'applied';
      /**
       * A `create` on a backend whose records hold more than what was written (SQLite: columns
       * with defaults, or set by triggers): the whole record as it was stored, read back in the
       * same transaction. Undo deletes the record only while it still equals this.
       */
      readonly stored?: Item;
    }
  /**
   * A guard failed and the record does not already hold our values: someone else changed it (a
   * create: a record with the key exists).
   */
  | { readonly status: 'conflict' }
  /** No record with that key (it was deleted since it was read). */
  | { readonly status: 'not_found' }
  /** Throttled after the client's own retries ran out: the engine requeues it with backoff. */
  | { readonly status: 'retry'; readonly message: string }
  | { readonly status: 'failed'; readonly reason: FailureReason; readonly message: string };

/**
 * The answer to one lookup whose key breaks a per-record limit of the backend (a key too large,
 * empty, of the wrong type, or a value that cannot be bound): that record alone fails with
 * `reason`, and the run goes on.
 */
export class LookupRejected {
  constructor(
    /** Stable snake_case reason for the summary, e.g. `key_invalid`, `key_too_large`. */
    readonly reason: FailureReason,
    /** What is wrong with the key, for the record's log line. */
    readonly message: string,
  ) {}
}

export interface WriteOptions {
  /** How many writes may be in flight at once (backends that write one at a time ignore it). */
  readonly concurrency: number;
  /**
   * For adapters with `checkpoints`: store this source position under `id` in the same
   * transaction as these writes (the call may carry no writes at all).
   */
  readonly checkpoint?: { readonly id: string; readonly cursor: string };
  /**
   * These writes were sent before and their outcome was lost (requeued after throttling or
   * errors): a failed guard may be their own earlier landing, to be checked, not a conflict.
   */
  readonly resend?: boolean;
}

export interface Adapter {
  readonly backend: string;
  /**
   * Checks the plan against the live target before anything is read: tables, columns, keys.
   * Throws a `DatafixError` (category `config`) naming what is wrong and what to do.
   */
  check(plan: FixPlan): Promise<void>;
  /** Streams source pages in a stable order; memory stays bounded by one page. */
  readPages(source: SourcePlan, options: ReadOptions): AsyncIterable<SourcePage>;
  /**
   * false: the backend reads synchronously, so reading the next page ahead overlaps nothing and
   * only costs cache; the engine reads a page when it needs it. Default: read ahead.
   */
  readonly readsAhead?: boolean;
  /**
   * How many records `readPages` would yield from `options.cursor` on, for progress (total,
   * percentage, ETA): exact where the backend counts cheaply (SQLite: one `count(*)` with the
   * source's `where`), an estimate where it keeps one (a DynamoDB scan: the table's or index's
   * item count, which DynamoDB refreshes about every six hours), undefined where it knows
   * neither (a DynamoDB query: the table's item count says nothing of one partition).
   */
  count?(source: SourcePlan, options: CountOptions): Promise<RecordCount | undefined>;
  /**
   * Fetches records by key; the answer is in request order, `undefined` where none exists, a
   * `LookupRejected` where the backend cannot look that one key up (its other keys still are).
   */
  lookup(requests: readonly LookupRequest[]): Promise<(Item | undefined | LookupRejected)[]>;
  /**
   * Fetches every record matching each request, in key order (the table's primary key; the
   * sort key), reading at most `max + 1` per request. The answer is in request order: the
   * records (empty when none matches), or a `LookupRejected` for that request alone
   * (`lookup_over_max` when more than `max` match, `key_invalid` for a value the backend cannot
   * compare). `concurrency` bounds requests in flight on backends that send one per request.
   * Absent: the backend has no lookups of several records.
   */
  lookupMany?(requests: readonly ListLookupRequest[], options: { readonly concurrency: number }): Promise<(Item[] | LookupRejected)[]>;
  /**
   * Asked once before a live run whose every write goes to the source record it came from, and
   * which looks nothing up: whether the engine may read and compute page N+1 while page N's
   * writes are still in flight (their journal lines and outcomes stay in order). True only where
   * page N's writes cannot change what page N+1 reads: the update key is the source's keyset key
   * read from the row, and no trigger writes elsewhere. An adapter that says yes makes `write`
   * leave the thread that calls it (SQLite: a connection of its own in a worker thread).
   * Absent or false: one page at a time.
   */
  overlapWrites?(plan: FixPlan): boolean;
  /** Applies conditional writes; the answer is in request order. Never called in a dry run. */
  write(requests: readonly WriteRequest[], options: WriteOptions): Promise<WriteResult[]>;
  /**
   * The value as it would read back after being written (SQLite keeps maps as JSON text and
   * booleans as 0/1), so an overwrite that would store what is already there is `no_change`.
   */
  normalize?(value: unknown): unknown;
  /**
   * The value exactly as the target would store it in `field` of `table` (SQLite applies the
   * column's type affinity: 12345 into a TEXT column is stored as the text "12345"). The engine
   * shows, journals and writes this value, so the dry run says what will be stored and undo
   * finds what was written. Absent: values are stored as given.
   */
  storedAs?(table: string | undefined, field: string, value: unknown): unknown;
  /**
   * Whether the target, comparing column `field` of `table` with `value` as a `where` would,
   * finds it equal to `stored` (a value read from that column): SQLite first gives `value` the
   * column's type affinity and compares text by the column's collation (NOCASE, RTRIM).
   * https://www.sqlite.org/datatype3.html, 4.2 and 7.1. Absent: values compare exactly, as stored.
   */
  equalInColumn?(table: string, field: string, stored: unknown, value: unknown): boolean;
  /**
   * Whether a value read (`stored`) satisfies the comparison `op` with `values` (the operands of
   * a `ValueTest`) exactly as this backend's own `where`/`filter` would decide it for an
   * attribute or column holding that value, so a skip or fail rule and a pushed-down filter agree.
   * `column` is the `[table, column]` the value was read from (SQLite: its type affinity and
   * collation apply, https://www.sqlite.org/datatype3.html §4 and §7), absent for a value inside
   * a document, an extract or a DynamoDB item. `stored` undefined is a missing value, which
   * satisfies no comparison. Absent: the engine uses DynamoDB's rules (strict types, exact
   * numbers; see src/adapters/dynamodb/compare.ts).
   */
  satisfies?(op: ValueTestOp, values: readonly unknown[], stored: unknown, column?: readonly [string, string]): boolean;
  /**
   * A JSON-safe identity of `value` as a key of column `field` of `table`: two values have equal
   * identities exactly when the target's key comparison finds them equal (SQLite: after the
   * column's type affinity, numerically for numbers — 1 and 1.0 — and by the key's collation for
   * text). Absent: values are compared as stored.
   */
  keyIdentity?(table: string | undefined, field: string, value: unknown): unknown;
  /**
   * An identity of the target's current incarnation, known once `check` ran (DynamoDB: the
   * table's TableId, or its ARN and creation time where a server gives no id). A table deleted
   * and created again, or restored from a backup, under the same name has another.
   */
  instance?(): string | undefined;
  /**
   * Present when the target itself can keep run checkpoints, committed atomically with writes
   * (`WriteOptions.checkpoint`); `read` returns the last one stored under an id, `write` stores
   * one outside any page (a new run superseding an older run's), `clear` removes it.
   */
  readonly checkpoints?: { read(id: string): string | undefined; write(id: string, cursor: string): void; clear(id: string): void };
  /** Counts of requests made so far, by kind (for summaries and tests). */
  stats(): Record<string, number>;
  close(): Promise<void>;
}
