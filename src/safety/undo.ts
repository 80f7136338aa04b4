/**
 * `datafix undo`: puts back the before-images a journal recorded. Each restore is a guarded write
 * conditional on the field still holding what the run wrote, so a record changed since is left
 * alone and reported as a conflict; a record already as it was before counts as unchanged.
 */
import { createAdapter, describeTarget } from '../adapters/registry.js';
import { type Adapter, LookupRejected, type WriteRequest } from '../adapters/types.js';
import { stoppedWhileWaiting } from '../engine/run.js';
import { DatafixError } from '../errors.js';
import { deepEqual, toJsonSafe } from '../plan/values.js';
import { type JournalHeader, type JournalWrite, openJournal } from './journal.js';
import { runKey } from './state.js';

export interface UndoSummary {
  readonly journal: string;
  readonly fix: string;
  readonly dryRun: boolean;
  /** Writes in the journal: every journaled record, whatever its outcome. */
  readonly total: number;
  /** Recorded by the run as not made (conflict, not found, failed): nothing to restore. */
  readonly notWritten: number;
  /** Restored to the before-image (in a dry run: would be). */
  readonly restored: number;
  /** Already as before the run (the write never landed, or was undone already). */
  readonly unchanged: number;
  /** Changed by someone else since the run: left alone. */
  readonly conflicts: number;
  readonly failed: number;
  readonly durationMs: number;
  /**
   * Present (true) when a stop signal ended the undo between batches: `total` counts the writes
   * handled by then. Running undo again is safe: what was restored counts as unchanged.
   */
  readonly interrupted?: true;
}

export interface UndoEvent {
  readonly outcome: 'restored' | 'unchanged' | 'conflict' | 'failed';
  readonly table?: string;
  readonly key: Record<string, unknown>;
  readonly message?: string;
}

export interface UndoOptions {
  readonly dryRun: boolean;
  /** Undo a format-1 journal, whose lines carry no checksums (`--unverified`); refused otherwise. */
  readonly allowUnverified?: boolean;
  readonly batchSize?: number;
  readonly concurrency?: number;
  /**
   * Receives each record's outcome. A listener whose output cannot keep up (a full pipe) returns
   * a promise: undo waits for it after the batch, before reading on, so unread lines never pile
   * up in memory.
   */
  readonly onEvent?: (e: UndoEvent) => void | Promise<void>;
  readonly onTarget?: (target: string) => void;
  /** Things worth telling the person running it (e.g. a format-1 journal cannot be verified). */
  readonly onNote?: (text: string) => void;
  /**
   * Called after a batch's records were read and before their restores are written. Restores are
   * conditional, so a change made in this window must survive as a conflict; tests use this to
   * make one with a second connection.
   */
  readonly beforeRestore?: (writes: readonly JournalWrite[]) => void | Promise<void>;
  /**
   * The fencing check, called before each batch of restores is written: it throws (DF713) once
   * the target lock this undo holds was taken by another process, so the undo stops before
   * writing over that process's work. The CLI passes its lock's `verify`.
   */
  readonly fence?: () => void;
  readonly adapter?: { readonly dynamodb?: Record<string, unknown> };
  /** Stops the undo between batches once aborted (Ctrl-C): the batch in flight is restored first. */
  readonly signal?: AbortSignal;
}

type Current = Record<string, unknown> | undefined;

/** How many records a dry run remembers as its restores would leave them (see `restoredInDryRun`). */
const DRY_RUN_MEMORY = 100_000;

/**
 * Whether the record holds each field's journaled value: equal as read, or equal once both are
 * put as the backend stores them (`normalize`), as for a REAL read back exactly whose journaled
 * text a double cannot print, or a journal written before values were journaled as stored.
 */
function holds(current: Current, w: JournalWrite, which: 'before' | 'after', normalize: (v: unknown) => unknown): boolean {
  if (!current) return false;
  return w.fields.every(
    (f) =>
      deepEqual(current[f.name], f[which]) ||
      deepEqual(normalize(current[f.name]), normalize(f[which])) ||
      (f[which] === undefined && current[f.name] === null),
  );
}

