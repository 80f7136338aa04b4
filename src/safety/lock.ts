/**
 * The target lock: a lease that keeps every process that may write one target (run, resume, undo,
 * apply, lock takeover) off it while another holds it, whatever the spelling of the target.
 *
 * Where it lives follows the target's identity (`targetIdentity`), never the working directory:
 * - SQLite: next to the database file, `<real path>.datafix.lock` (symlinks resolved), so every
 *   process that can write the database sees it;
 * - DynamoDB: `$DATAFIX_LOCK_DIR` (default `~/.datafix/locks`), named by a hash of table, region
 *   and endpoint. It excludes processes on this machine (and user, unless the directory is
 *   shared) only: a run on another machine cannot see it.
 *
 * A lease holds the holder's pid, host and start time, a random nonce and a fencing token (bumped
 * on every takeover). The holder checks that the lock file still carries its nonce before every
 * journal append and checkpoint (`verify`), so a process whose lease was taken over stops before
 * its next write instead of writing next to the new holder.
 *
 * Segmented DynamoDB scans take one lock per segment (`.seg<total>-<index>.lock`); the segments
 * of one split of one fix coexist, anything else on the target excludes them and they it. Every
 * acquisition creates its own file first (O_EXCL) and then looks for conflicting ones, so of two
 * processes racing, at least one sees the other and backs off.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describeTarget } from '../adapters/registry.js';
import { DatafixError } from '../errors.js';
import type { TargetPlan } from '../plan/types.js';
import { identityHash, type Segment, targetIdentity } from './state.js';
import { writeFully } from './write-fully.js';

/** What the holder of a lock is doing. */
export type LockPurpose = 'run' | 'resume' | 'undo' | 'apply';

/** The content of a lock file. */
export interface Lease {
  readonly pid: number;
  readonly host: string;
  /**
   * The holder's pid namespace (Linux: `/proc/self/ns/pid`, e.g. `pid:[4026531836]`). Absent in
   * leases written by older datafix versions and where the system has none to read.
   */
  readonly pidNamespace?: string;
  /** ISO time the lease was taken. */
  readonly startedAt: string;
  /** The spec file (undo: the journal's spec), for the `datafix unlock` hint. */
  readonly spec: string;
  readonly fix: string;
  readonly purpose: LockPurpose;
  readonly segment?: Segment;
  /** Random: tells this lease from any later one, even one taken by a reused pid. */
  readonly nonce: string;
  /** Fencing token: 1 for a new lock, the taken-over lease's token + 1 on a takeover. */
  readonly token: number;
}

export interface LockRequest {
  readonly fix: string;
  readonly spec: string;
  readonly purpose: LockPurpose;
  readonly segment?: Segment;
  /** Take over a lock whose holder is confirmed dead on this host (`--resume`). */
  readonly takeOverStale?: boolean;
}

/** The directory holding DynamoDB target locks: `$DATAFIX_LOCK_DIR`, else `~/.datafix/locks`. */
export function dynamoLockDir(): string {
  return process.env.DATAFIX_LOCK_DIR || join(homedir(), '.datafix', 'locks');
}

/** The directory and file-name stem of a target's lock files. */
function lockStem(target: TargetPlan): { dir: string; stem: string } {
  if (target.backend === 'sqlite') {
    const path = targetIdentity(target).slice('sqlite:'.length);
    return { dir: dirname(path), stem: `${basename(path)}.datafix` };
  }
  return { dir: dynamoLockDir(), stem: `dynamodb-${identityHash(target)}.datafix` };
}

/** The lock file of a target: the whole-target lock, or one segment's. */
export function lockFile(target: TargetPlan, segment?: Segment): string {
  const { dir, stem } = lockStem(target);
  return join(dir, segment ? `${stem}.seg${segment.total}-${segment.index}.lock` : `${stem}.lock`);
}

