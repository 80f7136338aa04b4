/**
 * A live run with its safety net: the lock (one writer per target), the journal (undo),
 * and checkpoints after every page (resume). Dry runs need none of these and go straight through.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { redactTarget } from '../adapters/redact.js';
import { describeTarget } from '../adapters/registry.js';
import { type RunResult, type RunSpecOptions, runPlan } from '../api.js';
import { DatafixError } from '../errors.js';
import type { FixPlan, TargetPlan } from '../plan/types.js';
import { VERSION } from '../version.js';
import { JournalWriter, journalCutError, openJournal } from './journal.js';
import { TargetLock } from './lock.js';
import { preflight } from './preflight.js';
import { newRunId, type ResumedPart, type RunCounts, type RunState, RunStateStore, runKey, type Segment, targetIdentity } from './state.js';

export interface SafeRunOptions extends RunSpecOptions {
  /** Where `.datafix/` lives (the working directory). */
  readonly cwd: string;
  readonly specFile: string;
  /** Journal path; default `.datafix/runs/<run>--<time>.journal.jsonl`. */
  readonly journalPath?: string;
  /** Continue the last interrupted run of this fix on this target. */
  readonly resume?: boolean;
  /** Things worth telling the person running it (journal path, what resume does). */
  readonly onNote?: (text: string) => void;
  /**
   * A resumed run, once connected: what the interrupted run had done and where it goes on (else
   * that is an `onNote`). Called before the first page.
   */
  readonly onResume?: (part: ResumedPart) => void;
}

export interface SafeRunResult extends RunResult {
  readonly journal?: string;
  /** A resumed run: the interrupted part. */
  readonly resumed?: ResumedPart;
  /**
   * A resumed run: the whole run's totals (the interrupted part and this one). Only `total` when
   * the interrupted part's outcome counts are not all known (see `ResumedPart.counts`).
   */
  readonly wholeRun?: RunCounts | { readonly total: number };
}

/** What a checkpoint stored inside the target holds (SQLite). */
interface StoredCheckpoint {
  readonly runId?: string;
  readonly pages: number;
  readonly records: number;
  /** Absent in the row a run stores when it starts: it begins at the first page. */
  readonly cursor?: unknown;
  /**
   * The last write the journal holds once this page's writes are journaled (they are, before
   * its transaction commits): a journal that ends before it was cut (DF728). Absent in the row
   * a run starts with, and in rows an earlier datafix stored.
   */
  readonly journalSeq?: number;
  /** When the page was written (ISO 8601): what a resume from this checkpoint says it goes on from. */
  readonly at?: string;
}

/**
 * How often, at most, a run whose target commits its position with each page's writes (SQLite)
 * also saves its state file, in milliseconds: every page's save cost a light fix about a sixth of
 * its run (docs/performance.md), and the target's checkpoint already holds where to go on and how
 * far the journal reached. DynamoDB keeps its position only in the state file, which follows
 * every page. Tests set 0 to see every page's save.
 */
export const stateSaves = { intervalMs: 1000 };

/**
 * Refuses `--segment` on a source that cannot be split. Only a DynamoDB scan can be: anything
 * else would hand every "segment" every record, so N processes would each run the whole fix.
 * @throws DatafixError DF727 (exit 2).
 */
export function checkSegmentable(plan: FixPlan, segment: Segment | undefined): void {
  if (!segment || plan.source.kind === 'scan') return;
  throw new DatafixError(
    'usage',
    'DF727',
    `--segment splits a DynamoDB scan, but ${plan.fix} reads ${plan.target.backend === 'sqlite' ? 'a SQLite table' : `with source.${plan.source.kind}`}, which cannot be split: every process would handle every record. Run it once, without --segment and --total-segments`,
  );
}

/**
 * Runs a plan live with lock, journal and checkpoints (or as a dry run without them).
 * Throws `DatafixError`: DF727 `--segment` on a source that is not a scan; DF710/DF711/DF714 the
 * target is locked; on `--resume`: DF721 nothing to resume, DF720 the spec changed, DF724 the
 * journal is gone, DF725 the journal belongs to another run, DF726 the target no longer holds the
 * checkpoint the run committed to it; DF713 while running: the lock was taken over.
 */
