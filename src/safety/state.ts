/**
 * Per-run bookkeeping under `.datafix/` in the working directory: a state file with the last
 * checkpoint so an interrupted run can be resumed, keyed by the fix, the target's real identity
 * and the scan segment. The lock that keeps two processes off one target is in `lock.ts`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, writeSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { redactEndpoint } from '../adapters/redact.js';
import type { TargetPlan } from '../plan/types.js';

export const STATE_DIR = '.datafix';

/** A parallel-scan segment: `index` from 0 to `total - 1`. */
export interface Segment {
  readonly index: number;
  readonly total: number;
}

export interface RunKey {
  readonly fix: string;
  readonly target: TargetPlan;
  readonly segment?: Segment;
}

/**
 * What a target IS, independent of how a spec spells it or tunes the connection: for SQLite the
 * database file with every symlink and `..` resolved (`busyTimeoutMs` is a setting, not an
 * identity); for DynamoDB the table, region and endpoint (the default endpoint of the region when
 * none is set). Two targets with the same identity are the same data.
 */
export function targetIdentity(target: TargetPlan): string {
  if (target.backend === 'sqlite') {
    let path = resolve(target.path);
    try {
      path = realpathSync(path);
    } catch {
      // Not there (yet): the adapter reports a missing database; the spelling is all there is.
    }
    return `sqlite:${path}`;
  }
  const endpoint = endpointIdentity(target.endpoint ?? `https://dynamodb.${target.region}.amazonaws.com`);
  return `dynamodb:${JSON.stringify([target.region, endpoint, target.table])}`;
}

/**
 * One spelling per server: credentials in the URL say who connects, not what is connected to, so
 * they go; the URL parser's form follows (`127.1` and `127.0.0.1`, port `08000` and `8000`, the
 * default port written or not); and every loopback name (`localhost`, `[::1]`, 127.x.x.x) is one
 * host. Text that is not a URL is compared as written, lower-cased.
 */
function endpointIdentity(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(redactEndpoint(endpoint));
  } catch {
    return endpoint.replace(/\/+$/, '').toLowerCase();
  }
  // This machine by any name: localhost, 127.0.0.0/8, ::1, 0.0.0.0 and IPv4-mapped forms of those.
  const h = url.hostname.replace(/^\[|\]$/g, '');
  const loopback =
    h === 'localhost' ||
    h === '::1' ||
    h === '0.0.0.0' ||
    h === '::' ||
    /^127\.\d+\.\d+\.\d+$/.test(h) ||
    /^::ffff:(127\.\d+\.\d+\.\d+|7f[0-9a-f]{2}:[0-9a-f]{1,4})$/.test(h);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  // The path is left out: one server is one lock, whatever path a proxy in front of it routes on.
  return `${url.protocol}//${loopback ? 'loopback' : h}:${port}`;
}

/** A short hash of a target's identity, for file names. */
export function identityHash(target: TargetPlan): string {
  return createHash('sha256').update(targetIdentity(target)).digest('hex').slice(0, 12);
}

/**
 * A stable file-name-safe key for a fix on a target (and segment): names its state file and its
 * checkpoint row in a SQLite target. The same for every spelling of the same target.
 */
export function runKey(key: RunKey): string {
  const seg = key.segment ? `--seg${key.segment.index}of${key.segment.total}` : '';
  return `${key.fix}--${identityHash(key.target)}${seg}`;
}

/**
 * A new run id: unique to one live run (a resume keeps it). The journal header, the state file
 * and every checkpoint carry it, so that resume can tell its own from another run's.
 */
export function newRunId(): string {
  return randomUUID();
}

/** Outcome counts of the records a run has read so far. */
export interface RunCounts {
  readonly total: number;
  readonly updated: number;
  readonly skipped: number;
  readonly failed: number;
  /** Count per skip or failure reason. */
  readonly reasons: Readonly<Record<string, number>>;
}

/** What an interrupted run had done by its last checkpoint, as `--resume` continues it. */
export interface ResumedPart {
  /** When the interrupted run started (ISO time). */
  readonly startedAt: string;
  /** When it saved its last checkpoint (ISO time). */
  readonly savedAt: string;
  readonly pages: number;
  readonly records: number;
  /** The journal the resumed run appends to. */
  readonly journal: string;
  /**
   * Its outcome counts, when its state file recorded them. They cover `counts.total` records:
   * fewer than `records` when its last page committed but the state saving it was lost (a kill
   * at that moment), or none when the state was written by an older datafix.
   */
  readonly counts?: RunCounts;
}