function readRaw(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The lease in another process's lock file, waiting briefly when the file is there but not yet
 * readable as a lease: createExclusive makes the file, then writes it, so a process starting at
 * the same moment (the segments of one split, started together by a scheduler) can see it empty.
 * Up to about 200 ms; undefined if it stays unreadable (then it counts as held by someone).
 */
function settledLease(file: string): Lease | undefined {
  for (let attempt = 0; ; attempt++) {
    const raw = readRaw(file);
    const lease = parse(raw);
    if (lease !== undefined || raw === undefined || attempt >= 20) return lease;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}

function parse(raw: string | undefined): Lease | undefined {
  try {
    return raw === undefined ? undefined : (JSON.parse(raw) as Lease);
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * This process's pid namespace, or undefined where none can be read. Two containers can share a
 * host name and a volume, not their pids: a holder's pid means something only in its namespace.
 */
function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

const PID_NAMESPACE = pidNamespace();

/** Whether this process can check the holder's pid: same host and (when recorded) same pid namespace. */
function checkable(holder: Lease): boolean {
  return holder.host === hostname() && (holder.pidNamespace === undefined || holder.pidNamespace === PID_NAMESPACE);
}

/** Confirmed gone: taken on this host, in this pid namespace, by a process that is no longer running. */
function isStale(holder: Lease | undefined): boolean {
  return holder !== undefined && checkable(holder) && !alive(holder.pid);
}

/**
 * Who holds the lock of `target` (its segment's, given one), as read now: `none` (no lock file),
 * `alive` (a running process on this host, in this pid namespace), `gone` (its process is no
 * longer running: the lock is stale), or `elsewhere` (another host or pid namespace, or a lock
 * file that cannot be read: its process cannot be checked from here). `lease` when readable.
 */
export function lockHolder(
  target: TargetPlan,
  segment?: Segment,
): { readonly state: 'none' | 'alive' | 'gone' | 'elsewhere'; readonly lease?: Lease } {
  const raw = readRaw(lockFile(target, segment));
  if (raw === undefined) return { state: 'none' };
  const lease = parse(raw);
  if (!lease || !checkable(lease)) return { state: 'elsewhere', ...(lease ? { lease } : {}) };
  return { state: alive(lease.pid) ? 'alive' : 'gone', lease };
}

/** Whether this process holds the lock of `target` (its segment's, given one) at this moment. */
export function heldByThisProcess(target: TargetPlan, segment?: Segment): boolean {
  const holder = lockHolder(target, segment);
  return holder.state === 'alive' && holder.lease?.pid === process.pid;
}

function describeHolder(holder: Lease | undefined): string {
  if (!holder) return 'a process whose lock file cannot be read (it may be writing it right now)';
  const what = holder.purpose && holder.purpose !== 'run' ? ` (${holder.purpose} of ${holder.fix})` : holder.fix ? ` (${holder.fix})` : '';
  return `process ${holder.pid} on ${holder.host}${what}, started ${holder.startedAt}`;
}

function unlockHint(holder: Lease | undefined): string {
  const seg = holder?.segment ? ` --segment ${holder.segment.index} --total-segments ${holder.segment.total}` : '';
  return `\`datafix unlock ${holder?.spec ?? 'SPEC'}${seg}\``;
}

/** Writes a whole file durably, failing if it exists. */
function createExclusive(file: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DatafixError(
      'usage',
      'DF715',
      `cannot create the lock file ${file}: ${(err as Error).message}. Check that its directory is writable`,
    );
  }
  try {
    const bytes = Buffer.from(text);
    writeFully(fd, bytes);
    fsyncSync(fd);
  } catch (err) {
    // An empty or partial lock file would block every later run as "held": never leave one.
    closeSync(fd);
    rmSync(file, { force: true });
    throw new DatafixError(
      'usage',
      'DF715',
      `cannot write the lock file ${file}: ${(err as Error).message}. Free space on its disk or check its directory`,
    );
  }
  closeSync(fd);
  return true;
}

/**
 * Runs `fn` holding the takeover marker of `file` (O_EXCL), so that of several processes taking
 * over or clearing one stale lock at once, exactly one acts and the others are refused.
 */
function withTakeoverMarker<T>(file: string, fn: () => T): T {
  const marker = `${file}.takeover`;
  const mine = JSON.stringify({
    pid: process.pid,
    host: hostname(),
    ...(PID_NAMESPACE ? { pidNamespace: PID_NAMESPACE } : {}),
    at: new Date().toISOString(),
  });
  let taken = createExclusive(marker, mine);
  if (!taken) {
    // A marker whose process died (killed mid-takeover) would block every takeover for good:
    // one confirmed gone, by the same rules as a lease, is removed and the marker taken again.
    const left = readRaw(marker);
    const holder = parse(left) as Lease | undefined;
    if (holder && isStale(holder) && readRaw(marker) === left) {
      rmSync(marker, { force: true });
      taken = createExclusive(marker, mine);
    }
  }
  if (!taken) {
    throw new DatafixError(
      'usage',
      'DF714',
      `another process is taking over or clearing the lock ${file} right now; try again in a moment. If no datafix process is running, delete ${marker}`,
    );
  }
  try {
    return fn();
  } finally {
    rmSync(marker, { force: true });
  }
}

/**
 * A SQLite database file with several hard links has several names. The lock lives next to one
 * name and cannot keep out a process that writes the file under another; SQLite itself keeps its
 * rollback journal next to the name it opened, so a crash under one name is not recovered under
 * the other (https://www.sqlite.org/howtocorrupt.html, section "Multiple links to the same file").
 * @throws DatafixError DF716 when the file has more than one link.
 */
function refuseHardLinks(target: TargetPlan & { backend: 'sqlite' }): void {
  const path = targetIdentity(target).slice('sqlite:'.length);
  let links: number;
  try {
    links = statSync(path).nlink;
  } catch {
    return; // Not there: the adapter reports the missing database.
  }
  if (links > 1) {
    throw new DatafixError(
      'usage',
      'DF716',
      `${path} has ${links} hard links: a lock next to this name cannot keep out a process writing the file under another name, and SQLite keeps its rollback journal next to the name it opened, so writing under two names can corrupt the database (https://www.sqlite.org/howtocorrupt.html). Nothing was written. Work on a copy, or remove the other links (\`find / -samefile ${path}\`), then run again`,
    );
  }
}

export class TargetLock {
  private constructor(
    readonly file: string,
    readonly lease: Lease,
    private readonly target: TargetPlan,
  ) {}

  /**
   * Takes the lock of `target` for `request`, or throws a `DatafixError` naming the holder and
   * what to do: DF710 a live holder (or one on another host), DF711 a stale one, DF714 a takeover
   * in progress, DF715 the lock directory is not writable.
   */
  static acquire(target: TargetPlan, request: LockRequest): TargetLock {
    if (target.backend === 'sqlite') refuseHardLinks(target);
    const file = lockFile(target, request.segment);
    const dir = dirname(file);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new DatafixError('usage', 'DF715', `cannot create the lock directory ${dir}: ${(err as Error).message}`);
    }
    const lease: Lease = {
      pid: process.pid,
      host: hostname(),
      ...(PID_NAMESPACE ? { pidNamespace: PID_NAMESPACE } : {}),
      startedAt: new Date().toISOString(),
      spec: request.spec,
      fix: request.fix,
      purpose: request.purpose,
      ...(request.segment ? { segment: request.segment } : {}),
      nonce: randomBytes(16).toString('hex'),
      token: 1,
    };
    let held: TargetLock;
    if (createExclusive(file, JSON.stringify(lease))) held = new TargetLock(file, lease, target);
    else {
      const raw = readRaw(file);
      const holder = parse(raw);
      if (raw === undefined) return TargetLock.acquire(target, { ...request, takeOverStale: false });
      if (!isStale(holder)) throw TargetLock.busy(target, holder);
      if (!request.takeOverStale) throw TargetLock.stale(holder);
      // Resuming is continuing exactly the run that died holding this lock.
      const taken = withTakeoverMarker(file, () => {
        // Re-verify under the marker: the lock must still be the stale one judged above.
        if (readRaw(file) !== raw) throw TargetLock.busy(target, parse(readRaw(file)));
        const next: Lease = { ...lease, token: (holder?.token ?? 0) + 1 };
        // A random name: a file left by an earlier process with the same pid is never renamed in.
        const tmp = `${file}.${randomBytes(8).toString('hex')}.tmp`;
        if (!createExclusive(tmp, JSON.stringify(next))) throw TargetLock.busy(target, parse(readRaw(file)));
        renameSync(tmp, file);
        return next;
      });
      held = new TargetLock(file, taken, target);
    }
    let conflict: ReturnType<TargetLock['conflicts']>;
    try {
      conflict = held.conflicts();
    } catch (err) {
      held.release();
      throw err;
    }
    if (conflict) {
      held.release();
      throw isStale(conflict.holder) ? TargetLock.stale(conflict.holder) : TargetLock.busy(target, conflict.holder);
    }
    return held;
  }

  private static busy(target: TargetPlan, holder: Lease | undefined): DatafixError {
    return new DatafixError(
      'usage',
      'DF710',
      `another process is writing ${describeTarget(target)}: ${describeHolder(holder)}; wait for it to finish. If that process is gone, clear the lock with ${unlockHint(holder)}`,
    );
  }

  private static stale(holder: Lease | undefined): DatafixError {
    return new DatafixError(
      'usage',
      'DF711',
      `a stale lock is left by ${describeHolder(holder)}, which is no longer running. ${
        holder?.purpose === 'apply'
          ? `Clear it with ${unlockHint(holder)}, then run that datafix apply again (records already applied are left as they are)`
          : holder?.purpose === 'undo'
            ? 'Run that datafix undo again: it takes the lock over'
            : `Continue that run with --resume, or clear the lock with ${unlockHint(holder)} to start over`
      }`,
    );
  }

  /** Another lock file on the same target that excludes this one, if any. */
  private conflicts(): { file: string; holder: Lease | undefined } | undefined {
    const dir = dirname(this.file);
    const { stem } = lockStem(this.target);
    const mine = this.lease.segment;
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(`${stem}.`) || !name.endsWith('.lock')) continue;
      const file = join(dir, name);
      if (file === this.file) continue;
      const holder = settledLease(file);
      if (name === `${stem}.lock` || !mine) return { file, holder };
      // Segments of one split of one fix run side by side; any other split overlaps this one.
      const compatible = holder !== undefined && holder.segment?.total === mine.total && holder.fix === this.lease.fix;
      if (!compatible) return { file, holder };
    }
    return undefined;
  }

  /**
   * Checks the lease is still this process's: called before every journal append and
   * checkpoint. Throws DF713 when another process took the lock over (this one was judged dead,
   * or the lock was cleared with `unlock --force`).
   */
  verify(): void {
    const holder = parse(readRaw(this.file));
    if (holder?.nonce === this.lease.nonce) return;
    throw new DatafixError(
      'usage',
      'DF713',
      `this process lost its lock on ${describeTarget(this.target)} (${this.file} ${holder ? `now belongs to ${describeHolder(holder)}` : 'was removed'}); it stopped before its next write. Let the other process finish, then check the data and resume or undo`,
    );
  }

  /** Removes the lock file if it is still this process's (never a later holder's). */
  release(): void {
    if (parse(readRaw(this.file))?.nonce === this.lease.nonce) rmSync(this.file, { force: true });
  }

  /**
   * `datafix unlock`: clears the lock of `target` (one segment's with `segment`) once its holder
   * is confirmed gone. A live holder on this host, or one on another host (which cannot be
   * checked), needs `force`; `force` also removes a takeover marker left by a dead process.
   * Throws DF712 when the lock is not stale and `force` is not given.
   */
  static clear(target: TargetPlan, segment: Segment | undefined, force: boolean): 'cleared' | 'none' {
    const file = lockFile(target, segment);
    if (force) rmSync(`${file}.takeover`, { force: true });
    const raw = readRaw(file);
    if (raw === undefined) return 'none';
    const holder = parse(raw);
    if (!isStale(holder) && !force) {
      const where = !holder
        ? 'its lock file cannot be read'
        : holder.host !== hostname()
          ? `it was taken on ${holder.host}, which this machine cannot check`
          : !checkable(holder)
            ? `it was taken by process ${holder.pid} in another pid namespace (${holder.pidNamespace}, a container sharing this host name), which this process cannot check`
            : `process ${holder.pid} is still running`;
      throw new DatafixError('usage', 'DF712', `the lock is not stale: ${where}. Use --force only if you are sure no run is active`);
    }
    return withTakeoverMarker(file, () => {
      // Only the lease judged above: a run that took the lock over meanwhile keeps it.
      if (readRaw(file) !== raw) return 'none';
      rmSync(file, { force: true });
      return 'cleared';
    });
  }
}
