/**
 * The generic engine: streams source pages from an adapter, runs the plan's steps on each page
 * (batched lookups, extracts, ordered skip rules), diffs each record before → after, and applies
 * guarded writes. It knows no backend; everything it does is in the plan.
 */
import {
  type Adapter,
  type Item,
  type ListLookupRequest,
  LookupRejected,
  type LookupRequest,
  type SourcePage,
  type WriteRequest,
  type WriteResult,
} from '../adapters/types.js';
import { DatafixError } from '../errors.js';
import { columnOfRef } from '../plan/refs.js';
import type { FixPlan, ListLookupPlan, Ref, WriteAction } from '../plan/types.js';
import { deepEqual, isAbsent, MAX_VALUE_DEPTH, nestedDeeperThan, toJsonSafe } from '../plan/values.js';
import { type Context, evaluate, MISSING, render, TemplateError, type ValueTester } from './context.js';
import type { EngineEvent, FieldChange, RecordOutcome, RunSummary } from './events.js';
import { type CompiledExtract, ExtractFailure, prepareExtract, runExtract } from './extract.js';

export interface RunOptions {
  readonly dryRun: boolean;
  /** Stop after this many source records (overrides the plan's run.limit). */
  readonly limit?: number;
  readonly concurrency?: number;
  readonly pageSize?: number;
  readonly batchSize?: number;
  /** Read only one segment of a parallel scan. */
  readonly segment?: { readonly index: number; readonly total: number };
  /** Resume after this source cursor. */
  readonly cursor?: unknown;
  /** Aborting stops reading new pages; records in flight finish and the summary is returned. */
  readonly signal?: AbortSignal;
  /** The run's timestamp, `now` in templates; one value for the whole run. */
  readonly now?: Date;
  /**
   * Receives every event. A listener that cannot keep up (a reporter whose output pipe is full)
   * returns a promise from a `page` event: the engine waits for it before reading on, so record
   * lines never pile up in memory faster than the reader takes them.
   */
  readonly onEvent?: (event: EngineEvent) => void | Promise<void>;
  /** Backoff for requeued (throttled) writes; tests shorten it. */
  readonly retryBaseMs?: number;
  /** How many times one record's write is requeued before it counts as failed. */
  readonly maxRequeues?: number;
  /** Live runs: records every write before it is sent, and its outcome after (journal, undo). */
  readonly journal?: WriteJournal;
  /** Target records an interrupted run already updated (their keys), for `duplicate_target`. */
  readonly updatedTargets?: readonly Item[];
  /** Live runs: where the position after each fully processed page is kept (resume). */
  readonly checkpoint?: CheckpointSink;
  /**
   * Live runs: false writes one page at a time, so that every event of a page (its `page` event
   * last) comes before anything of the next page is read, journaled or written: for a caller
   * that acts between pages (copies the database, inspects it). Default true: pages overlap
   * where the adapter's `overlapWrites` allows it (docs/performance.md), and a stop lets the
   * pages being written finish (at most two).
   */
  readonly overlapPages?: boolean;
}

/**
 * Before-images reach the journal before the writes do: `intend` is awaited before a batch is
 * sent, and must not return until what it recorded is durable.
 */
export interface WriteJournal {
  intend(requests: readonly WriteRequest[]): void | Promise<void>;
  settle(requests: readonly WriteRequest[], results: readonly WriteResult[]): void | Promise<void>;
}

/** Where a run is after a fully processed page: pages and records so far, and their outcomes. */
export interface CheckpointProgress {
  readonly pages: number;
  readonly records: number;
  readonly updated: number;
  readonly skipped: number;
  readonly failed: number;
  /** Count per skip or failure reason so far. */
  readonly reasons: Readonly<Record<string, number>>;
}

export interface CheckpointSink {
  /** Identifies this fix on this target, for adapters that keep checkpoints inside the target. */
  readonly id: string;
  /**
   * Called once a page is fully processed (after its writes committed), pages in order. A
   * returned promise may still be pending while the engine reads and computes the next page;
   * the engine waits for it before the journal entries and writes of the page after the one
   * under way (where pages overlap, page N+1's are already sent when page N is saved), before
   * the next save, and before it returns or throws, so saves never overlap and none is left
   * running after the run.
   */
  save(cursor: unknown, progress: CheckpointProgress): void | Promise<void>;
  /**
   * Optional: called once every page is done, before the run clears the checkpoint it kept
   * inside the target, so that a crash in between cannot leave a position the target no longer
   * holds as the run's last word.
   */
  finished?(): void;
  /**
   * The text an adapter with in-target checkpoints commits with a page's writes. `writes`: how
   * many writes the page journals and sends (each is journaled once, before its batch). Where
   * pages overlap, page N+1's is made before page N's `save`.
   */
  encode(cursor: unknown, progress: { pages: number; records: number; writes: number }): string;
}

