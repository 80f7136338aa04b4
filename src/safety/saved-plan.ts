/**
 * Saved plans: `datafix plan` records, record by record, what a fix would change (key, before,
 * after, reason), and `datafix apply` writes exactly that, only where each record still equals
 * its planned before-image. A record that drifted is reported and left alone. The plan names its
 * spec (by checksum) and target, and refuses to be applied anywhere else.
 */
import { closeSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createAdapter, describeTarget, redactTarget } from '../adapters/registry.js';
import { type Item, LookupRejected, type WriteRequest } from '../adapters/types.js';
import { type RunSpecOptions, runPlan } from '../api.js';
import type { FieldChange, RunSummary } from '../engine/events.js';
import { stoppedWhileWaiting } from '../engine/run.js';
import { DatafixError } from '../errors.js';
import type { FixPlan, TargetPlan, WriteAction } from '../plan/types.js';
import { deepEqual, isAbsent, toJsonSafe } from '../plan/values.js';
import { VERSION } from '../version.js';
import { JournalWriter } from './journal.js';
import { chainSum, decodeValue, encodeValue, readJsonLines, readTextLines, splitSum, withSum } from './jsonl.js';
import { TargetLock } from './lock.js';
import { preflight } from './preflight.js';
import { RunStateStore, runKey, targetIdentity } from './state.js';
import { writeFully } from './write-fully.js';

/**
 * 2: a change may carry `action` (`delete`: its fields are the whole record as planned, `create`:
 * the new record). No new format is needed for them: apply compiles the plan's spec first, and a
 * datafix without `delete`/`create` refuses such a spec, so it never applies such a plan.
 * Every line carries a checksum chained from the header, and a map that has the shape of a
 * value tag is written as `{ "$map": {...} }` (see `toJsonSafe`). Format 1 plans (no checksums)
 * are refused: an edited plan stripped of its checksums would read as one.
 */
export const PLAN_FORMAT = 2;
const READABLE_PLAN_FORMATS = [2];

interface PlanHeader {
  readonly type: 'plan';
  readonly format: number;
  readonly fix: string;
  readonly specFile: string;
  readonly specChecksum: string;
  readonly target: TargetPlan;
  /** The target's identity (SQLite: the real file, symlinks resolved); format 2 on. */
  readonly targetIdentity?: string;
  readonly createdAt: string;
  readonly datafixVersion: string;
}

interface PlanChange {
  readonly type: 'change';
  /** Absent: an update. `delete`: fields are the whole before-image; `create`: the new record. */
  readonly action?: WriteAction;
  readonly table?: string;
  readonly key: unknown;
  /** The source record the change came from. */
  readonly source: unknown;
  readonly fields: { name: string; before: unknown; after: unknown; guard: FieldChange['guard'] }[];
}

interface PlanEnd {
  readonly type: 'summary';
  readonly summary: RunSummary;
}

/** `writeSavedPlan` stopped by its `signal`: no plan file was written (the unfinished one is removed). */
export class PlanInterrupted extends Error {
  constructor() {
    super('the plan was interrupted; no plan was saved');
  }
}

/**
 * Writes the plan file by a dry run; streams, so memory stays flat however many records change.
 * The plan is written to `<out>.partial` and renamed over `out` only once complete and fsynced,
 * so `out` is never a half-written plan (a failed or interrupted `plan` leaves any earlier file
 * at `out` as it was).
 * @throws whatever the dry run throws; the partial file is removed first.
 */
