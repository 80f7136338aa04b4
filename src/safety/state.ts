/**
 * Per-run bookkeeping under `.datafix/` in the working directory: a lock so that one fix runs on
 * one target at a time, and a state file with the last checkpoint so an interrupted run can be
 * resumed. Both are keyed by the fix, its target and its scan segment.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { redactTarget } from '../adapters/redact.js';
import { DatafixError } from '../errors.js';
import type { FixPlan, TargetPlan } from '../plan/types.js';

export const STATE_DIR = '.datafix';

export interface RunKey {
  readonly fix: string;
  readonly target: TargetPlan;
  readonly segment?: { readonly index: number; readonly total: number };
}

/** A stable file-name-safe id for a fix on a target (and segment). */
export function runId(key: RunKey): string {
  // Keyed by the target without credentials: other credentials for the same table are the same target.
  const hash = createHash('sha256')
    .update(JSON.stringify(redactTarget(key.target)))
    .digest('hex')
    .slice(0, 12);
  const seg = key.segment ? `--seg${key.segment.index}of${key.segment.total}` : '';
  return `${key.fix}--${hash}${seg}`;
}

export interface RunState {
  readonly fix: string;
  readonly specFile: string;
  readonly specChecksum: string;
  readonly target: TargetPlan;
  readonly segment?: { readonly index: number; readonly total: number };
  readonly journal: string;
  readonly status: 'running' | 'interrupted' | 'done';
  /** Source position after the last fully processed page (DynamoDB; SQLite keeps it in the database). */
  readonly cursor?: unknown;
  readonly pages: number;
  readonly records: number;
  readonly startedAt: string;
  readonly updatedAt: string;
}

function writeAtomically(path: string, text: string): void {
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

  journalPath(id: string, startedAt: string): string {
    return join(this.dir, STATE_DIR, 'runs', `${id}--${startedAt.replace(/[:.]/g, '-')}.journal.jsonl`);
  }
}

interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  readonly spec: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class RunLock {
  private constructor(private readonly file: string) {}

  static lockPath(dir: string, id: string): string {
    return join(dir, STATE_DIR, 'locks', `${id}.lock`);
  }

  /** Takes the lock, or explains who holds it and what to do. */
  static acquire(dir: string, id: string, plan: FixPlan, spec: string, options: { takeOverStale?: boolean } = {}): RunLock {
    const file = RunLock.lockPath(dir, id);
    mkdirSync(join(dir, STATE_DIR, 'locks'), { recursive: true });
    const info: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), spec };
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, JSON.stringify(info));
      fsyncSync(fd);
      closeSync(fd);
      return new RunLock(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = RunLock.holder(file);
    const who = holder ? `process ${holder.pid} on ${holder.host}, started ${holder.startedAt}` : 'an unknown process';
    const stale = holder !== undefined && holder.host === hostname() && !alive(holder.pid);
    if (stale && options.takeOverStale) {
      // Resuming is continuing exactly the run that died holding this lock.
      rmSync(file, { force: true });
      return RunLock.acquire(dir, id, plan, spec);
    }
    if (stale) {
      throw new DatafixError(
        'usage',
        'DF711',
        `a stale lock is left by ${who}, which is no longer running. Continue that run with --resume, or clear the lock with \`datafix unlock ${spec}\` to start over`,
      );
    }
    throw new DatafixError(
      'usage',
      'DF710',
      `another run of ${plan.fix} on this target is in progress (${who}); wait for it to finish. If that process is gone, clear the lock with \`datafix unlock ${spec}\``,
    );
  }

  static holder(file: string): LockInfo | undefined {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
    } catch {
      return undefined;
    }
  }

  /**
   * Clears a lock whose process is no longer running. A lock held by a live process on this
   * machine is only cleared with `force`; one from another host cannot be checked, so needs it too.
   */
  static clear(dir: string, id: string, force: boolean): 'cleared' | 'none' {
    const file = RunLock.lockPath(dir, id);
    const holder = RunLock.holder(file);
    if (!holder) {
      rmSync(file, { force: true });
      return 'none';
    }
    const stale = holder.host === hostname() && !alive(holder.pid);
    if (!stale && !force) {
      const where =
        holder.host === hostname()
          ? `process ${holder.pid} is still running`
          : `it was taken on ${holder.host}, which this machine cannot check`;
      throw new DatafixError('usage', 'DF712', `the lock is not stale: ${where}. Use --force only if you are sure no run is active`);
    }
    rmSync(file, { force: true });
    return 'cleared';
  }

  release(): void {
    rmSync(this.file, { force: true });
  }
}