interface RecordState {
  readonly key: Item;
  readonly ctx: Context;
  outcome?: RecordOutcome;
  reason?: string;
  message?: string;
  target?: Item;
  write?: WriteRequest;
  changes?: FieldChange[];
}

const FETCHED_TARGET = '\u0000target';

export async function runFix(plan: FixPlan, adapter: Adapter, options: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => {});
  const normalize = adapter.normalize ? (v: unknown) => adapter.normalize?.(v) : (v: unknown) => v;
  const stored = adapter.storedAs
    ? (table: string | undefined, field: string, v: unknown) => adapter.storedAs?.(table, field, v)
    : (_table: string | undefined, _field: string, v: unknown) => v;
  // Skip rules compare as the source's `where` does: both sides as the target stores them (on
  // SQLite `true` is the INTEGER 1), and a constant compared with a column first takes that
  // column's affinity (200 against a TEXT column is the text '200') and compares by its collation.
  const sameInTarget = (a: unknown, b: unknown, ref?: Ref) => {
    const column = ref && adapter.equalInColumn ? columnOfRef(plan, ref) : undefined;
    if (column && adapter.equalInColumn) return adapter.equalInColumn(column[0], column[1], a, b);
    return deepEqual(normalize(a), normalize(b));
  };
  // Comparisons (`lt` … `type`) too: the adapter decides them as its `where`/`filter` would,
  // for a column with its affinity and collation where the reference names one.
  const testInTarget: ValueTester | undefined = adapter.satisfies
    ? (op, values, value, ref) => adapter.satisfies?.(op, values, value, columnOfRef(plan, ref)) ?? false
    : undefined;
  // Target records this run updates, when the update key is not the source record's own (then
  // two source records can update one target record). Grows with the distinct targets updated.
  // A lookup's record is one of those too: two orders can find the same user.
  const ownRecord = plan.update.before.kind === 'context' && plan.update.before.root === plan.source.as;
  const written = ownRecord ? undefined : new Set<string>();
  const keyNames = plan.update.key.map(([k]) => k);
  // One id per target record, from its key as the target compares keys (as the fetched record
  // holds it, else as the target would store the rendered one), so that 1, '1' and 1.0 for an
  // INTEGER key, or another case under a NOCASE key, are the one record they name, in this run
  // and against the keys a resumed run's journal holds.
  const keyIdentity = adapter.keyIdentity
    ? (k: string, v: unknown) => adapter.keyIdentity?.(plan.update.table, k, v)
    : (k: string, v: unknown) => toJsonSafe(normalize(stored(plan.update.table, k, v)));
  const idOf = (key: Item) => JSON.stringify([plan.update.table ?? '', keyNames.map((k) => keyIdentity(k, key[k]))]);
  const targetIdOf = (s: RecordState): string | undefined => {
    // A fetched record names itself by its key fields; one that does not hold them all (a
    // rowid, which `SELECT *` does not return) is named by the key it was fetched by.
    const target = s.target;
    if (target && keyNames.every((k) => Object.hasOwn(target, k))) return idOf(target);
    try {
      const key = renderKey(plan.update.key, s.ctx);
      return key ? idOf(key) : undefined;
    } catch {
      return undefined; // diffRecord reports the template error
    }
  };
  // A resumed run already updated the targets its journal holds.
  if (written) for (const t of options.updatedTargets ?? []) written.add(idOf(t));
  const now = (options.now ?? new Date()).toISOString();
  const limit = options.limit ?? plan.run.limit;
  const maxConcurrency = options.concurrency ?? plan.run.concurrency;
  const batchSize = options.batchSize ?? plan.run.batchSize;
  const extracts = new Map<string, CompiledExtract>(plan.extracts.map((e) => [e.name, prepareExtract(e)]));
  const lookups = new Map(plan.lookups.map((l) => [l.name, l]));
  const counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const reasons: Record<string, number> = {};
  const throttle = { concurrency: maxConcurrency, retryBaseMs: options.retryBaseMs ?? 200, maxRequeues: options.maxRequeues ?? 12 };
  let interrupted = false;
  let pageIndex = 0;
  /** The previous page's checkpoint save, while it may still be on its way to disk. */
  let saving: Promise<void> | undefined;
  /** Waits for that save; a failed save throws here, before anything more is written. */
  const saved = async (): Promise<void> => {
    // Every caller waits for the save under way: where pages overlap, a page's commit and the
    // page before's outcomes both ask, and a caller that found none must not start a save while
    // another still writes the same file.
    while (saving) {
      const pending = saving;
      try {
        await pending;
      } finally {
        if (saving === pending) saving = undefined;
      }
    }
  };

  emit({ type: 'start', fix: plan.fix, dryRun: options.dryRun, backend: plan.target.backend });

  const finish = (s: RecordState, outcome: RecordOutcome, reason?: string, message?: string): void => {
    s.outcome = outcome;
    if (reason) s.reason = reason;
    if (message) s.message = message;
  };

  const report = (s: RecordState): void => {
    const outcome = s.outcome ?? 'failed';
    counts[outcome]++;
    if (s.reason) reasons[s.reason] = (reasons[s.reason] ?? 0) + 1;
    // No listener, no event: a library caller pays nothing per record for reporting.
    if (!options.onEvent) return;
    emit({
      type: 'record',
      outcome,
      key: s.key,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.message ? { message: s.message } : {}),
      ...(outcome === 'updated' && s.changes ? { changes: s.changes } : {}),
      ...(outcome === 'updated' && s.write
        ? {
            target: {
              ...(s.write.table !== undefined ? { table: s.write.table } : {}),
              key: s.write.key,
              ...(s.write.action ? { action: s.write.action } : {}),
            },
          }
        : {}),
    });
  };

  /** Records of the pages being committed, counted in `counts.total` before their outcomes are known. */
  let inPage = 0;
  /** A page's records, read and computed: every step, and the diff that makes each one's write. */
  const preparePage = async (records: SourcePage['records']): Promise<RecordState[]> => {
    const states: RecordState[] = records.map((r) => {
      // Set one by one: the constructor's entry arrays and iterator cost more per record.
      const ctx: Context = new Map<string, unknown>();
      ctx.set('now', now);
      ctx.set(plan.source.as, r.item);
      return { key: r.key, ctx };
    });
    const alive = () => states.filter((s) => !s.outcome);

    for (const step of plan.steps) {
      const live = alive();
      if (live.length === 0) break;
      if (step.kind === 'lookup') {
        const l = lookups.get(step.name);
        if (!l) continue;
        if (l.kind === 'list') await listLookup(adapter, live, l, throttle.concurrency);
        else await batchLookup(adapter, live, step.name, (s) => renderKey(l.key, s.ctx), l.table, l.consistentRead);
      } else if (step.kind === 'extract') {
        const ex = extracts.get(step.name);
        if (!ex) continue;
        for (const s of live) {
          try {
            s.ctx.set(step.name, runExtract(ex, s.ctx));
          } catch (err) {
            if (err instanceof ExtractFailure) finish(s, 'failed', err.reason, err.message);
            else throw err;
          }
        }
      } else if (step.kind === 'skip' || step.kind === 'fail') {
        const rule = step.kind === 'skip' ? plan.skip[step.index] : plan.fail?.[step.index];
        if (!rule) continue;
        const outcome = step.kind === 'skip' ? 'skipped' : 'failed';
        for (const s of live) {
          try {
            if (evaluate(rule.when, s.ctx, sameInTarget, testInTarget)) finish(s, outcome, rule.reason);
          } catch (err) {
            if (!(err instanceof TemplateError)) throw err;
            finish(s, 'failed', err.reason, err.message);
          }
        }
      } else {
        await batchLookup(adapter, live, FETCHED_TARGET, (s) => renderKey(plan.update.key, s.ctx), plan.update.table, true);
      }
    }

    for (const s of alive()) {
      // The first record (in source order) that updates a target record has it; a later one of
      // the same run is skipped before it is compared with what the first wrote, so a dry run
      // (which never wrote it) and a live run agree, whatever the page size or concurrency.
      const targetId = written ? targetIdOf(s) : undefined;
      if (targetId !== undefined && written?.has(targetId)) {
        finish(s, 'skipped', 'duplicate_target');
        continue;
      }
      diffRecord(plan, s, finish, normalize, stored);
      // Claimed also when it already holds this record's values: a rerun then keeps them, instead
      // of letting a later record of the same target change it back and forth.
      if (targetId !== undefined && (s.write || s.reason === 'no_change')) written?.add(targetId);
    }
    return states;
  };

  /**
   * A prepared page's writes (journaled first), outcomes, checkpoint and events. Its records
   * count toward the total from its start; `inPage` holds them until it ends. `sent` is called
   * once its last batch is in the adapter's hands; `after` (the commit of the page before,
   * still running) must end before this page's outcomes are journaled, counted and reported,
   * so they keep page order.
   */
  const commitPage = async (page: SourcePage, states: RecordState[], sent?: () => void, after?: Promise<void>): Promise<void> => {
    const index = pageIndex++;
    counts.total += states.length;
    const recordsThrough = counts.total;
    inPage += states.length;
    const toWrite = states.filter((s) => !s.outcome);
    if (!options.dryRun) emit({ type: 'writing', index, writes: toWrite.length });
    if (options.dryRun) {
      for (const s of toWrite) finish(s, 'updated');
    } else {
      // A backend that can keep the position inside the target commits it with the page's last
      // batch, so a crash can never separate the two.
      // Pages that write nothing leave the target untouched; their position is in `save` alone.
      const inTarget =
        options.checkpoint && adapter.checkpoints && toWrite.length > 0
          ? {
              id: options.checkpoint.id,
              cursor: options.checkpoint.encode(page.cursor, { pages: index + 1, records: recordsThrough, writes: toWrite.length }),
            }
          : undefined;
      await saved();
      for (let i = 0; i < toWrite.length; i += batchSize) {
        const last = i + batchSize >= toWrite.length;
        const sink = { journal: options.journal, throttle, maxConcurrency, finish, emit, ...(last ? { sent, after } : {}) };
        await writeBatch(adapter, toWrite.slice(i, i + batchSize), sink, last ? inTarget : undefined);
      }
    }
    // A page without writes has nothing in flight to wait for; its outcomes still come in order.
    await after;
    for (const s of states) report(s);
    if (!options.dryRun && options.checkpoint) {
      await saved();
      const save = options.checkpoint.save(page.cursor, {
        pages: index + 1,
        records: recordsThrough,
        updated: counts.updated,
        skipped: counts.skipped,
        failed: counts.failed,
        reasons: { ...reasons },
      });
      if (save) {
        // Marked handled now; `saved()` still throws its error when it is awaited.
        save.catch(() => undefined);
        saving = save;
      }
    }
    // better-sqlite3 never yields; without this a whole synchronous run would starve the event
    // loop, and Ctrl-C (handled there) could not stop it between pages.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await emit({
      type: 'page',
      index,
      records: states.length,
      cursor: page.cursor,
      ...(page.segment !== undefined ? { segment: page.segment } : {}),
    });
    inPage -= states.length;
  };

  // Reading ahead hides a remote source's latency; a synchronous one has none to hide.
  const pageSize = options.pageSize ?? plan.run.pageSize;
  const pages = (adapter.readsAhead === false ? <T>(x: AsyncIterable<T>) => x : prefetch)(
    adapter.readPages(plan.source, {
      pageSize,
      ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      ...(options.segment ? { segment: options.segment } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    }),
  );
  // Pages overlap where the adapter says nothing page N writes can change what page N+1 reads
  // (each write goes to its own source record, nothing is looked up) and writes off the main
  // thread: page N+1 is read and computed, and journaled and handed over too, while page N's
  // writes run, so the writing thread always has the next batch waiting and the COMMIT's fsyncs
  // no longer stop the rest. Journal lines keep before-images ahead of their writes; outcomes,
  // counts, checkpoints and events keep page order.
  const overlap =
    !options.dryRun &&
    options.overlapPages !== false &&
    ownRecord &&
    plan.update.action === undefined &&
    plan.lookups.length === 0 &&
    !plan.steps.some((s) => s.kind === 'lookup' || s.kind === 'fetchTarget') &&
    // One batch a page: a page's batches are sent one after the other, so only its last can
    // be under way while the next page's is sent, and the journal settles a batch that late.
    batchSize >= pageSize &&
    adapter.overlapWrites?.(plan) === true;
  /** Commits of pages still running, oldest first: at most two where pages overlap, else none. */
  const commits: Promise<void>[] = [];
  /** A commit has failed (its error not necessarily thrown yet). */
  let aCommitFailed = false;
  /** A commit's error was thrown: those still running are of later pages. */
  let commitFailed = false;
  /** Waits until at most `keep` commits run; the first error among those ended throws. */
  const committed = async (keep: number): Promise<void> => {
    try {
      while (commits.length > keep) await commits.shift();
    } catch (err) {
      commitFailed = true;
      throw err;
    }
  };
  /** Waits for every commit; returns the first error among them instead of throwing it. */
  const allCommitted = async (): Promise<unknown> => {
    let first: unknown;
    while (commits.length > 0) await (commits.shift() as Promise<void>).catch((err: unknown) => (first ??= err));
    return first;
  };
  /** Records taken from the source so far, for `limit`. */
  let taken = 0;
  const full = () => limit !== undefined && taken >= limit;
  // A null cursor is the position after the last page: a resumed run that has nothing left.
  const iterator = (options.cursor === null ? noPages() : pages)[Symbol.asyncIterator]();
  /** The source has no more pages (or failed): nothing to end. */
  let sourceEnded = false;
  try {
    let next: Promise<IteratorResult<SourcePage>> | undefined = iterator.next();
    while (next) {
      let step: IteratorResult<SourcePage>;
      try {
        step = await next;
      } catch (err) {
        sourceEnded = true;
        throw err;
      }
      next = undefined;
      if (step.done) {
        sourceEnded = true;
        break;
      }
      const page = step.value;
      const room = limit === undefined ? page.records.length : Math.max(0, limit - taken);
      const records = page.records.slice(0, room);
      if (records.length > 0 || page.records.length === 0) {
        taken += records.length;
        let states: RecordState[];
        try {
          states = await preparePage(records);
        } finally {
          // The page two before has ended (its error throws here) before this one is journaled.
          await committed(overlap ? 1 : 0);
        }
        if (!overlap) await commitPage(page, states);
        else {
          // A page that failed stops every later one from being journaled or written: its error
          // throws here. (One already in the adapter's hands is not run: see `overlapWrites`.)
          if (aCommitFailed) await committed(0);
          // Stopped while this page was prepared: it is not written, as if never read.
          if (options.signal?.aborted) {
            interrupted = true;
            break;
          }
          // The next page is read once this one's writes are in the adapter's hands, not while
          // this page is journaled: the journal's fsync holds the main thread.
          let handedOver = () => {};
          const inHands = new Promise<void>((resolve) => {
            handedOver = resolve;
          });
          const commit = commitPage(page, states, handedOver, commits.at(-1));
          // Marked handled now; `committed()` still throws its error when it is awaited.
          commit.then(handedOver, () => {
            aCommitFailed = true;
            handedOver();
          });
          commits.push(commit);
          await inHands;
          // Read while the writes run: in rollback-journal mode a COMMIT needs every reader gone
          // and a new reader waits for a COMMIT (https://www.sqlite.org/lockingv3.html); SQLite's
          // busy handlers settle which goes first.
          if (!full()) {
            next = iterator.next();
            // Marked handled now; its error throws when it is awaited, at the loop's head.
            next.catch(() => undefined);
          }
        }
      }
      if (full()) break;
      if (!overlap && options.signal?.aborted) {
        interrupted = true;
        break;
      }
      next ??= iterator.next();
    }
    await committed(0);
  } catch (caught) {
    // Commits still running end before the run does, whatever stopped the loop; the earliest
    // page's error is the one to tell (a page prepared or read comes after every commit running).
    const later = await allCommitted();
    const err = commitFailed ? caught : (later ?? caught);
    // A wait the stop signal ended (a request cut off, a locked database still waited for): the
    // page's outcome is unknown, so it is neither counted nor checkpointed. Its writes stay in
    // the journal without an outcome, for undo to check; a resumed run does the page again.
    if (!(await stoppedWhileWaiting(err, options.signal))) {
      // Whoever handles the error may write the state itself: the last save must land first.
      await saved().catch(() => undefined);
      throw err;
    }
    counts.total -= inPage;
    interrupted = true;
  } finally {
    // As `for await` does when a loop ends early: the source releases what it holds.
    if (!sourceEnded) await iterator.return?.()?.catch(() => undefined);
  }
  await saved();

  // An adapter may end its pages quietly on abort: the run was still cut short.
  if (options.signal?.aborted) interrupted = true;

  const summary: RunSummary = {
    fix: plan.fix,
    dryRun: options.dryRun,
    total: counts.total,
    updated: counts.updated,
    ...(plan.update.action ? { action: plan.update.action } : {}),
    skipped: counts.skipped,
    failed: counts.failed,
    reasons: sortedReasons(reasons),
    durationMs: Math.round(performance.now() - started),
  };
  emit({ type: 'done', summary, interrupted });
  return summary;
}

