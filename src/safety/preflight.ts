/**
 * What a live run checks before it takes its lock or writes a journal or state file: that it can
 * write where it keeps them, and that the target opens for writing and fits the plan. Without
 * this, a read-only database or an unwritable `.datafix` surfaces only after the lock, the
 * journal header and the state file exist, and leaves them behind for a run that wrote nothing.
 */
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createAdapter } from '../adapters/registry.js';
import { DatafixError } from '../errors.js';
import type { FixPlan, TargetPlan } from '../plan/types.js';
import { STATE_DIR } from './state.js';

export interface PreflightOptions {
  /** Where `.datafix/` lives (the working directory). */
  readonly cwd: string;
  /** A journal path given by the user; it must not exist yet and its directory must be writable. */
  readonly journalPath?: string;
  /** Extra adapter options (fault injection in tests). */
  readonly adapter?: { readonly dynamodb?: Record<string, unknown> };
}

/**
 * Throws a DatafixError (exit 2) naming the path or target, the cause and what to do when a
 * live run could not write its bookkeeping or its target. Creates nothing. Without a plan only
 * the bookkeeping is checked (a caller that opens the target itself).
 */
export async function preflight(plan: FixPlan | undefined, options: PreflightOptions): Promise<void> {
  const stateDir = join(resolve(options.cwd), STATE_DIR);
  // State files and default journals go to .datafix/runs: both levels must be writable.
  const stateProblem = whyNotCreatable(stateDir) ?? whyNotCreatable(join(stateDir, 'runs'));
  if (stateProblem) {
    throw new DatafixError(
      'config',
      'DF740',
      `cannot keep run state in ${stateDir}: ${stateProblem}. Live runs write their state and journal in ${join(stateDir, 'runs')}; run datafix from a directory you can write to, or make it writable`,
    );
  }
  if (options.journalPath !== undefined) {
    const journal = resolve(options.cwd, options.journalPath);
    const side = plan ? sqliteSideFile(plan.target, journal) : undefined;
    const problem = side ?? (existsSync(journal) ? 'it already exists; journals are never overwritten' : whyNotCreatable(dirname(journal)));
    if (problem) {
      throw new DatafixError(
        'usage',
        'DF701',
        `cannot create journal ${journal}: ${problem}. Give --journal a new file in a writable directory`,
      );
    }
  }
  if (plan) await checkTarget(plan, { readonly: false, ...(options.adapter ? { adapter: options.adapter } : {}) });
}

/**
 * Opens the target as the run will (read-only for a dry run), checks the plan against its live
 * schema and closes it again: a missing, unreadable, read-only or mismatched target fails here,
 * with a DatafixError, before the caller creates any file.
 */
export async function checkTarget(
  plan: FixPlan,
  options: { readonly readonly: boolean; readonly adapter?: { readonly dynamodb?: Record<string, unknown> } },
): Promise<void> {
  const adapter = await createAdapter(plan.target, {
    readonly: options.readonly,
    ...(options.adapter?.dynamodb ? { dynamodb: options.adapter.dynamodb } : {}),
  });
  try {
    await adapter.check(plan);
  } finally {
    await adapter.close();
  }
}

/**
 * Why `path` could not be created (or, when it exists, written into) as a directory; undefined
 * when it can. Walks up to the nearest existing ancestor, since `mkdir -p` would create the rest.
 */
export function whyNotCreatable(path: string): string | undefined {
  for (let p = path, below = ''; ; below = p, p = dirname(p)) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && dirname(p) !== p) continue;
      return `${p} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    if (!isDir) return `${p} is a file, not a directory`;
    try {
      accessSync(p, constants.W_OK | constants.X_OK);
    } catch {
      return p === path ? `${p} is not writable` : `${p} is not writable, so ${below} cannot be created in it`;
    }
    return undefined;
  }
}

/**
 * Why `path` must not be written by datafix when the target is a SQLite database: it is one of
 * the files SQLite keeps beside the database (`-journal`, `-wal`, `-shm`), which SQLite reads,
 * rewrites or deletes as it opens the database (https://www.sqlite.org/tempfiles.html). A file
 * put there would be lost, or would break every read-only open. Undefined for any other path.
 */
export function sqliteSideFile(target: TargetPlan, path: string): string | undefined {
  if (target.backend !== 'sqlite') return undefined;
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  const db = real(target.path);
  const file = join(real(dirname(path)), basename(path));
  const suffix = ['-journal', '-wal', '-shm'].find((s) => file === `${db}${s}`);
  return suffix === undefined
    ? undefined
    : `it is the database's own ${suffix} file, which SQLite rewrites or deletes when it opens the database`;
}