export async function runPlanSafely(plan: FixPlan, options: SafeRunOptions): Promise<SafeRunResult> {
  checkSegmentable(plan, options.segment);
  if (options.dryRun) {
    if (options.resume) throw new DatafixError('usage', 'DF722', '--resume continues a live run; it cannot be combined with --dry-run');
    return runPlan(plan, options);
  }
  const segment = options.segment ? { segment: options.segment } : {};
  const key = runKey({ fix: plan.fix, target: plan.target, ...segment });
  // Nothing is locked or written until the run is known to be able to write all of it.
  await preflight(plan, {
    cwd: options.cwd,
    ...(options.journalPath && !options.resume ? { journalPath: options.journalPath } : {}),
    ...(options.adapter ? { adapter: options.adapter } : {}),
  });
  // What the journal and state file record: the target without credentials.
  const storedTarget = redactTarget(plan.target);
  const store = new RunStateStore(options.cwd);
  const lock = TargetLock.acquire(plan.target, {
    fix: plan.fix,
    spec: options.specFile,
    purpose: options.resume ? 'resume' : 'run',
    ...segment,
    takeOverStale: options.resume ?? false,
  });
  let journal: JournalWriter | undefined;
  let state: RunState | undefined;
  try {
    const previous = store.read(key);
    const startedAt = new Date().toISOString();
    // The whole run's limit: the interrupted run's on --resume, else --limit or the spec's.
    const runLimit = options.resume ? (previous?.limit ?? undefined) : (options.limit ?? plan.run.limit);
    let base = { pages: 0, records: 0 };
    // The outcomes of the `base.records` the interrupted run read (its state's), when known.
    let baseCounts: RunCounts | undefined = { total: 0, updated: 0, skipped: 0, failed: 0, reasons: {} };
    let updatedTargets: Record<string, unknown>[] | undefined;
    let cursor: unknown;
    let runId: string;
    if (options.resume) {
      if (!previous || previous.status === 'done' || previous.status === 'undone') {
        throw new DatafixError(
          'usage',
          'DF721',
          `there is no interrupted run of ${plan.fix} on this target to resume${previous?.status === 'undone' ? ` (the last one was undone from ${previous.journal})` : ''}; run without --resume`,
        );
      }
      if (previous.specChecksum !== plan.specChecksum) {
        throw new DatafixError(
          'usage',
          'DF720',
          `${options.specFile} changed since the interrupted run (${previous.startedAt}); resuming would mix two different fixes. Run without --resume to start over (rows already fixed are skipped)`,
        );
      }
      // A resumed run ends where the interrupted one would have: with its --limit (or the spec's
      // run.limit) counted from the run's first record, not from the resume point.
      if (options.limit !== undefined && options.limit !== (previous.limit ?? undefined)) {
        throw new DatafixError(
          'usage',
          'DF729',
          `--limit ${options.limit} is not the interrupted run's ${previous.limit === undefined ? 'limit (it had none)' : `--limit ${previous.limit}`}; resume with the same limit, or without --limit`,
        );
      }
      await checkJournalBelongs(previous, plan);
      // A run that can meet one target twice remembers the targets its journal already holds.
      // That is every run whose target is not the source record itself (a fetched record, or a
      // lookup's), as the engine counts duplicate_target.
      const ownRecord = plan.update.before.kind === 'context' && plan.update.before.root === plan.source.as;
      const keys: Record<string, unknown>[] | undefined = ownRecord ? undefined : [];
      journal = await JournalWriter.reopen(previous.journal, {
        ...(previous.journalSeq !== undefined ? { recordedSeq: previous.journalSeq } : {}),
        ...(keys ? { onWrite: (key: Record<string, unknown>) => keys.push(key) } : {}),
      });
      // The resumed run goes on writing the same journal: say where it is, as a new run does.
      options.onNote?.(`journal ${previous.journal} (undo with: datafix undo ${previous.journal})`);
      updatedTargets = keys;
      runId = previous.runId ?? newRunId();
      base = { pages: previous.pages, records: previous.records };
      baseCounts = previous.counts;
      cursor = previous.cursor;
    } else {
      if (previous && previous.status !== 'done' && previous.status !== 'undone') {
        options.onNote?.('an earlier run of this fix on this target did not finish; starting over (--resume would continue it instead)');
      }
      runId = newRunId();
      const path = resolve(options.cwd, options.journalPath ?? store.journalPath(key, startedAt));
      journal = JournalWriter.create(path, {
        fix: plan.fix,
        specFile: resolve(options.cwd, options.specFile),
        specChecksum: plan.specChecksum,
        target: storedTarget,
        runId,
        stateDir: resolve(options.cwd),
        startedAt,
        datafixVersion: VERSION,
      });
      options.onNote?.(`journal ${path} (undo with: datafix undo ${path})`);
    }
    const resumedFrom = options.resume ? previous : undefined;
    state = {
      fix: plan.fix,
      specFile: resolve(options.cwd, options.specFile),
      specChecksum: plan.specChecksum,
      target: storedTarget,
      ...segment,
      runId,
      journal: journal.path,
      status: 'running',
      ...(cursor !== undefined ? { cursor } : {}),
      pages: base.pages,
      records: base.records,
      ...(baseCounts ? { counts: baseCounts } : {}),
      committedPages: resumedFrom?.committedPages ?? 0,
      // What the journal holds now (a resumed run's, checked against its state by `reopen`), so
      // a state written before the first page keeps the mark a journal cut short is tested by.
      journalSeq: journal.lastSeq,
      ...(runLimit !== undefined ? { limit: runLimit } : {}),
      ...(resumedFrom?.targetInstance !== undefined ? { targetInstance: resumedFrom.targetInstance } : {}),
      startedAt: resumedFrom ? resumedFrom.startedAt : startedAt,
      updatedAt: startedAt,
    };
    store.write(key, state);
    let running = state;
    /** When the checkpoint a resume goes on from was committed, where the target's is newer than the state's. */
    let checkpointAt: string | undefined;
    const writer = journal;
    let resumed: ResumedPart | undefined;
    /** Says where the resumed run goes on from: `onResume`, or a note when no one asked. */
    const resumingAfter = (): void => {
      resumed = {
        startedAt: running.startedAt,
        savedAt: checkpointAt ?? resumedFrom?.updatedAt ?? running.startedAt,
        pages: base.pages,
        records: base.records,
        journal: writer.path,
        ...(baseCounts ? { counts: baseCounts } : {}),
      };
      if (options.onResume) options.onResume(resumed);
      else options.onNote?.(`resuming after ${base.records} record(s) in ${base.pages} page(s); journal ${writer.path}`);
    };
    let committed = running.committedPages ?? 0;
    /** Whether the target keeps the run's position with each page's writes (SQLite). */
    let positionInTarget = false;
    let lastStateSave = Number.NEGATIVE_INFINITY;
    /**
     * The page counts of checkpoints handed to the target and not yet known committed, oldest
     * first: where pages overlap, page N+1's is made before page N's save.
     */
    const encoded: number[] = [];
    const result = await runPlan(plan, {
      ...options,
      ...(updatedTargets ? { updatedTargets } : {}),
      limitAfterResume: () => (runLimit === undefined ? undefined : Math.max(0, runLimit - base.records)),
      // The fencing check: a process whose lease was taken over stops before its next write.
      journal: {
        intend: (requests) => {
          lock.verify();
          return writer.intend(requests);
        },
        settle: (requests, results) => writer.settle(requests, results),
      },
      resumeCursor: (adapter) => {
        // The target's incarnation (DynamoDB: the table's id): a table deleted and created again,
        // or restored from a backup, under the same name is not where the run left off.
        const instance = adapter.instance?.();
        if (options.resume && running.targetInstance !== undefined && instance !== undefined && instance !== running.targetInstance) {
          throw new DatafixError(
            'usage',
            'DF726',
            `${describeTarget(plan.target)} is not the table the interrupted run wrote (it was ${running.targetInstance}, it is ${instance} now): it was deleted and created again, or restored from a backup, since. Resuming would skip items it never fixed. Run without --resume to start over (items already fixed are skipped)`,
          );
        }
        if (instance !== undefined && running.targetInstance === undefined) {
          running = { ...running, targetInstance: instance };
          state = running;
          store.write(key, running);
        }
        const checkpoints = adapter.checkpoints;
        positionInTarget = checkpoints !== undefined;
        if (!checkpoints) {
          if (!options.resume) return undefined;
          resumingAfter();
          return cursor;
        }
        if (!options.resume) {
          // Supersedes whatever an earlier run left under this key: a resume of this run must
          // never continue from another run's position. (Resume also ignores a checkpoint of
          // another run id.) A target holding none is left untouched: a run with nothing to
          // write changes no byte of the database.
          if (checkpoints.read(key) !== undefined) {
            checkpoints.write(key, JSON.stringify({ runId, pages: 0, records: 0 } satisfies StoredCheckpoint));
          }
          return undefined;
        }
        // The target's checkpoint commits with the page's writes; the state file follows it, and
        // alone records pages that wrote nothing. Whichever is further along is where to go on.
        const stored = checkpoints.read(key);
        const parsed = stored === undefined ? undefined : (JSON.parse(stored) as StoredCheckpoint);
        const ours = parsed !== undefined && parsed.runId === runId ? parsed : undefined;
        // The state file may be up to a second behind the target; the target's checkpoint says
        // how far the journal had reached when its page committed.
        if (ours?.journalSeq !== undefined && writer.lastSeq < ours.journalSeq) {
          throw journalCutError(writer.path, writer.lastSeq, ours.journalSeq);
        }
        // The state saw the last page done (cursor null) and the run cleared its checkpoint on
        // finishing; only its end line or final state was lost (disk full, a kill in between).
        // Going over it again from the first page is safe: rows already fixed are skipped.
        const finishedEveryPage = cursor === null && !ours;
        if (committed > 0 && !finishedEveryPage && (!ours || ours.pages < committed)) {
          throw new DatafixError(
            'usage',
            'DF726',
            `${describeTarget(plan.target)} does not hold the checkpoint this run committed to it (${committed} page(s), run ${runId}, started ${running.startedAt}): ${ours ? `it holds an older one (${ours.pages} page(s)), so the database was restored from a copy` : 'the database was replaced or restored, or another run started over on it'} since. Resuming would skip rows it never fixed. Run without --resume to start over (rows already fixed are skipped)`,
          );
        }
        if (!ours) {
          // Nothing of this run was committed here: start from the first page, not from a
          // position read in a database that may not be this one.
          base = { pages: 0, records: 0 };
          baseCounts = { total: 0, updated: 0, skipped: 0, failed: 0, reasons: {} };
          options.onNote?.(`resuming from the first page: ${describeTarget(plan.target)} holds no checkpoint of this run`);
          resumingAfter();
          return undefined;
        }
        if (ours.pages > base.pages) {
          // The state's outcome counts stop at its last save; the target committed later pages,
          // whose outcomes no file kept: the whole run's counts are unknown from here on, and
          // the checkpoint resumed from is the target's, of its own time.
          base = { pages: ours.pages, records: ours.records };
          // The target committed these pages: a copy of it restored later must hold at least
          // them, whatever the next pages write (DF726).
          committed = Math.max(committed, ours.pages);
          baseCounts = undefined;
          const { counts: _stale, ...rest } = running;
          running = rest;
          if (ours.at !== undefined) checkpointAt = ours.at;
          resumingAfter();
          return ours.cursor;
        }
        resumingAfter();
        return cursor;
      },
      checkpoint: {
        id: key,
        encode: (pageCursor, progress) => {
          encoded.push(base.pages + progress.pages);
          return JSON.stringify({
            runId,
            pages: base.pages + progress.pages,
            records: base.records + progress.records,
            cursor: pageCursor ?? null,
            journalSeq: writer.lastSeq + progress.writes,
            at: new Date().toISOString(),
          } satisfies StoredCheckpoint);
        },
        // Every page is done and the target's checkpoint is about to be cleared: the state says
        // so first (its last page's save may have been skipped within the second), so a crash
        // in between resumes from the first page instead of missing the target's checkpoint.
        finished: () => {
          if (!state) return;
          state = { ...state, cursor: null, committedPages: committed };
          store.write(key, state);
        },
        save: (pageCursor, progress) => {
          lock.verify();
          // This page's checkpoint and those before it are committed; a later page's may not be.
          while ((encoded[0] ?? Number.POSITIVE_INFINITY) <= base.pages + progress.pages) committed = encoded.shift() as number;
          const counts = baseCounts ? addCounts(baseCounts, progress) : undefined;
          state = {
            ...running,
            // null: the last page is done.
            cursor: pageCursor ?? null,
            pages: base.pages + progress.pages,
            records: base.records + progress.records,
            ...(counts ? { counts } : {}),
            committedPages: committed,
            journalSeq: writer.lastSeq,
            updatedAt: new Date().toISOString(),
          };
          // Where the target holds the position, at most once a second: a crash then leaves the
          // state file behind the target, and resume goes on from the target's checkpoint (the
          // run's end, or a stop, writes the state as it is).
          const now = performance.now();
          if (positionInTarget && now - lastStateSave < stateSaves.intervalMs) return undefined;
          lastStateSave = now;
          // In the background: the engine reads and computes the next page meanwhile, and waits
          // for this before it journals or writes anything more (a crash then leaves the state
          // at most this page behind, as a crash just before this save always could).
          return store.writeInBackground(key, state);
        },
      },
    });
    journal.end(result.summary, result.interrupted);
    store.write(key, { ...(state as RunState), status: result.interrupted ? 'interrupted' : 'done', updatedAt: new Date().toISOString() });
    const s = result.summary;
    const wholeRun =
      resumed === undefined
        ? undefined
        : resumed.counts && resumed.counts.total === resumed.records
          ? addCounts(resumed.counts, { records: s.total, updated: s.updated, skipped: s.skipped, failed: s.failed, reasons: s.reasons })
          : { total: resumed.records + s.total };
    return { ...result, journal: journal.path, ...(resumed ? { resumed, wholeRun } : {}) };
  } catch (err) {
    if (state) store.write(key, { ...state, status: 'interrupted', updatedAt: new Date().toISOString() });
    throw err;
  } finally {
    journal?.close();
    lock.release();
  }
}

