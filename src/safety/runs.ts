/**
 * The runs recorded under `.datafix/runs/` of a working directory — journals of live runs and
 * applies, and the state files `--resume` reads — listed for a person (`datafix runs`) and pruned
 * once they are old (`datafix runs prune`). Pruning never removes what a run can still be resumed
 * from, and removes a journal that is the only way to undo its writes only when told to.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { redactTarget } from '../adapters/redact.js';
import { describeTarget } from '../adapters/registry.js';
import { DatafixError } from '../errors.js';
import type { TargetPlan } from '../plan/types.js';
import { lockHolder } from './lock.js';
import { type RunState, RunStateStore, STATE_DIR, writeAtomically } from './state.js';

/**
 * `running`/`interrupted`: as its state file says (resumable only while that state is the
 * current one of its fix and target); an apply is `interrupted` when its journal's end line says
 * so (run the apply again to continue); `done`: it finished (its journal has an end line);
 * `undone`: `datafix undo` restored it; `undo-interrupted`: an undo of it was stopped part-way
 * (run the undo again); `stopped`: it ended without an end line and no state continues it
 * (killed, or a later run of the fix started over); `unreadable`: not a journal datafix can read.
 */
export type RunStatus = 'running' | 'interrupted' | 'done' | 'undone' | 'undo-interrupted' | 'stopped' | 'unreadable';

/** One recorded run (or apply of a saved plan), as `datafix runs` lists it. */
export interface RecordedRun {
  /** `run` for `datafix run`, `apply` for `datafix apply`. */
  readonly kind: 'run' | 'apply';
  readonly fix: string;
  /** The target without credentials (`sqlite PATH`, `dynamodb TABLE (ENDPOINT)`). */
  readonly target: string;
  readonly status: RunStatus;
  /** Whether `datafix run SPEC --resume` continues it: pruning never removes it. */
  readonly resumable: boolean;
  readonly specFile?: string;
  readonly startedAt?: string;
  /** The last time its journal or state file was written (their modification time), ISO 8601. */
  readonly lastWrittenAt: string;
  /** Records read by the whole run, resumes included (its state's counts, else its end line, else its last checkpoint). */
  readonly read?: number;
  /** Writes journaled: each one is a record undo can restore (or finds already as before). */
  readonly writes: number;
  /** The whole run's outcome counts (`updated`, `skipped`, `failed`): its state's, else its end line's. */
  readonly summary?: { readonly updated: number; readonly skipped: number; readonly failed: number };
  /** Absolute path of the journal; undefined when the state names none that exists. */
  readonly journal?: string;
  readonly stateFile?: string;
  /** The record of the last `datafix undo` of its journal (see `recordUndo`). */
  readonly undoFile?: string;
  /**
   * For a run whose state says `running`: the process holding its target's lock, and whether it
   * is alive (undefined: on another host or in another pid namespace, so it cannot be told).
   */
  readonly process?: { readonly pid: number; readonly host: string; readonly alive?: boolean };
  /** Bytes of its journal and state file together. */
  readonly bytes: number;
}

interface JournalPeek {
  readonly header?: { fix?: string; target?: TargetPlan; runId?: string; specFile?: string; startedAt?: string };
  readonly end?: { summary?: { total?: number; updated?: number; skipped?: number; failed?: number }; interrupted?: boolean };
  readonly writes: number;
  /** Outcome lines: as many as writes when no write was left without a recorded outcome. */
  readonly results: number;
}

/** The entries of a batch line (journal format 5), from the `count` it starts with; 0 if it has none. */
function batchCount(text: string): number {
  const m = /^\{"type":"(?:writes","seq":\d+|results"),"count":(\d+),/.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Reads a journal line by line for its header, its write count and its end line. */
async function peekJournal(path: string): Promise<JournalPeek | undefined> {
  let header: JournalPeek['header'];
  let end: JournalPeek['end'];
  let writes = 0;
  let results = 0;
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const text of lines) {
      // Only the types are needed; a write line's values are never parsed.
      if (header === undefined) {
        const first = JSON.parse(text) as { type?: string };
        if (first.type !== 'header') return undefined;
        header = first as JournalPeek['header'];
      } else if (text.startsWith('{"type":"write"')) writes++;
      else if (text.startsWith('{"type":"result"')) results++;
      else if (text.startsWith('{"type":"writes"')) writes += batchCount(text);
      else if (text.startsWith('{"type":"results"')) results += batchCount(text);
      else if (text.startsWith('{"type":"end"')) end = JSON.parse(text) as JournalPeek['end'];
      else if (text.trim() !== '') end = undefined;
    }
  } catch {
    // A torn last line (a crash mid-append) ends the reading; a header that is not JSON is no journal.
    if (header === undefined) return undefined;
  } finally {
    lines.close();
  }
  return header === undefined ? undefined : { header, ...(end ? { end } : {}), writes, results };
}

