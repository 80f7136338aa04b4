/**
 * A live run with its safety net: the lock (one run of a fix per target), the journal (undo),
 * and checkpoints after every page (resume). Dry runs need none of these and go straight through.
 */
import { resolve } from 'node:path';
import { redactTarget } from '../adapters/redact.js';
import { type RunResult, type RunSpecOptions, runPlan } from '../api.js';
import { DatafixError } from '../errors.js';
import type { FixPlan } from '../plan/types.js';
import { VERSION } from '../version.js';
import { JournalWriter } from './journal.js';
import { preflight } from './preflight.js';
import { RunLock, type RunState, RunStateStore, runId } from './state.js';

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
}

export interface SafeRunResult extends RunResult {
  readonly journal?: string;
}

export async function runPlanSafely(plan: FixPlan, options: SafeRunOptions): Promise<SafeRunResult> {
  if (options.dryRun) {
    if (options.resume) throw new DatafixError('usage', 'DF722', '--resume continues a live run; it cannot be combined with --dry-run');
    return runPlan(plan, options);
  }
  // Nothing is locked or written until the run is known to be able to write all of it.
  await preflight(plan, {
    cwd: options.cwd,
    ...(options.journalPath && !options.resume ? { journalPath: options.journalPath } : {}),
    ...(options.adapter ? { adapter: options.adapter } : {}),
  });
  // What the journal and state file record: the target without credentials.
  const storedTarget = redactTarget(plan.target);
  const id = runId({ fix: plan.fix, target: plan.target, ...(options.segment ? { segment: options.segment } : {}) });
  const store = new RunStateStore(options.cwd);
  const lock = RunLock.acquire(options.cwd, id, plan, options.specFile, { takeOverStale: options.resume ?? false });
  let journal: JournalWriter | undefined;
  let state: RunState | undefined;
  try {
    const previous = store.read(id);
    const startedAt = new Date().toISOString();
    let base = { pages: 0, records: 0 };
    let cursor: unknown;
    if (options.resume) {
      if (!previous || previous.status === 'done') {
        throw new DatafixError(
          'usage',
          'DF721',
          `there is no interrupted run of ${plan.fix} on this target to resume; run without --resume`,
        );
      }
      if (previous.specChecksum !== plan.specChecksum) {
        throw new DatafixError(
          'usage',
          'DF720',
          `${options.specFile} changed since the interrupted run (${previous.startedAt}); resuming would mix two different fixes. Run without --resume to start over (rows already fixed are skipped)`,
        );
      }
      journal = await JournalWriter.reopen(previous.journal);
      base = { pages: previous.pages, records: previous.records };
      cursor = previous.cursor;
      options.onNote?.(`resuming after ${previous.records} record(s) in ${previous.pages} page(s); journal ${previous.journal}`);
    } else {
      if (previous && previous.status !== 'done') {
        options.onNote?.('an earlier run of this fix on this target did not finish; starting over (--resume would continue it instead)');
      }
      const path = resolve(options.cwd, options.journalPath ?? store.journalPath(id, startedAt));
      journal = JournalWriter.create(path, {
        fix: plan.fix,
        specFile: resolve(options.cwd, options.specFile),
        specChecksum: plan.specChecksum,
        target: storedTarget,
        startedAt,
        datafixVersion: VERSION,
      });
      options.onNote?.(`journal ${path} (undo with: datafix undo ${path})`);
    }
    state = {
      fix: plan.fix,
      specFile: resolve(options.cwd, options.specFile),
      specChecksum: plan.specChecksum,
      target: storedTarget,
      ...(options.segment ? { segment: options.segment } : {}),
      journal: journal.path,
      status: 'running',
      ...(cursor !== undefined ? { cursor } : {}),
      pages: base.pages,
      records: base.records,
      startedAt: previous && options.resume ? previous.startedAt : startedAt,
      updatedAt: startedAt,
    };
    store.write(id, state);
    const running = state;
    const result = await runPlan(plan, {
      ...options,
      journal,
      resumeCursor: (adapter) => {
        if (!options.resume) return undefined;
        // The target's checkpoint commits with the page's writes; the state file follows it, and
        // alone records pages that wrote nothing. Whichever is further along is where to go on.
        const stored = adapter.checkpoints?.read(id);
        const inTarget = stored === undefined ? undefined : (JSON.parse(stored) as { pages: number; records: number; cursor: unknown });
        if (inTarget && inTarget.pages > base.pages) {
          base = { pages: inTarget.pages, records: inTarget.records };
          return inTarget.cursor;
        }
        return cursor;
      },
      checkpoint: {
        id,
        encode: (pageCursor, progress) =>
          JSON.stringify({ pages: base.pages + progress.pages, records: base.records + progress.records, cursor: pageCursor ?? null }),
        save: (pageCursor, progress) => {
          state = {
            ...running,
            // null: the last page is done.
            cursor: pageCursor ?? null,
            pages: base.pages + progress.pages,
            records: base.records + progress.records,
            updatedAt: new Date().toISOString(),
          };
          store.write(id, state);
        },
      },
    });
    journal.end(result.summary, result.interrupted);
    store.write(id, { ...(state as RunState), status: result.interrupted ? 'interrupted' : 'done', updatedAt: new Date().toISOString() });
    return { ...result, journal: journal.path };
  } catch (err) {
    if (state) store.write(id, { ...state, status: 'interrupted', updatedAt: new Date().toISOString() });
    throw err;
  } finally {
    journal?.close();
    lock.release();
  }
}