/**
 * Whether `err` ended a wait that a stop signal (Ctrl-C, SIGTERM, SIGHUP) interrupted: a request
 * cut off (`AbortError`), or a SQLite database still locked at the end of its busy timeout
 * (DF411) with the signal sent during the wait. better-sqlite3 waits synchronously, so the
 * signal's handler runs only after the wait, when the event loop next polls: that is let happen
 * first.
 * False without a signal, for any other error, and for a lock that simply outlasted the timeout.
 */
export async function stoppedWhileWaiting(err: unknown, signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal) return false;
  const waited = (err as Error | undefined)?.name === 'AbortError' || (err instanceof DatafixError && err.code === 'DF411');
  if (!waited) return false;
  // Two turns: the first may end before the loop polls again, where the signal is read.
  for (let turn = 0; turn < 2 && !signal.aborted; turn++) await new Promise((resolve) => setImmediate(resolve));
  return signal.aborted;
}

function sortedReasons(reasons: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(reasons).sort(([a], [b]) => a.localeCompare(b)));
}

function renderKey(key: FixPlan['update']['key'], ctx: Context): Item | undefined {
  const out: Item = {};
  for (const [k, t] of key) {
    const v = render(t, ctx);
    if (v === MISSING) return undefined;
    out[k] = v;
  }
  return out;
}