export async function writeSavedPlan(
  plan: FixPlan,
  specFile: string,
  out: string,
  options: Omit<RunSpecOptions, 'dryRun'>,
): Promise<RunSummary> {
  mkdirSync(dirname(resolve(out)), { recursive: true });
  const partial = `${out}.partial`;
  // Created, never opened over whatever is there: an unfinished plan of an earlier run goes, but
  // a symlink (to the database, say) or any other file at that name stays as it is.
  if (isOccupied(partial)) {
    if (!isPlanFile(partial)) {
      throw new DatafixError(
        'usage',
        'DF741',
        `cannot write the plan ${out}: ${partial} exists and is not an unfinished datafix plan, so it is never overwritten. Move it away, or give --out another file`,
      );
    }
    rmSync(partial);
  }
  const fd = openSync(partial, 'wx');
  // A process that exits mid-plan (a second Ctrl-C stops at once) leaves no half plan behind.
  let complete = false;
  const removeUnfinished = () => {
    if (!complete) rmSync(partial, { force: true });
  };
  process.on('exit', removeUnfinished);
  // Each line carries a checksum chained from the header, as journal lines do: an edited,
  // removed or moved line is refused by apply before anything is written.
  let sum = '';
  const line = (obj: unknown) => {
    const next = withSum(sum, obj);
    sum = next.sum;
    writeFully(fd, Buffer.from(`${next.text}\n`));
  };
  try {
    const header: PlanHeader = {
      type: 'plan',
      format: PLAN_FORMAT,
      fix: plan.fix,
      specFile: resolve(specFile),
      specChecksum: plan.specChecksum,
      target: redactTarget(plan.target),
      targetIdentity: targetIdentity(plan.target),
      createdAt: new Date().toISOString(),
      datafixVersion: VERSION,
    };
    line(header);
    const { summary } = await runPlan(plan, {
      ...options,
      dryRun: true,
      onEvent: (e) => {
        const waited = options.onEvent?.(e);
        if (e.type === 'record' && e.outcome === 'updated' && e.target && e.changes) {
          const change: PlanChange = {
            type: 'change',
            ...(e.target.action ? { action: e.target.action } : {}),
            ...(e.target.table !== undefined ? { table: e.target.table } : {}),
            key: toJsonSafe(e.target.key),
            source: toJsonSafe(e.key),
            fields: e.changes.map((c) => ({ name: c.field, before: encodeValue(c.before), after: encodeValue(c.after), guard: c.guard })),
          };
          line(change);
        }
        return waited;
      },
    });
    // A plan the stop signal cut short would be applied as if it were the whole fix: none is saved.
    if (options.signal?.aborted) throw new PlanInterrupted();
    line({ type: 'summary', summary } satisfies PlanEnd);
    fsyncSync(fd);
    complete = true;
    return summary;
  } finally {
    process.off('exit', removeUnfinished);
    closeSync(fd);
    if (complete) renameSync(partial, out);
    else rmSync(partial, { force: true });
  }
}

/** What the spec lets a plan change: the write section of the spec the plan was made from, as it is now. */
export interface PlanScope {
  /** The spec's write: absent for `update`, else `delete` or `create`. */
  readonly action?: WriteAction;
  readonly table?: string;
  /** The key's field names (a create writes them). */
  readonly key?: readonly string[];
  /** `update.remove` fields. */
  readonly remove?: readonly string[];
  /** `set` fields; fill-only unless `overwrite`. */
  readonly set: readonly { readonly field: string; readonly overwrite: boolean }[];
  readonly touch: readonly string[];
}

/** What the spec compiled as `fix` lets a plan change: the scope `datafix apply` checks each planned change against. */
export function planScope(fix: FixPlan): PlanScope {
  const u = fix.update;
  return {
    ...(u.table !== undefined ? { table: u.table } : {}),
    set: u.set.map((f) => ({ field: f.field, overwrite: f.overwrite })),
    touch: u.touch.map((f) => f.field),
    ...(u.action ? { action: u.action } : {}),
    key: u.key.map(([k]) => k),
    ...(u.remove ? { remove: u.remove } : {}),
  };
}

/**
 * Reads the whole plan once before anything is applied (`readPlanHeader` has refused any format
 * but 2): every line must parse and match its checksum chained from the header, every change must be one the spec can make (its
 * table, its fields, a fill-only field planned only where absent), and the last line must be the
 * summary `plan` writes when it finishes. A plan cut short or edited is refused, not applied.
 * @returns the number of changes, and whether any deletes or creates a whole record (its journal needs format 4).
 * @throws DatafixError DF733 (damaged or incomplete), DF734 (edited, or outside the spec).
 */