/**
 * How undo reverses a delete or a create: a deleted record is created again from its before-image
 * only where no record has its key (never a replace); a created record is deleted only while every
 * field it was created with still holds that value and, where records hold only the fields they
 * were given (`onlyGivenFields`: DynamoDB items, unlike SQLite rows with their other columns), it
 * has gained none. The delete is guarded on the whole record as undo read it. Otherwise the
 * outcome to report.
 */
function undoWholeRecord(
  w: JournalWrite,
  current: Current,
  normalize: (v: unknown) => unknown,
  onlyGivenFields: boolean,
): WriteRequest | { outcome: 'unchanged' | 'conflict'; message?: string } {
  const base = { ...(w.table !== undefined ? { table: w.table } : {}), key: w.key };
  if (w.action === 'delete') {
    if (!current) {
      return {
        ...base,
        action: 'create',
        fields: w.fields.filter((f) => f.before !== undefined).map((f) => ({ name: f.name, value: f.before, guard: 'absent' as const })),
      };
    }
    // The delete never landed (or was undone already): the record is as it was.
    if (holds(current, w, 'before', normalize)) return { outcome: 'unchanged' };
    return { outcome: 'conflict', message: 'a record with this key exists again and differs from the one deleted; it was left alone' };
  }
  // A created record that is gone is as it was before the run.
  if (!current) return { outcome: 'unchanged' };
  const gained = onlyGivenFields ? Object.keys(current).filter((name) => !w.fields.some((f) => f.name === name)) : [];
  // Where the backend reported the record as stored (SQLite: with its defaults), every column
  // must still hold that: a column someone filled in since is theirs, not the run's to delete.
  const stored = w.stored;
  const changedColumns = stored
    ? [...new Set([...Object.keys(stored), ...Object.keys(current)])].filter(
        (name) => !deepEqual(current[name], stored[name]) && !deepEqual(normalize(current[name]), normalize(stored[name])),
      )
    : [];
  if (changedColumns.length > 0) {
    return { outcome: 'conflict', message: `changed since the run created it (${changedColumns.join(', ')}); it was left alone` };
  }
  if (holds(current, w, 'after', normalize) && gained.length === 0) {
    return {
      ...base,
      action: 'delete',
      fields: Object.entries(current).map(([name, before]) => ({ name, value: undefined, guard: 'unchanged' as const, before })),
    };
  }
  if (gained.length > 0) {
    return { outcome: 'conflict', message: `changed since the run created it (it gained ${gained.join(', ')}); it was left alone` };
  }
  return { outcome: 'conflict', message: 'changed since the run created it; it was left alone' };
}

/**
 * The undone run cannot be resumed (DF721), so the checkpoint it keeps in the target (SQLite:
 * a row of `_datafix_checkpoints`) goes, and the table with it once no other run keeps one there.
 * Only the checkpoint of this journal's run: another run's is left alone.
 */
function clearCheckpoint(adapter: Adapter, header: JournalHeader): void {
  if (!adapter.checkpoints || !header.runId) return;
  const key = runKey({ fix: header.fix, target: header.target });
  const stored = adapter.checkpoints.read(key);
  if (stored === undefined) return;
  let runId: unknown;
  try {
    runId = (JSON.parse(stored) as { runId?: unknown }).runId;
  } catch {
    return;
  }
  if (runId === header.runId) adapter.checkpoints.clear(key);
}

/**
 * Restores the before-images in the journal at `path`, newest write first. The whole journal is
 * checked before the first restore (see `openJournal`).
 * @throws DatafixError DF702/DF703/DF705/DF707 when the journal cannot be trusted (nothing restored);
 *   DF706 when undo stops part-way (the message says how many records were restored).
 */