/** One batched round of lookups for a page; records whose key cannot be rendered find nothing. */
async function batchLookup(
  adapter: Adapter,
  states: RecordState[],
  name: string,
  keyOf: (s: RecordState) => Item | undefined,
  table: string | undefined,
  consistentRead: boolean,
): Promise<void> {
  const requests: LookupRequest[] = [];
  const owners: RecordState[] = [];
  for (const s of states) {
    let key: Item | undefined;
    try {
      key = keyOf(s);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      s.outcome = 'failed';
      s.reason = err.reason;
      s.message = err.message;
      continue;
    }
    if (!key) {
      s.ctx.set(name, undefined);
      continue;
    }
    requests.push({ ...(table !== undefined ? { table } : {}), key, consistentRead });
    owners.push(s);
  }
  if (requests.length === 0) return;
  const found = await adapter.lookup(requests);
  owners.forEach((s, i) => {
    const answer = found[i];
    // One record's unusable key fails that record alone; the rest of the page goes on.
    if (answer instanceof LookupRejected) {
      s.outcome = 'failed';
      s.reason = answer.reason;
      s.message = answer.message;
    } else if (name === FETCHED_TARGET) s.target = answer;
    else s.ctx.set(name, answer);
  });
}

/**
 * One round of a lookup of several records for a page: every record's rendered match goes to
 * the adapter at once (SQLite answers a page with one statement; DynamoDB queries each, at most
 * `concurrency` at a time). A record whose match renders missing matches nothing: an empty list.
 */