/** The outcome counts of two parts of one run, added. */
function addCounts(a: RunCounts, b: Omit<RunCounts, 'total'> & { records: number }): RunCounts {
  const reasons: Record<string, number> = { ...a.reasons };
  for (const [r, n] of Object.entries(b.reasons)) reasons[r] = (reasons[r] ?? 0) + n;
  return {
    total: a.total + b.records,
    updated: a.updated + b.updated,
    skipped: a.skipped + b.skipped,
    failed: a.failed + b.failed,
    reasons: Object.fromEntries(Object.entries(reasons).sort(([x], [y]) => x.localeCompare(y))),
  };
}

/**
 * Resume appends to the interrupted run's journal: it must be that run's, or undo would mix
 * two runs (or two fixes, or two targets) in one file. Compares the journal header's fix, spec
 * checksum, target identity and run id with the state file and the plan; throws DF725.
 */
async function checkJournalBelongs(previous: RunState, plan: FixPlan): Promise<void> {
  let header: Record<string, unknown>;
  try {
    header = (await openJournal(previous.journal)).header as unknown as Record<string, unknown>;
  } catch (err) {
    // A missing journal has its own message (DF724) when it is reopened.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || !existsSync(previous.journal)) return;
    throw err;
  }
  const mismatch: string[] = [];
  if (header.fix !== previous.fix) mismatch.push(`fix ${String(header.fix)}, not ${previous.fix}`);
  if (header.specChecksum !== previous.specChecksum) mismatch.push('another spec checksum');
  const target = header.target as TargetPlan | undefined;
  if (!target || targetIdentity(target) !== targetIdentity(plan.target) || targetIdentity(target) !== targetIdentity(previous.target)) {
    mismatch.push(`target ${target ? describeTarget(target) : 'unknown'}, not ${describeTarget(plan.target)}`);
  }
  if (header.runId !== previous.runId) mismatch.push(`run ${String(header.runId ?? 'unknown')}, not ${String(previous.runId)}`);
  if (mismatch.length > 0) {
    throw new DatafixError(
      'usage',
      'DF725',
      `the journal ${previous.journal} named by the interrupted run's state does not belong to it (${mismatch.join('; ')}); nothing was appended to it. Run without --resume to start over with a journal of its own (rows already fixed are skipped)`,
    );
  }
}