async function checkPlan(path: string, scope: PlanScope | undefined): Promise<{ changes: number }> {
  let changes = 0;
  const edited = (lineNo: number, what: string) =>
    new DatafixError(
      'usage',
      'DF734',
      `${path}:${lineNo} ${what}: the plan was edited, so nothing was applied. Make a new plan with datafix plan, and review it without editing it`,
    );
  let last: PlanHeader | PlanChange | PlanEnd | undefined;
  let sum = '';
  for await (const { text, line: lineNo } of readTextLines(path)) {
    let parsed: PlanHeader | PlanChange | PlanEnd;
    try {
      parsed = JSON.parse(text) as PlanHeader | PlanChange | PlanEnd;
    } catch {
      throw new DatafixError(
        'usage',
        'DF733',
        `${path}:${lineNo} is not valid JSON; the plan is damaged, make a new one with datafix plan`,
      );
    }
    const parts = splitSum(text);
    if (!parts || chainSum(sum, parts.body) !== parts.sum) throw edited(lineNo, 'does not match its checksum');
    sum = parts.sum;
    if (parsed.type === 'change') changes++;
    if (parsed.type === 'change' && scope) {
      const problem = outsideScope(parsed, scope);
      if (problem) throw edited(lineNo, problem);
    }
    last = parsed;
  }
  if (last?.type !== 'summary') {
    throw new DatafixError(
      'usage',
      'DF733',
      `${path} is incomplete (it does not end with the summary line datafix plan writes last); nothing was applied. Make a new plan with datafix plan`,
    );
  }
  return { changes };
}

/** Why a planned change is not one the spec can make, or undefined. */
function outsideScope(c: PlanChange, scope: PlanScope): string | undefined {
  // A DynamoDB spec writes only its target table (no `table`): a change naming any table is outside it.
  if (c.table !== scope.table) return `changes table ${String(c.table)}, which the spec does not update`;
  if (c.action !== scope.action) {
    return `${c.action ? `${c.action}s a record` : 'updates a record'}, but the spec ${scope.action ? `${scope.action}s records` : 'updates records'}`;
  }
  // A delete's fields are whatever the record held; each must go.
  if (c.action === 'delete') {
    const kept = c.fields.find((f) => decodeValue(f.after) !== undefined);
    return kept ? `keeps field ${kept.name} of a record it deletes` : undefined;
  }
  if (c.action === 'create') {
    const other = c.fields.find((f) => !scope.key?.includes(f.name) && !scope.set.some((s) => s.field === f.name));
    return other ? `creates field ${other.name}, which the spec neither keys nor sets` : undefined;
  }
  for (const f of c.fields) {
    if (scope.remove?.includes(f.name) && !scope.set.some((s) => s.field === f.name)) {
      if (!isAbsent(decodeValue(f.after))) return `writes ${f.name}, which the spec only removes`;
      continue;
    }
    const set = scope.set.find((s) => s.field === f.name);
    if (!set && !scope.touch.includes(f.name)) return `changes field ${f.name}, which the spec neither sets nor touches`;
    if (set && !set.overwrite && (f.guard !== 'absent' || !isAbsent(decodeValue(f.before)))) {
      return `overwrites ${f.name}, which the spec only fills where it is absent`;
    }
  }
  return undefined;
}

function readPlanLines(path: string): AsyncGenerator<PlanHeader | PlanChange | PlanEnd> {
  return readJsonLines(path, (line) => {
    throw new DatafixError('usage', 'DF733', `${path}:${line} is not valid JSON; the plan is damaged, make a new one with datafix plan`);
  });
}

/**
 * Whether `path` is a datafix plan: a regular file whose first line is a plan header. Reads at
 * most 64 KiB; false for anything else (a database, a journal, a spec, a directory).
 */