async function listLookup(adapter: Adapter, states: RecordState[], l: ListLookupPlan, concurrency: number): Promise<void> {
  if (!adapter.lookupMany) {
    throw new DatafixError(
      'config',
      'DF790',
      `the ${adapter.backend} backend cannot look up several records; lookup \`${l.name}\` needs it`,
    );
  }
  const requests: ListLookupRequest[] = [];
  const owners: RecordState[] = [];
  for (const s of states) {
    let match: Item | undefined;
    const values: unknown[] = [];
    try {
      match = renderKey(l.match, s.ctx);
      for (const t of l.sortKey?.values ?? []) {
        const v = render(t, s.ctx);
        if (v === MISSING) match = undefined;
        values.push(v);
      }
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      s.outcome = 'failed';
      s.reason = 'template_error';
      s.message = err.message;
      continue;
    }
    if (!match) {
      s.ctx.set(l.name, []);
      continue;
    }
    requests.push({
      ...(l.table !== undefined ? { table: l.table } : {}),
      ...(l.index !== undefined ? { index: l.index } : {}),
      match,
      ...(l.sortKey ? { sortKey: { name: l.sortKey.name, op: l.sortKey.op, values } } : {}),
      ...(l.where ? { where: l.where } : {}),
      max: l.max,
      consistentRead: l.consistentRead,
    });
    owners.push(s);
  }
  if (requests.length === 0) return;
  const found = await adapter.lookupMany(requests, { concurrency });
  owners.forEach((s, i) => {
    const answer = found[i] ?? [];
    if (answer instanceof LookupRejected) {
      s.outcome = 'failed';
      s.reason = answer.reason;
      s.message = answer.message;
    } else s.ctx.set(l.name, answer);
  });
}