/** The same file however it is spelled (a symlinked working directory, `..`). */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** What `datafix undo` last did with one journal: restored all of it, or stopped part-way. */
interface UndoRecord {
  readonly journal: string;
  readonly status: 'done' | 'interrupted';
  readonly at: string;
}

/** The undo records in a runs directory (`undo-<hash>.json`), by the real path of their journal. */
function undoRecords(dir: string, names: readonly string[]): Map<string, { file: string; status: UndoRecord['status'] }> {
  const records = new Map<string, { file: string; status: UndoRecord['status'] }>();
  for (const name of names.filter((n) => /^undo-[0-9a-f]+\.json$/.test(n))) {
    const file = join(dir, name);
    try {
      const r = JSON.parse(readFileSync(file, 'utf8')) as UndoRecord;
      if (typeof r.journal === 'string' && (r.status === 'done' || r.status === 'interrupted')) {
        records.set(realPath(r.journal), { file, status: r.status });
      }
    } catch {
      // Torn or foreign: the run is listed as its own files say.
    }
  }
  return records;
}

/**
 * Records what a live `datafix undo` of `journal` did, for `datafix runs`: `done` (the run is
 * undone; its state, if any, says so too, and `--resume` then refuses it) or `interrupted` (an
 * undo stopped part-way: running it again continues). Written to `.datafix/runs/` of the working
 * directory, of the `.datafix/` the journal is in (the default place for journals) and of the
 * directory the run kept its state in (`header.stateDir`), wherever undo is run from.
 */
export function recordUndo(
  cwd: string,
  journal: string,
  header: { readonly runId?: string; readonly stateDir?: string },
  status: UndoRecord['status'],
): void {
  const journalPath = resolve(journal);
  const journalDir = dirname(journalPath);
  const roots = new Set([resolve(cwd)]);
  if (basename(journalDir) === 'runs' && basename(dirname(journalDir)) === STATE_DIR) roots.add(dirname(dirname(journalDir)));
  if (header.stateDir) roots.add(header.stateDir);
  const at = new Date().toISOString();
  const name = `undo-${createHash('sha256').update(realPath(journalPath)).digest('hex').slice(0, 16)}.json`;
  for (const root of roots) {
    if (status === 'done') {
      // The undone run is over: `--resume` must not continue it from its old checkpoint.
      const store = new RunStateStore(root);
      const key = store.keyOfJournal(journalPath, header.runId);
      const state = key === undefined ? undefined : store.read(key);
      if (key !== undefined && state) store.write(key, { ...state, status: 'undone', updatedAt: at });
    }
    // Only where runs are recorded already: undo makes no `.datafix/` of its own.
    const dir = runsDir(root);
    if (stat(dir) === undefined) continue;
    const record: UndoRecord = { journal: journalPath, status, at };
    try {
      writeAtomically(join(dir, name), `${JSON.stringify(record)}\n`);
    } catch {
      // The undo itself is done; a directory that cannot be written only lists it as before.
    }
  }
}

