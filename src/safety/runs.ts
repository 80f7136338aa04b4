/**
 * The runs recorded under `.datafix/runs/` of a working directory — journals of live runs and
 * applies, and the state files `--resume` reads — listed for a person (`datafix runs`) and pruned
 * once they are old (`datafix runs prune`). Pruning never removes what a run can still be resumed
 * from, and removes a journal that is the only way to undo its writes only when told to.
 */
import { createReadStream, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { redactTarget } from '../adapters/redact.js';
import { describeTarget } from '../adapters/registry.js';
import { DatafixError } from '../errors.js';
import type { TargetPlan } from '../plan/types.js';
import { type RunState, RunStateStore, STATE_DIR } from './state.js';

/**
 * `running`/`interrupted`: as its state file says (resumable only while that state is the
 * current one of its fix and target); `done`: it finished (its journal has an end line);
 * `undone`: `datafix undo` restored it; `stopped`: it ended without an end line and no state
 * continues it (killed, or a later run of the fix started over); `unreadable`: not a journal
 * datafix can read.
 */
export type RunStatus = 'running' | 'interrupted' | 'done' | 'undone' | 'stopped' | 'unreadable';

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
  /** Records read (from the run's end line, else its last checkpoint). */
  readonly read?: number;
  /** Writes journaled: each one is a record undo can restore (or finds already as before). */
  readonly writes: number;
  /** The end line's summary counts (`updated`, `skipped`, `failed`), when the run has one. */
  readonly summary?: { readonly updated: number; readonly skipped: number; readonly failed: number };
  /** Absolute path of the journal; undefined when the state names none that exists. */
  readonly journal?: string;
  readonly stateFile?: string;
  /** Bytes of its journal and state file together. */
  readonly bytes: number;
}

interface JournalPeek {
  readonly header?: { fix?: string; target?: TargetPlan; runId?: string; specFile?: string; startedAt?: string };
  readonly end?: { summary?: { total?: number; updated?: number; skipped?: number; failed?: number } };
  readonly writes: number;
  /** Outcome lines: as many as writes when no write was left without a recorded outcome. */
  readonly results: number;
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
    // An apply has no end line and no state; it is done when every write has its outcome.
    const finished = peek.end !== undefined || (h.runId === undefined && peek.results >= peek.writes);
    const status: RunStatus = state ? state.state.status : finished ? 'done' : 'stopped';
    runs.push({
      kind: h.runId === undefined ? 'apply' : 'run',
      fix: h.fix ?? '?',
      target: h.target ? describeTarget(redactTarget(h.target)) : '?',
      status,
      resumable: status === 'running' || status === 'interrupted',
      ...(h.specFile ? { specFile: h.specFile } : {}),
      ...(h.startedAt ? { startedAt: h.startedAt } : {}),
      lastWrittenAt,
      ...(s?.total !== undefined ? { read: s.total } : state ? { read: state.state.records } : {}),
      writes: peek.writes,
      ...(s ? { summary: { updated: s.updated ?? 0, skipped: s.skipped ?? 0, failed: s.failed ?? 0 } } : {}),
      journal,
      ...(state ? { stateFile: state.file } : {}),
      bytes,
    });
  }
  for (const s of states) if (!claimed.has(s.file)) runs.push(fromState(s.file, s.state, undefined));
  return runs.sort((a, b) => (b.startedAt ?? b.lastWrittenAt).localeCompare(a.startedAt ?? a.lastWrittenAt));
}

function fromState(file: string, state: RunState, journal: string | undefined): RecordedRun {
  const st = stat(file);
  return {
    kind: 'run',
    fix: state.fix,
    target: describeTarget(redactTarget(state.target)),
    status: state.status,
    resumable: state.status === 'running' || state.status === 'interrupted',
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
  return [run.journal, run.stateFile].filter((f): f is string => f?.startsWith(`${dir}/`) === true && stat(f) !== undefined);
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