type Finish = (s: RecordState, outcome: RecordOutcome, reason?: string, message?: string) => void;

/** Renders the update and compares it with the record's current values. */
function diffRecord(
  plan: FixPlan,
  s: RecordState,
  finish: Finish,
  normalize: (v: unknown) => unknown,
  stored: (table: string | undefined, field: string, v: unknown) => unknown,
): void {
  const u = plan.update;
  try {
    const key = renderKey(u.key, s.ctx);
    if (!key) {
      finish(s, 'failed', 'template_error', 'the update key references a missing value');
      return;
    }
    const before = (u.before.kind === 'context' ? s.ctx.get(u.before.root) : s.target) as Item | undefined;
    if (u.action === 'create') {
      createRecord(plan, s, key, before, finish, stored);
      return;
    }
    if (!before) {
      finish(s, 'skipped', 'not_found');
      return;
    }
    if (u.action === 'delete') {
      // The whole before-image, every field going to absent: the dry run shows the record that
      // goes, the journal keeps all of it, and the delete is guarded on all of it.
      const changes: FieldChange[] = Object.keys(before).map((field) => ({
        field,
        before: before[field],
        after: undefined,
        guard: 'unchanged',
      }));
      s.changes = changes;
      s.write = writeOf(u.table, key, changes, 'delete');
      return;
    }
    const changes: FieldChange[] = [];
    for (const f of u.set) {
      const rendered = render(f.template, s.ctx);
      if (rendered === MISSING) continue;
      // What the target will hold: shown, journaled and written, so undo finds exactly it.
      const after = stored(u.table, f.field, rendered);
      if (nestedDeeperThan(after, MAX_VALUE_DEPTH)) {
        finish(s, 'failed', 'value_too_deep', `${f.field}: the value nests more than ${MAX_VALUE_DEPTH} levels deep`);
        return;
      }
      const current = Object.hasOwn(before, f.field) ? before[f.field] : undefined;
      if (f.overwrite) {
        // Compared as the backend would store it, so a rerun of an overwrite is a no-op.
        if (!deepEqual(current, normalize(after))) changes.push({ field: f.field, before: current, after, guard: 'unchanged' });
      } else if (isAbsent(current)) {
        changes.push({ field: f.field, before: current, after, guard: 'absent' });
      }
    }
    // A removed field reads back as the backend's "absent" (SQLite: NULL, DynamoDB: no
    // attribute); one already so is no change. Guarded on the value read, like an overwrite.
    const removed = normalize(undefined);
    for (const field of u.remove ?? []) {
      const current = Object.hasOwn(before, field) ? before[field] : undefined;
      if (current !== undefined && !deepEqual(current, removed))
        changes.push({ field, before: current, after: removed, guard: 'unchanged', remove: true });
    }
    if (changes.length === 0) {
      finish(s, 'skipped', 'no_change');
      return;
    }
    for (const t of u.touch) {
      const rendered = render(t.template, s.ctx);
      if (rendered === MISSING) continue;
      const after = stored(u.table, t.field, rendered);
      const current = Object.hasOwn(before, t.field) ? before[t.field] : undefined;
      // Guarded on the value read, like every other field: the before-image must be what the
      // write really replaces. Another writer that changed the record since it was read (and
      // bumped its timestamp) makes the record a conflict, so undo can never restore a stale value.
      changes.push({ field: t.field, before: current, after, guard: 'unchanged', touch: true });
    }
    s.changes = changes;
    s.write = writeOf(u.table, key, changes);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    finish(s, 'failed', err.reason, err.message);
  }
}