export async function undoJournal(path: string, options: UndoOptions): Promise<UndoSummary> {
  const started = performance.now();
  const journal = await openJournal(path);
  if (!journal.verified && !options.allowUnverified) {
    // A journal edited and stripped of its checksums reads the same: only the user can vouch.
    throw new DatafixError(
      'usage',
      'DF707',
      `${path} is a format-1 journal: its lines carry no checksums, so edits to it cannot be detected, and nothing was restored. If it was written by an older datafix and nobody changed it since, run undo again with --unverified`,
    );
  }
  if (!journal.verified) {
    options.onNote?.(
      `${path} is a format-1 journal (written before journals carried checksums): its lines cannot be verified against edits, so undo trusts them as written`,
    );
  }
  if (!journal.ended) {
    options.onNote?.(
      `${path} has no end line: the run was stopped (killed, interrupted, out of disk) or the journal was cut short. Undo restores every write the journal holds; if lines were cut from its end, the writes they recorded are not restored`,
    );
  }
  const adapter: Adapter = await createAdapter(journal.header.target, {
    readonly: options.dryRun,
    ...(options.adapter?.dynamodb ? { dynamodb: options.adapter.dynamodb } : {}),
  });
  const counts = { total: 0, notWritten: 0, restored: 0, unchanged: 0, conflicts: 0, failed: 0 };
  let interrupted = false;
  const emit = (outcome: UndoEvent['outcome'], w: JournalWrite, message?: string) => {
    counts[outcome === 'conflict' ? 'conflicts' : outcome]++;
    const wait = options.onEvent?.({
      outcome,
      ...(w.table !== undefined ? { table: w.table } : {}),
      key: w.key,
      ...(message ? { message } : {}),
    });
    if (wait) waiting = wait;
  };
  /** The output's latest "wait for room" (see `onEvent`), awaited between batches. */
  let waiting: Promise<void> | undefined;
  const flushed = async (batch: JournalWrite[]) => {
    await flush(batch);
    const w = waiting;
    waiting = undefined;
    await w;
    // SQLite answers synchronously and the journal is read synchronously: without a turn of the
    // event loop here, a stop signal (Ctrl-C, SIGTERM) would not be heard until the undo ended.
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const normalize = (v: unknown) => (adapter.normalize ? adapter.normalize(v) : v);

  /**
   * A dry run writes nothing, so a record the journal holds twice (a batch a killed run journaled
   * but never committed, redone by its --resume) would be judged against its value before the
   * newer write's restore: a conflict the real undo, restoring the newer write first, never meets.
   * The dry run therefore judges it against the record as its own restores would leave it, for the
   * last DRY_RUN_MEMORY records it restored (the newer write is near: journals are read newest
   * first, and a resume redoes the interrupted page first). Kept per record: the fields a restore
   * sets (undefined: removes), or that it deletes or creates the whole record.
   */
  const restoredInDryRun = new Map<string, { gone: true } | { fields: Record<string, unknown>; whole: boolean }>();
  const idOf = (w: JournalWrite) => JSON.stringify([w.table ?? '', toJsonSafe(w.key)]);
  const afterDryRestore = (w: JournalWrite, request: WriteRequest) => {
    const id = idOf(w);
    const fields: Record<string, unknown> = {};
    for (const f of request.fields) fields[f.name] = f.value;
    restoredInDryRun.delete(id);
    restoredInDryRun.set(id, request.action === 'delete' ? { gone: true } : { fields, whole: request.action === 'create' });
    if (restoredInDryRun.size > DRY_RUN_MEMORY) restoredInDryRun.delete(restoredInDryRun.keys().next().value as string);
  };
  /** The record as the dry run's earlier restores would leave it; `read` is what the target holds. */
  const asRestored = (w: JournalWrite, read: Current): Current => {
    const simulated = options.dryRun ? restoredInDryRun.get(idOf(w)) : undefined;
    if (simulated === undefined) return read;
    if ('gone' in simulated) return undefined;
    const record: Record<string, unknown> = simulated.whole ? {} : { ...read };
    for (const [name, value] of Object.entries(simulated.fields)) {
      if (value === undefined) delete record[name];
      else record[name] = value;
    }
    return record;
  };

  const flush = async (batch: JournalWrite[]) => {
    if (batch.length === 0) return;
    const currents = await adapter.lookup(
      batch.map((w) => ({ ...(w.table !== undefined ? { table: w.table } : {}), key: w.key, consistentRead: true })),
    );
    const restore: { w: JournalWrite; request: WriteRequest }[] = [];
    batch.forEach((w, i) => {
      const answer = currents[i];
      if (answer instanceof LookupRejected) {
        emit('failed', w, answer.message);
        return;
      }
      const current = asRestored(w, answer);
      if (w.action) {
        const request = undoWholeRecord(w, current, normalize, journal.header.target.backend === 'dynamodb');
        if ('outcome' in request) emit(request.outcome, w, request.message);
        else restore.push({ w, request });
      } else if (!current) emit('conflict', w, 'the record no longer exists');
      else if (holds(current, w, 'after', normalize)) {
        restore.push({
          w,
          request: {
            ...(w.table !== undefined ? { table: w.table } : {}),
            key: w.key,
            // Conditional on each field still holding what the run wrote.
            fields: w.fields.map((f) => ({ name: f.name, value: f.before, guard: 'unchanged' as const, before: f.after })),
          },
        });
      } else if (holds(current, w, 'before', normalize)) emit('unchanged', w);
      else
        emit(
          'conflict',
          w,
          w.outcome === 'unknown'
            ? 'the run stopped before recording this write; the record holds neither its before-image nor what the run wrote'
            : 'changed since the run',
        );
    });
    if (options.dryRun) {
      for (const r of restore) {
        afterDryRestore(r.w, r.request);
        emit('restored', r.w);
      }
      return;
    }
    if (restore.length > 0) await options.beforeRestore?.(restore.map((r) => r.w));
    if (restore.length > 0) options.fence?.();
    const results = await adapter.write(
      restore.map((r) => r.request),
      { concurrency: options.concurrency ?? 10 },
    );
    restore.forEach((r, i) => {
      const res = results[i];
      if (res?.status === 'applied') emit('restored', r.w);
      else if (res?.status === 'conflict' || res?.status === 'not_found') emit('conflict', r.w, 'changed while undoing');
      else emit('failed', r.w, res && 'message' in res ? res.message : 'no result');
    });
  };

  const flushOrStop = async (batch: JournalWrite[]) => {
    const before = { ...counts };
    try {
      await flushed(batch);
    } catch (err) {
      // Restores a stop signal ended the wait of (a target that does not answer, a locked
      // database): their outcome is unknown, so none of the batch is counted; running undo
      // again checks them like any other.
      if (!(await stoppedWhileWaiting(err, options.signal))) throw err;
      Object.assign(counts, before, { total: before.total - batch.length });
    }
  };

  try {
    options.onTarget?.(describeTarget(journal.header.target));
    let batch: JournalWrite[] = [];
    const inBatch = new Set<string>();
    for await (const w of journal.writes()) {
      // Between batches: the restores of the last one are settled.
      if (options.signal?.aborted) break;
      counts.total++;
      if (w.outcome === 'not written') {
        counts.notWritten++;
        continue;
      }
      // A record written twice is restored one step at a time: never twice in one batch.
      const id = idOf(w);
      if (inBatch.has(id) || batch.length >= (options.batchSize ?? 100)) {
        await flushOrStop(batch);
        batch = [];
        inBatch.clear();
      }
      batch.push(w);
      inBatch.add(id);
    }
    if (options.signal?.aborted) counts.total -= batch.length;
    else await flushOrStop(batch);
    interrupted = options.signal?.aborted === true;
    // Only a whole undo ends the run: an interrupted one is continued by running undo again.
    if (!interrupted && !options.dryRun) clearCheckpoint(adapter, journal.header);
  } catch (err) {
    const cause = err instanceof DatafixError ? `${err.code} ${err.message}` : String((err as Error)?.message ?? err);
    const open = journal.writeCount - counts.restored - counts.unchanged - counts.conflicts - counts.failed - counts.notWritten;
    throw new DatafixError(
      err instanceof DatafixError ? err.category : 'connection',
      'DF706',
      `undo of ${path} stopped part-way: ${counts.restored} record(s) ${options.dryRun ? 'would have been' : 'were'} restored, ${counts.unchanged} already held their before-image, ${counts.conflicts} conflict(s) and ${counts.failed} failure(s) were left alone, ${counts.notWritten} write(s) the run never made need nothing, and ${open} journaled write(s) were not restored. Cause: ${cause}. Fix the cause and run undo again: records already restored then count as unchanged`,
    );
  } finally {
    await adapter.close();
  }
  return {
    journal: path,
    fix: journal.header.fix,
    dryRun: options.dryRun,
    ...counts,
    durationMs: Math.round(performance.now() - started),
    ...(interrupted ? { interrupted: true as const } : {}),
  };
}