/** Size and modification time of a file, or undefined when it is not there. */
function stat(path: string): { bytes: number; mtimeMs: number } | undefined {
  try {
    const st = statSync(path);
    return { bytes: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  }
}

/** Where a working directory keeps its runs' journals and state files. */
export function runsDir(cwd: string): string {
  return join(resolve(cwd), STATE_DIR, 'runs');
}

/**
 * Every run recorded under `cwd`'s `.datafix/runs/`: each journal there, and each journal a state
 * file there names elsewhere (`--journal PATH`), with its state when it has one. Newest first.
 * Reads each journal once, line by line, without parsing its values.
 */
export async function listRuns(cwd: string): Promise<RecordedRun[]> {
  const dir = runsDir(cwd);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const store = new RunStateStore(resolve(cwd));
  const states = names
    .filter((n) => n.endsWith('.state.json'))
    .map((n) => ({ file: join(dir, n), state: store.read(n.slice(0, -'.state.json'.length)) }))
    .filter((s): s is { file: string; state: RunState } => s.state !== undefined);
  const journals = new Set(names.filter((n) => n.endsWith('.journal.jsonl')).map((n) => join(dir, n)));
  for (const { state } of states) journals.add(resolve(state.journal));

  const undos = undoRecords(dir, names);
  const runs: RecordedRun[] = [];
  const claimed = new Set<string>();
  for (const journal of journals) {
    const file = stat(journal);
    const own = states.find((s) => resolve(s.state.journal) === journal);
    if (!file) {
      // A state whose journal was deleted: listed, so that a person sees what is left of it.
      if (own) {
        claimed.add(own.file);
        runs.push(fromState(own.file, own.state, undefined));
      }
      continue;
    }
    const peek = await peekJournal(journal);
    const state = own && (peek?.header?.runId === undefined || own.state.runId === peek.header.runId) ? own : undefined;
    if (state) claimed.add(state.file);
    const stateStat = state ? stat(state.file) : undefined;
    const bytes = file.bytes + (stateStat?.bytes ?? 0);
    const lastWrittenAt = new Date(Math.max(file.mtimeMs, stateStat?.mtimeMs ?? 0)).toISOString();
    if (!peek?.header) {
      runs.push({ kind: 'run', fix: '?', target: '?', status: 'unreadable', resumable: false, lastWrittenAt, writes: 0, journal, bytes });
      continue;
    }
    const h = peek.header;
    const s = peek.end?.summary;
    const undo = undos.get(realPath(journal));
    // An apply has no state: its journal's end line says whether it finished or was interrupted.
    const ended: RunStatus = peek.end?.interrupted && h.runId === undefined ? 'interrupted' : 'done';
    const live = state?.state.status === 'running' ? holderOf(state.state) : undefined;
    const recorded: RunStatus = state ? (live?.status ?? state.state.status) : peek.end ? ended : 'stopped';
    // The last undo of its journal says more than the run's own record: it was undone, or part-way.
    const status: RunStatus = undo?.status === 'interrupted' ? 'undo-interrupted' : undo?.status === 'done' ? 'undone' : recorded;
    runs.push({
      kind: h.runId === undefined ? 'apply' : 'run',
      fix: h.fix ?? '?',
      target: h.target ? describeTarget(redactTarget(h.target)) : '?',
      status,
      resumable: h.runId !== undefined && (status === 'running' || status === 'interrupted'),
      ...(h.specFile ? { specFile: h.specFile } : {}),
      ...(h.startedAt ? { startedAt: h.startedAt } : {}),
      lastWrittenAt,
      ...wholeRunCounts(state?.state, s),
      writes: peek.writes,
      journal,
      ...(state ? { stateFile: state.file } : {}),
      ...(undo ? { undoFile: undo.file } : {}),
      ...(live?.process ? { process: live.process } : {}),
      bytes,
    });
  }
  for (const s of states) if (!claimed.has(s.file)) runs.push(fromState(s.file, s.state, undefined));
  return runs.sort((a, b) => (b.startedAt ?? b.lastWrittenAt).localeCompare(a.startedAt ?? a.lastWrittenAt));
}

/**
 * Whether a run whose state says `running` is: its process holds its target's lock and is alive
 * (or cannot be checked from here), or it is gone (no lock of this fix, or its holder's process is
 * no longer running: the run was killed, and `--resume` continues it), `interrupted` then.
 */
function holderOf(state: RunState): { status: RunStatus; process?: RecordedRun['process'] } {
  const holder = lockHolder(state.target, state.segment);
  const lease = holder.lease?.fix === state.fix ? holder.lease : undefined;
  if (!lease || holder.state === 'gone' || holder.state === 'none') {
    return { status: 'interrupted', ...(lease ? { process: { pid: lease.pid, host: lease.host, alive: false } } : {}) };
  }
  return { status: 'running', process: { pid: lease.pid, host: lease.host, ...(holder.state === 'alive' ? { alive: true } : {}) } };
}

/**
 * What a run read and did, over all its processes: a resumed run's end line counts only its last
 * process's part, while its state counts the whole run (every checkpoint, resumes included) when
 * its outcome counts cover every record it read. When they do not and the run was resumed, only
 * what it read; else the end line's, else the state's records.
 */
function wholeRunCounts(
  state: RunState | undefined,
  end: NonNullable<JournalPeek['end']>['summary'] | undefined,
): Pick<RecordedRun, 'read' | 'summary'> {
  const c = state?.counts;
  if (state && c && c.total === state.records) {
    return { read: state.records, summary: { updated: c.updated, skipped: c.skipped, failed: c.failed } };
  }
  // A resumed run whose whole-run outcomes are not known (it went on from a checkpoint its state
  // never saw): how much it read, not its last part's outcomes as if they were the whole run's.
  if (state && end?.total !== undefined && end.total !== state.records) return { read: state.records };
  return {
    ...(end?.total !== undefined ? { read: end.total } : state ? { read: state.records } : {}),
    ...(end ? { summary: { updated: end.updated ?? 0, skipped: end.skipped ?? 0, failed: end.failed ?? 0 } } : {}),
  };
}

function fromState(file: string, state: RunState, journal: string | undefined): RecordedRun {
  const st = stat(file);
  const live = state.status === 'running' ? holderOf(state) : undefined;
  return {
    kind: 'run',
    fix: state.fix,
    target: describeTarget(redactTarget(state.target)),
    status: live?.status ?? state.status,
    resumable: state.status === 'running' || state.status === 'interrupted',
    ...(live?.process ? { process: live.process } : {}),
    specFile: state.specFile,
    startedAt: state.startedAt,
    lastWrittenAt: new Date(st?.mtimeMs ?? 0).toISOString(),
    read: state.records,
    writes: 0,
    ...(journal ? { journal } : {}),
    stateFile: file,
    bytes: st?.bytes ?? 0,
  };
}

/** Why a run is kept by `prune`, or undefined when it may go. */
export type KeepReason = 'newer' | 'resumable' | 'unreadable' | 'only-undo';

/** What `prune` does with one run. */
export interface PruneDecision {
  readonly run: RecordedRun;
  /** `remove`: its files go; `ask`: its journal is the only way to undo it (removed with --force or a yes). */
  readonly action: 'remove' | 'keep' | 'ask';
  readonly reason?: KeepReason;
}

/**
 * Sorts the runs of `cwd` for `datafix runs prune`: runs last written within `olderThanMs` are
 * kept; so is every run that can be resumed (state `running` or `interrupted`) and every journal
 * datafix cannot read. An older run that journaled writes and was not undone is `ask`: its journal
 * is the only way to undo them. The rest — undone, or with no write to undo — are `remove`.
 */
export async function planPrune(cwd: string, olderThanMs: number, now = Date.now()): Promise<PruneDecision[]> {
  return (await listRuns(cwd)).map((run): PruneDecision => {
    if (now - Date.parse(run.lastWrittenAt) < olderThanMs) return { run, action: 'keep', reason: 'newer' };
    if (run.resumable) return { run, action: 'keep', reason: 'resumable' };
    if (run.status === 'unreadable') return { run, action: 'keep', reason: 'unreadable' };
    // A journal outside .datafix/ stays (`filesToRemove`), so undo stays possible without asking.
    const journalGoes = run.journal !== undefined && filesToRemove(cwd, run).includes(run.journal);
    if (journalGoes && run.writes > 0 && run.status !== 'undone') return { run, action: 'ask', reason: 'only-undo' };
    return { run, action: 'remove' };
  });
}

/**
 * The files pruning a run removes: those of its journal and state file that are in `cwd`'s
 * `.datafix/runs/`. A journal written elsewhere with `--journal` is the person's own file and stays.
 */
export function filesToRemove(cwd: string, run: RecordedRun): string[] {
  const dir = runsDir(cwd);
  return [run.journal, run.stateFile, run.undoFile].filter((f): f is string => f?.startsWith(`${dir}/`) === true && stat(f) !== undefined);
}

/** Removes `filesToRemove(cwd, run)`; returns the bytes freed. */
export function removeRun(cwd: string, run: RecordedRun): number {
  let freed = 0;
  for (const file of filesToRemove(cwd, run)) {
    freed += stat(file)?.bytes ?? 0;
    rmSync(file, { force: true });
  }
  return freed;
}

/** The bytes `removeRun` would free. */
export function bytesToRemove(cwd: string, run: RecordedRun): number {
  return filesToRemove(cwd, run).reduce((n, f) => n + (stat(f)?.bytes ?? 0), 0);
}

/**
 * Parses an age such as `30d`, `12h`, `2w`, `90m` or `45s` into milliseconds.
 * @throws DatafixError DF023 for anything else.
 */
export function parseAge(text: string, option = '--older-than'): number {
  const m = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!m) {
    throw new DatafixError('usage', 'DF023', `${option} must be a whole number and a unit: s, m, h, d or w, as in 30d (got "${text}")`);
  }
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}