/** The guarded write that makes `changes`: every field's before-image is its guard's value. */
function writeOf(table: string | undefined, key: Item, changes: readonly FieldChange[], action?: WriteAction): WriteRequest {
  return {
    ...(action ? { action } : {}),
    ...(table !== undefined ? { table } : {}),
    key,
    fields: changes.map((c) => ({ name: c.field, value: c.after, guard: c.guard, before: c.before })),
  };
}

/**
 * A `create`: the record its key names, only where none exists (`exists` otherwise, never an
 * overwrite). Its changes are the whole new record, key fields first, each absent before.
 */
function createRecord(
  plan: FixPlan,
  s: RecordState,
  key: Item,
  existing: Item | undefined,
  finish: Finish,
  stored: (table: string | undefined, field: string, v: unknown) => unknown,
): void {
  const u = plan.update;
  if (existing) {
    finish(s, 'skipped', 'exists');
    return;
  }
  const changes: FieldChange[] = [];
  const fields: [string, unknown][] = [...Object.entries(key)];
  for (const f of u.set) {
    const rendered = render(f.template, s.ctx);
    if (rendered !== MISSING) fields.push([f.field, rendered]);
  }
  for (const [field, value] of fields) {
    const after = stored(u.table, field, value);
    if (nestedDeeperThan(after, MAX_VALUE_DEPTH)) {
      finish(s, 'failed', 'value_too_deep', `${field}: the value nests more than ${MAX_VALUE_DEPTH} levels deep`);
      return;
    }
    changes.push({ field, before: undefined, after, guard: 'absent' });
  }
  s.changes = changes;
  s.write = writeOf(u.table, key, changes, 'create');
}