export function isPlanFile(path: string): boolean {
  let fd: number | undefined;
  try {
    // Not followed, not opened unless a regular file: a symlink or a FIFO is no plan (opening a
    // FIFO to read it would wait for a writer forever).
    if (!lstatSync(path).isFile()) return false;
    fd = openSync(path, 'r');
    if (!fstatSync(fd).isFile()) return false;
    const buf = Buffer.alloc(1 << 16);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString('utf8');
    const end = text.indexOf('\n');
    // An unfinished plan may be cut anywhere after its header line.
    if (end < 0) return false;
    const first = JSON.parse(text.slice(0, end)) as { type?: unknown; format?: unknown };
    return first?.type === 'plan' && READABLE_PLAN_FORMATS.includes(first.format as number);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether anything is at `path`, a dangling symbolic link included (which `existsSync` misses). */
export function isOccupied(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export async function readPlanHeader(path: string): Promise<PlanHeader> {
  try {
    for await (const l of readPlanLines(path)) {
      if (
        l.type === 'plan' &&
        READABLE_PLAN_FORMATS.includes(l.format) &&
        typeof l.specFile === 'string' &&
        typeof l.specChecksum === 'string' &&
        l.target
      )
        return l;
      break;
    }
  } catch (err) {
    throw new DatafixError('usage', 'DF730', `cannot read plan ${path}: ${(err as Error).message}`);
  }
  throw new DatafixError(
    'usage',
    'DF730',
    `${path} is not a datafix plan (formats ${READABLE_PLAN_FORMATS.join(', ')}); make one with datafix plan SPEC --out FILE`,
  );
}

export interface ApplySummary {
  readonly plan: string;
  readonly fix: string;
  readonly dryRun: boolean;
  readonly total: number;
  readonly applied: number;
  /** Records that no longer equal their planned before-image: left as they are. */
  readonly drifted: number;
  readonly failed: number;
  readonly durationMs: number;
  /**
   * Present (true) when a stop signal ended the apply between batches: `total` counts the records
   * handled by then, `planned` the plan's changes. Running the apply again is safe: records
   * already applied no longer hold their planned before-image and are left as they are.
   */
  readonly interrupted?: true;
  /** The plan's changes, all of them (given when interrupted). */
  readonly planned?: number;
}

export interface ApplyEvent {
  readonly outcome: 'applied' | 'drifted' | 'failed';
  readonly table?: string;
  readonly key: Record<string, unknown>;
  readonly message?: string;
}

export interface ApplyOptions {
  readonly dryRun: boolean;
  readonly cwd: string;
  /** The target the spec resolves to now (current environment); must equal the plan's. */
  readonly currentTarget: TargetPlan;
  readonly currentChecksum: string;
  readonly journalPath?: string;
  readonly batchSize?: number;
  readonly concurrency?: number;
  /** Receives each record's outcome; a returned promise (output full) is awaited between batches. */
  readonly onEvent?: (e: ApplyEvent) => void | Promise<void>;
  /** Told the number of changes the plan holds, once it has been checked, before any is applied. */
  readonly onTotal?: (planned: number) => void;
  readonly onNote?: (text: string) => void;
  readonly adapter?: { readonly dynamodb?: Record<string, unknown> };
  /** What the spec lets a change touch; a change outside it is refused (DF734). */
  readonly scope?: PlanScope;
  /**
   * Stops the apply between batches once aborted (Ctrl-C): the batch in flight is written and
   * journaled, the journal gets an end line marked interrupted, the lock is released.
   */
  readonly signal?: AbortSignal;
}

/** Why a record no longer holds its planned before-image: the plan's own values, or someone else's. */
function whyDrifted(current: Item, request: WriteRequest): string {
  if (request.action === 'delete') return 'changed since the plan was made';
  if (request.action === 'create') {
    const planned = request.fields.every((f) => deepEqual(current[f.name] ?? undefined, f.value ?? undefined));
    return planned ? 'already holds the planned record (this plan was applied before)' : 'a record with this key exists';
  }
  const planned = request.fields.every((f) => deepEqual(current[f.name] ?? undefined, f.value ?? undefined));
  return planned ? 'already holds the planned values (this plan was applied before)' : 'changed since the plan was made';
}

export async function applySavedPlan(path: string, options: ApplyOptions): Promise<ApplySummary> {
  const started = performance.now();
  const header = await readPlanHeader(path);
  const { changes: planned } = await checkPlan(path, options.scope);
  options.onTotal?.(planned);
  if (header.specChecksum !== options.currentChecksum) {
    throw new DatafixError('usage', 'DF731', `${header.specFile} changed since this plan was made (${header.createdAt}); make a new plan`);
  }
  // The plan stores the target without credentials; the connection uses the current one's. The
  // identity compares what the spec points at now (a symlink re-pointed is another database).
  const sameTarget =
    header.targetIdentity !== undefined
      ? header.targetIdentity === targetIdentity(options.currentTarget)
      : deepEqual(header.target, redactTarget(options.currentTarget));
  if (!sameTarget) {
    throw new DatafixError(
      'usage',
      'DF732',
      `this plan was made for ${describeTarget(header.target)}, but the spec now points at ${describeTarget(options.currentTarget)}; it applies only where it was made`,
    );
  }
  // The target is opened (and so checked for writing) below, before anything is written.
  if (!options.dryRun)
    await preflight(undefined, { cwd: options.cwd, ...(options.journalPath ? { journalPath: options.journalPath } : {}) });
  const counts = { total: 0, applied: 0, drifted: 0, failed: 0 };
  const emit = (outcome: ApplyEvent['outcome'], c: PlanChange, message?: string) => {
    counts[outcome]++;
    const wait = options.onEvent?.({
      outcome,
      ...(c.table !== undefined ? { table: c.table } : {}),
      key: decodeValue(c.key) as Record<string, unknown>,
      ...(message ? { message } : {}),
    });
    if (wait) waiting = wait;
  };
  /** The output's latest "wait for room" (see `onEvent`), awaited between batches. */
  let waiting: Promise<void> | undefined;
  // Opening the target first checks it can be written (a read-only database is DF415 here).
  const adapter = await createAdapter(options.currentTarget, {
    readonly: options.dryRun,
    ...(options.adapter?.dynamodb ? { dynamodb: options.adapter.dynamodb } : {}),
  });
  // An apply writes the target like a run: it takes the same lock.
  let lock: TargetLock | undefined;
  try {
    lock = options.dryRun ? undefined : TargetLock.acquire(header.target, { fix: header.fix, spec: header.specFile, purpose: 'apply' });
  } catch (err) {
    await adapter.close();
    throw err;
  }
  let journal: JournalWriter | undefined;
  let interrupted = false;
  try {
    if (!options.dryRun) {
      const startedAt = new Date().toISOString();
      const jpath = resolve(
        options.cwd,
        options.journalPath ??
          new RunStateStore(options.cwd).journalPath(`${runKey({ fix: header.fix, target: header.target })}--apply`, startedAt),
      );
      journal = JournalWriter.create(jpath, {
        fix: header.fix,
        specFile: header.specFile,
        specChecksum: header.specChecksum,
        target: header.target,
        startedAt,
        datafixVersion: VERSION,
      });
      options.onNote?.(`journal ${jpath} (undo with: datafix undo ${jpath})`);
    }
    const flush = async (planned: PlanChange[]) => {
      if (planned.length === 0) return;
      // A planned delete names every field the record had. One that gained a field since would
      // lose it, which no guard on the planned fields sees: such records are read first, and left.
      const gained = await fieldsGainedSincePlan(planned);
      const batch = planned.filter((c) => {
        const added = gained.get(c);
        if (added) emit('drifted', c, `it gained ${added.join(', ')} since the plan was made`);
        return !added;
      });
      if (batch.length === 0) return;
      const requests: WriteRequest[] = batch.map((c) => ({
        ...(c.action ? { action: c.action } : {}),
        ...(c.table !== undefined ? { table: c.table } : {}),
        key: decodeValue(c.key) as Record<string, unknown>,
        // Every field, touch fields included, must still hold its planned before-image (a
        // delete: the whole record as planned); a create, that no record has the key.
        fields: c.fields.map((f) =>
          c.action === 'create'
            ? { name: f.name, value: decodeValue(f.after), guard: 'absent' as const }
            : { name: f.name, value: decodeValue(f.after), guard: 'unchanged' as const, before: decodeValue(f.before) },
        ),
      }));
      if (options.dryRun) {
        const currents = await adapter.lookup(
          requests.map((r) => ({ ...(r.table !== undefined ? { table: r.table } : {}), key: r.key, consistentRead: true })),
        );
        batch.forEach((c, i) => {
          const answer = currents[i];
          if (answer instanceof LookupRejected) {
            emit('failed', c, answer.message);
            return;
          }
          const current = answer;
          if (c.action === 'create') {
            if (current) emit('drifted', c, whyDrifted(current, requests[i] as WriteRequest));
            else emit('applied', c);
            return;
          }
          const same = current && requests[i]?.fields.every((f) => deepEqual(current[f.name] ?? undefined, f.before ?? undefined));
          if (same) emit('applied', c);
          else emit('drifted', c, current ? whyDrifted(current, requests[i] as WriteRequest) : 'no longer exists');
        });
        return;
      }
      // The fencing check: a process whose lease was taken over stops before its next write.
      lock?.verify();
      await journal?.intend(requests);
      const results = await adapter.write(requests, { concurrency: options.concurrency ?? 10 });
      journal?.settle(requests, results);
      // Records that drifted are read once more, to say whether they hold the plan's own values.
      const drifted = results.flatMap((r, i) => (r?.status === 'conflict' ? [i] : []));
      const currents =
        drifted.length === 0
          ? []
          : await adapter.lookup(
              drifted.map((i) => {
                const r = requests[i] as WriteRequest;
                return { ...(r.table !== undefined ? { table: r.table } : {}), key: r.key, consistentRead: true };
              }),
            );
      batch.forEach((c, i) => {
        const r = results[i];
        if (r?.status === 'applied') emit('applied', c);
        else if (r?.status === 'conflict') {
          const current = currents[drifted.indexOf(i)];
          emit(
            'drifted',
            c,
            current && !(current instanceof LookupRejected)
              ? whyDrifted(current, requests[i] as WriteRequest)
              : 'changed since the plan was made',
          );
        } else if (r?.status === 'not_found') emit('drifted', c, 'no longer exists');
        else emit('failed', c, r && 'message' in r ? r.message : 'no result');
      });
    };
    /** For each planned delete whose record now holds fields the plan does not name: those fields. */
    const fieldsGainedSincePlan = async (planned: PlanChange[]): Promise<Map<PlanChange, string[]>> => {
      const deletes = planned.filter((c) => c.action === 'delete');
      const out = new Map<PlanChange, string[]>();
      if (deletes.length === 0) return out;
      const currents = await adapter.lookup(
        deletes.map((c) => ({
          ...(c.table !== undefined ? { table: c.table } : {}),
          key: decodeValue(c.key) as Item,
          consistentRead: true,
        })),
      );
      deletes.forEach((c, i) => {
        const current = currents[i];
        if (!current || current instanceof LookupRejected) return;
        const added = Object.keys(current).filter((name) => !c.fields.some((f) => f.name === name));
        if (added.length > 0) out.set(c, added);
      });
      return out;
    };
    const flushed = async (batch: PlanChange[]) => {
      await flush(batch);
      const w = waiting;
      waiting = undefined;
      await w;
    };
    let batch: PlanChange[] = [];
    const flushOrStop = async () => {
      try {
        await flushed(batch);
      } catch (err) {
        // Writes a stop signal ended the wait of (a target that does not answer, a locked
        // database): their outcome is unknown, so none is counted; the journal keeps them
        // without one, for undo to check.
        if (!(await stoppedWhileWaiting(err, options.signal))) throw err;
        counts.total -= batch.length;
      }
      batch = [];
    };
    for await (const l of readPlanLines(path)) {
      // Between batches: the writes of the last one are settled and journaled.
      if (options.signal?.aborted) break;
      if (l.type !== 'change') continue;
      counts.total++;
      batch.push(l);
      if (batch.length >= (options.batchSize ?? 100)) await flushOrStop();
    }
    if (!options.signal?.aborted) await flushOrStop();
    else counts.total -= batch.length;
    interrupted = options.signal?.aborted === true && counts.total < planned;
    // The end line tells undo the apply finished, as a run's does.
    journal?.end(
      {
        fix: header.fix,
        dryRun: false,
        total: counts.total,
        updated: counts.applied,
        skipped: counts.drifted,
        failed: counts.failed,
        reasons: counts.drifted ? { drifted: counts.drifted } : {},
        durationMs: Math.round(performance.now() - started),
      },
      interrupted,
    );
  } finally {
    journal?.close();
    lock?.release();
    await adapter.close();
  }
  return {
    plan: path,
    fix: header.fix,
    dryRun: options.dryRun,
    ...counts,
    durationMs: Math.round(performance.now() - started),
    ...(interrupted ? { interrupted: true as const, planned } : {}),
  };
}