export interface RunState {
  readonly fix: string;
  readonly specFile: string;
  readonly specChecksum: string;
  readonly target: TargetPlan;
  readonly segment?: Segment;
  /** The run id (`newRunId`), also in the journal header and the target's checkpoint. */
  readonly runId?: string;
  readonly journal: string;
  /** `undone`: `datafix undo` restored its journal since; there is nothing to resume. */
  readonly status: 'running' | 'interrupted' | 'done' | 'undone';
  /** Source position after the last fully processed page (DynamoDB; SQLite keeps it in the database). */
  readonly cursor?: unknown;
  readonly pages: number;
  readonly records: number;
  /** Outcome counts of the whole run up to the last checkpoint (all its processes, resumes included). */
  readonly counts?: RunCounts;
  /**
   * Pages whose checkpoint was committed inside the target with their writes (SQLite): the
   * target must hold at least this far on resume, or it is not the database the run wrote to.
   */
  readonly committedPages?: number;
  /** The run's record limit (--limit or the spec's run.limit), which a resume keeps. */
  readonly limit?: number;
  /** The target's incarnation when the run started (DynamoDB: the table's id), for resume. */
  readonly targetInstance?: string;
  /** The last write journaled when this state was saved: a journal ending before it was cut. */
  readonly journalSeq?: number;
  readonly startedAt: string;
  readonly updatedAt: string;
}

/** Writes `path` whole or not at all: a temp file, fsynced, renamed over it. */
export function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * `writeAtomically` off the calling thread (libuv's pool): the same temp file, fsync and rename,
 * so the caller can go on working while the disk answers. Callers must not start another write
 * of the same path before this one settles. @throws what the file system throws (ENOSPC, EACCES).
 */
export async function writeAtomicallyAsync(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export class RunStateStore {
  constructor(private readonly dir: string) {}

  private path(id: string): string {
    return join(this.dir, STATE_DIR, 'runs', `${id}.state.json`);
  }

  read(id: string): RunState | undefined {
    try {
      return JSON.parse(readFileSync(this.path(id), 'utf8')) as RunState;
    } catch {
      return undefined;
    }
  }

  write(id: string, state: RunState): void {
    mkdirSync(join(this.dir, STATE_DIR, 'runs'), { recursive: true });
    writeAtomically(this.path(id), `${JSON.stringify(state)}\n`);
  }

  /**
   * `write` whose disk work (temp file, fsync, rename) runs off the calling thread: a run saves
   * its state after pages (every page on DynamoDB, at most once a second on SQLite), and waiting
   * for that disk there cost as much as a quarter of a light run's time. The directory must exist
   * (a `write` made it). One at a time per id: the caller awaits the previous one before the next,
   * and before any `write` of the same id.
   */
  writeInBackground(id: string, state: RunState): Promise<void> {
    return writeAtomicallyAsync(this.path(id), `${JSON.stringify(state)}\n`);
  }

  /**
   * The key of the run whose state names `journal`, or (given `runId`, the journal header's) the
   * run with that id: a copy of the journal moved elsewhere still names its run.
   */
  keyOfJournal(journal: string, runId?: string): string | undefined {
    const dir = join(this.dir, STATE_DIR, 'runs');
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.state.json'));
    } catch {
      return undefined;
    }
    // The same file however it is spelled (a symlinked working directory, `..`).
    const real = (p: string) => {
      try {
        return realpathSync(p);
      } catch {
        return resolve(p);
      }
    };
    const wanted = real(journal);
    return names
      .map((n) => n.slice(0, -'.state.json'.length))
      .find((k) => {
        const state = this.read(k);
        const named = state?.journal;
        if (runId !== undefined && state?.runId === runId) return true;
        return named !== undefined && (named === journal || real(named) === wanted);
      });
  }

  journalPath(id: string, startedAt: string): string {
    return join(this.dir, STATE_DIR, 'runs', `${id}--${startedAt.replace(/[:.]/g, '-')}.journal.jsonl`);
  }
}