/**
 * Applies one batch. Writes the backend could not make because it was throttled come back as
 * `retry`: they are requeued with backoff at a lower concurrency, which recovers as writes succeed.
 */
async function writeBatch(
  adapter: Adapter,
  batch: RecordState[],
  sink: {
    journal: WriteJournal | undefined;
    throttle: { concurrency: number; retryBaseMs: number; maxRequeues: number };
    maxConcurrency: number;
    finish: Finish;
    emit: (e: EngineEvent) => void;
    /** Called once a batch is in the adapter's hands (its `write` called, not yet answered). */
    sent?: () => void;
    /** Ends before this batch's outcomes are journaled: the commit of the page before. */
    after?: Promise<void>;
  },
  checkpoint: { id: string; cursor: string } | undefined,
): Promise<void> {
  const { journal, throttle, maxConcurrency, finish, emit, sent, after } = sink;
  await journal?.intend(batch.map((s) => s.write as WriteRequest));
  let pending = batch;
  for (let attempt = 0; pending.length > 0; attempt++) {
    const requests = pending.map((s) => s.write as WriteRequest);
    const answer = adapter.write(requests, {
      concurrency: throttle.concurrency,
      ...(attempt === 0 && checkpoint ? { checkpoint } : {}),
      ...(attempt > 0 ? { resend: true } : {}),
    });
    sent?.();
    const results: WriteResult[] = await answer;
    await after;
    const retry: RecordState[] = [];
    let throttled = 0;
    pending.forEach((s, i) => {
      const r = results[i] ?? { status: 'failed', reason: 'write_failed', message: 'no result from the backend' };
      if (r.status === 'applied') finish(s, 'updated');
      else if (r.status === 'conflict' || r.status === 'not_found') finish(s, 'skipped', r.status);
      else if (r.status === 'failed') finish(s, 'failed', r.reason, r.message);
      else {
        throttled++;
        if (attempt < throttle.maxRequeues) retry.push(s);
        else finish(s, 'failed', 'throttled', r.message);
      }
    });
    await journal?.settle(requests, results);
    // Any throttled answer halves the concurrency, also one that ends its record's requeues: the
    // backend is still throttling, so the next batch must not go faster. A clean attempt adds one.
    throttle.concurrency =
      throttled === 0 ? Math.min(maxConcurrency, throttle.concurrency + 1) : Math.max(1, Math.floor(throttle.concurrency / 2));
    if (retry.length === 0) return;
    const waitMs = Math.min(20_000, throttle.retryBaseMs * 2 ** attempt) * (0.5 + Math.random() / 2);
    emit({ type: 'throttled', records: retry.length, concurrency: throttle.concurrency, waitMs: Math.round(waitMs) });
    await sleep(waitMs);
    pending = retry;
  }
}

// An interrupt does not cut this wait short: requeued writes still finish before the run stops.
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A source without pages. */
async function* noPages(): AsyncGenerator<SourcePage> {}

/** Reads page N+1 while page N is processed, so the source's latency overlaps the work. */
async function* prefetch<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  // A read that fails while the page before it is processed is raised where it is awaited (the
  // run's error path), not as an unhandled rejection, which would end the process mid-page.
  const read = () => {
    const pending = it.next();
    pending.catch(() => undefined);
    return pending;
  };
  let next = read();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = read();
      yield r.value;
    }
  } finally {
    // Settle the read in flight before closing, so an early stop never leaves it dangling.
    await next.catch(() => undefined);
    await it.return?.();
  }
}
