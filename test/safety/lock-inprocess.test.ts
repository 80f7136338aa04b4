/**
 * The target lock in the test process: where each target's lock file is, what a lease holds,
 * who is judged to hold a lock (alive, gone, elsewhere), what every refusal says (DF710 to DF716),
 * a stale lease taken over with its fencing token bumped, `verify` and `release` after another
 * process took the lock, `datafix unlock` (`TargetLock.clear`), and the segments of a split scan.
 * Leases of other processes are written here by hand, as those processes would write them; a
 * dead holder is a process this test started and waited for.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, readdirSync, readFileSync, readlinkSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DatafixError } from '../../src/errors.js';
import type { TargetPlan } from '../../src/plan/types.js';
import { dynamoLockDir, heldByThisProcess, type Lease, lockFile, lockHolder, TargetLock } from '../../src/safety/lock.js';
import { type TempDir, useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

afterEach(() => {
  vi.unstubAllEnvs();
});

/** A process that has exited: its pid is running nothing. */
const DEAD_PID = spawnSync(process.execPath, ['-e', '0']).pid as number;
const NAMESPACE = readlinkSync('/proc/self/ns/pid');
const HOST = hostname();

function sqliteTarget(dir: TempDir, name = 'shop.db'): TargetPlan & { backend: 'sqlite' } {
  return { backend: 'sqlite', path: dir.write(name, ''), busyTimeoutMs: 1000 };
}

function dynamoTarget(table = 'media', endpoint = 'http://127.0.0.1:8000'): TargetPlan {
  return { backend: 'dynamodb', table, region: 'us-east-1', endpoint };
}

/** A lease as another process writes it: `over` replaces any field (`pidNamespace: undefined` leaves it out). */
function lease(over: Partial<Lease> = {}): Lease {
  return {
    pid: DEAD_PID,
    host: HOST,
    pidNamespace: NAMESPACE,
    startedAt: '2030-01-01T00:00:00.000Z',
    spec: '/fixes/sync.yaml',
    fix: 'sync',
    purpose: 'run',
    nonce: 'a'.repeat(32),
    token: 4,
    ...over,
  };
}

function writeLease(file: string, l: Lease | string): void {
  writeFileSync(file, typeof l === 'string' ? l : JSON.stringify(l));
}

const run = { fix: 'sync', spec: '/fixes/sync.yaml', purpose: 'run' } as const;

/** The DatafixError `fn` throws (fails the test when it throws none). */
function refusal(fn: () => unknown): DatafixError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DatafixError);
  expect((err as DatafixError).category).toBe('usage');
  return err as DatafixError;
}

const codeAndMessage = (err: DatafixError) => [err.code, err.message];

/** Files in `dir` whose names contain `.datafix` (lock files, takeover markers, temporary leases). */
const lockLeftovers = (dir: string) => readdirSync(dir).filter((n) => n.includes('.datafix'));

describe('where the lock of a target is', () => {
  it('SQLite: next to the real database file, whatever the spelling; one file per segment', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const real = realpathSync(target.path);
    symlinkSync(target.path, dir.file('current.db'));
    expect(lockFile(target)).toBe(`${real}.datafix.lock`);
    expect(lockFile({ ...target, path: dir.file('current.db'), busyTimeoutMs: 5 })).toBe(`${real}.datafix.lock`);
    expect(lockFile(target, { index: 1, total: 4 })).toBe(`${real}.datafix.seg4-1.lock`);
  });

  it('DynamoDB: in $DATAFIX_LOCK_DIR (default ~/.datafix/locks), one name per table, region and endpoint', () => {
    const dir = tmp();
    vi.stubEnv('DATAFIX_LOCK_DIR', dir.path);
    expect(dynamoLockDir()).toBe(dir.path);
    const file = lockFile(dynamoTarget());
    expect(file).toMatch(new RegExp(`^${dir.path}/dynamodb-[0-9a-f]+\\.datafix\\.lock$`));
    expect(lockFile(dynamoTarget(), { index: 0, total: 2 })).toBe(file.replace(/\.lock$/, '.seg2-0.lock'));
    expect(lockFile(dynamoTarget('other'))).not.toBe(file);
    expect(lockFile(dynamoTarget('media', 'http://localhost:8000/'))).toBe(file);
    vi.stubEnv('DATAFIX_LOCK_DIR', '');
    expect(dynamoLockDir()).toBe(join(homedir(), '.datafix', 'locks'));
  });
});

describe('taking and releasing the lock', () => {
  it('the lease names this process, its host and pid namespace, the fix, spec and purpose, a nonce and token 1; release removes it', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const before = new Date().toISOString();
    const lock = TargetLock.acquire(target, { ...run, purpose: 'undo' });
    const after = new Date().toISOString();
    const written = JSON.parse(readFileSync(lockFile(target), 'utf8')) as Lease;
    expect(written).toEqual(lock.lease);
    expect(written).toEqual({
      pid: process.pid,
      host: HOST,
      pidNamespace: NAMESPACE,
      startedAt: expect.any(String),
      spec: '/fixes/sync.yaml',
      fix: 'sync',
      purpose: 'undo',
      nonce: expect.stringMatching(/^[0-9a-f]{32}$/),
      token: 1,
    });
    expect(written.startedAt >= before && written.startedAt <= after).toBe(true);
    expect(lock.file).toBe(lockFile(target));
    expect(lockHolder(target)).toEqual({ state: 'alive', lease: written });
    expect(heldByThisProcess(target)).toBe(true);
    lock.verify();
    lock.release();
    expect(lockLeftovers(dir.path)).toEqual([]);
    expect(lockHolder(target)).toEqual({ state: 'none' });
    expect(heldByThisProcess(target)).toBe(false);
    // Taken again once released, with a new nonce.
    const again = TargetLock.acquire(target, run);
    expect(again.lease.nonce).not.toBe(lock.lease.nonce);
    again.release();
  });

  it('a lock held by a running process refuses every other taker (DF710), naming the holder and what it does', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const held = TargetLock.acquire(target, { fix: 'sync', spec: '/fixes/sync.yaml', purpose: 'apply' });
    const err = refusal(() => TargetLock.acquire(target, { ...run, takeOverStale: true }));
    expect(codeAndMessage(err)).toEqual([
      'DF710',
      `another process is writing sqlite ${target.path}: process ${process.pid} on ${HOST} (apply of sync), started ${held.lease.startedAt}; wait for it to finish. If that process is gone, clear the lock with \`datafix unlock /fixes/sync.yaml\``,
    ]);
    // The holder keeps its lock.
    held.verify();
    held.release();
    // A run's lease names only the fix.
    writeLease(lockFile(target), lease({ pid: process.pid }));
    expect(refusal(() => TargetLock.acquire(target, run)).message).toContain(
      `: process ${process.pid} on ${HOST} (sync), started 2030-01-01T00:00:00.000Z; wait`,
    );
  });

  it('a lock of another host or pid namespace, or one that cannot be read, cannot be checked: DF710 even with takeOverStale', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    const cases: [Lease | string, string][] = [
      [
        lease({ host: 'build-7' }),
        `process ${DEAD_PID} on build-7 (sync), started 2030-01-01T00:00:00.000Z; wait for it to finish. If that process is gone, clear the lock with \`datafix unlock /fixes/sync.yaml\``,
      ],
      [lease({ pidNamespace: 'pid:[1]' }), `process ${DEAD_PID} on ${HOST} (sync)`],
      [
        '{"pid":',
        'a process whose lock file cannot be read (it may be writing it right now); wait for it to finish. If that process is gone, clear the lock with `datafix unlock SPEC`',
      ],
    ];
    for (const [l, says] of cases) {
      writeLease(file, l);
      const err = refusal(() => TargetLock.acquire(target, { ...run, takeOverStale: true }));
      expect(err.code).toBe('DF710');
      expect(err.message).toContain(`another process is writing sqlite ${target.path}: ${says}`);
      expect(readFileSync(file, 'utf8')).toBe(typeof l === 'string' ? l : JSON.stringify(l));
    }
  });

  it('lockHolder: none, alive, gone (its process ended), elsewhere (another host or pid namespace, or unreadable)', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    expect(lockHolder(target)).toEqual({ state: 'none' });
    const cases: [Lease | string, ReturnType<typeof lockHolder>][] = [
      [lease({ pid: process.pid }), { state: 'alive', lease: lease({ pid: process.pid }) }],
      [lease(), { state: 'gone', lease: lease() }],
      [lease({ pidNamespace: undefined }), { state: 'gone', lease: lease({ pidNamespace: undefined }) }],
      [lease({ host: 'build-7' }), { state: 'elsewhere', lease: lease({ host: 'build-7' }) }],
      [lease({ pidNamespace: 'pid:[1]' }), { state: 'elsewhere', lease: lease({ pidNamespace: 'pid:[1]' }) }],
      ['not json', { state: 'elsewhere' }],
    ];
    for (const [l, state] of cases) {
      writeLease(file, l);
      expect(lockHolder(target)).toEqual(state);
    }
    // Held by this process only when its own pid is alive in the lease.
    writeLease(file, lease({ pid: process.pid }));
    expect(heldByThisProcess(target)).toBe(true);
    writeLease(file, lease({ pid: process.ppid }));
    expect(lockHolder(target).state).toBe('alive');
    expect(heldByThisProcess(target)).toBe(false);
    // This pid on another host is another process.
    writeLease(file, lease({ pid: process.pid, host: 'build-7' }));
    expect(heldByThisProcess(target)).toBe(false);
    // A process this user may not signal (pid 1, unless root) is running all the same.
    writeLease(file, lease({ pid: 1 }));
    expect(lockHolder(target)).toEqual({ state: 'alive', lease: lease({ pid: 1 }) });
  });
});

describe('a stale lock: its holder is gone', () => {
  it('refused without takeOverStale (DF711), saying what to do for a run, an apply and an undo; the lock stays', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    const by = `a stale lock is left by process ${DEAD_PID} on ${HOST}`;
    const cases: [Lease, string][] = [
      [
        lease(),
        `${by} (sync), started 2030-01-01T00:00:00.000Z, which is no longer running. Continue that run with --resume, or clear the lock with \`datafix unlock /fixes/sync.yaml\` to start over`,
      ],
      [
        lease({ purpose: 'apply' }),
        `${by} (apply of sync), started 2030-01-01T00:00:00.000Z, which is no longer running. Clear it with \`datafix unlock /fixes/sync.yaml\`, then run that datafix apply again (records already applied are left as they are)`,
      ],
      [
        lease({ purpose: 'undo' }),
        `${by} (undo of sync), started 2030-01-01T00:00:00.000Z, which is no longer running. Run that datafix undo again: it takes the lock over`,
      ],
      [lease({ purpose: 'resume' }), `${by} (resume of sync), started`],
    ];
    for (const [l, message] of cases) {
      writeLease(file, l);
      const err = refusal(() => TargetLock.acquire(target, { ...run, purpose: 'resume' }));
      expect(err.code).toBe('DF711');
      expect(err.message).toContain(message);
      expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(l));
    }
  });

  it('taken over with takeOverStale: a new lease with the fencing token bumped, no marker or temporary file left; the old holder fails verify (DF713) and its release keeps the new lock', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    // The old holder: this process's lease, then judged dead (its pid replaced by a dead one).
    const old = TargetLock.acquire(target, run);
    writeLease(file, { ...old.lease, pid: DEAD_PID });
    const taken = TargetLock.acquire(target, { ...run, purpose: 'resume', takeOverStale: true });
    expect(taken.lease).toMatchObject({ pid: process.pid, purpose: 'resume', token: 2 });
    expect(taken.lease.nonce).not.toBe(old.lease.nonce);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(taken.lease);
    expect(lockLeftovers(dir.path)).toEqual(['shop.db.datafix.lock']);

    const err = refusal(() => old.verify());
    expect(codeAndMessage(err)).toEqual([
      'DF713',
      `this process lost its lock on sqlite ${target.path} (${file} now belongs to process ${process.pid} on ${HOST} (resume of sync), started ${taken.lease.startedAt}); it stopped before its next write. Let the other process finish, then check the data and resume or undo`,
    ]);
    old.release();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(taken.lease);
    taken.verify();
    taken.release();
    expect(existsSync(file)).toBe(false);
    expect(refusal(() => taken.verify()).message).toContain(`(${file} was removed); it stopped before its next write`);
    // Released again (or after \`unlock --force\` removed it): nothing to do, no error.
    taken.release();
    expect(existsSync(file)).toBe(false);

    // A lease without a token (an older datafix) is taken over with token 1.
    writeLease(file, JSON.stringify({ ...lease(), token: undefined }));
    const first = TargetLock.acquire(target, { ...run, takeOverStale: true });
    expect(first.lease.token).toBe(1);
    first.release();
  });

  it('a takeover marker of a running process refuses the takeover (DF714); one left by a dead process is cleared and the takeover goes on', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    writeLease(file, lease({ token: 9 }));
    writeFileSync(
      `${file}.takeover`,
      JSON.stringify({ pid: process.pid, host: HOST, pidNamespace: NAMESPACE, at: '2030-01-01T00:00:00.000Z' }),
    );
    const err = refusal(() => TargetLock.acquire(target, { ...run, takeOverStale: true }));
    expect(codeAndMessage(err)).toEqual([
      'DF714',
      `another process is taking over or clearing the lock ${file} right now; try again in a moment. If no datafix process is running, delete ${file}.takeover`,
    ]);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(lease({ token: 9 }));
    // Unreadable: it may be being written, so it is left too.
    writeFileSync(`${file}.takeover`, '');
    expect(refusal(() => TargetLock.acquire(target, { ...run, takeOverStale: true })).code).toBe('DF714');

    writeFileSync(
      `${file}.takeover`,
      JSON.stringify({ pid: DEAD_PID, host: HOST, pidNamespace: NAMESPACE, at: '2030-01-01T00:00:00.000Z' }),
    );
    const taken = TargetLock.acquire(target, { ...run, takeOverStale: true });
    expect(taken.lease.token).toBe(10);
    expect(lockLeftovers(dir.path)).toEqual(['shop.db.datafix.lock']);
    taken.release();
  });
  it('a takeover marker or temporary lease left by a killed process does not block a new lock', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    writeFileSync(`${file}.takeover`, JSON.stringify({ pid: DEAD_PID, host: HOST, at: '2030-01-01T00:00:00.000Z' }));
    writeLease(`${file}.0123456789abcdef.tmp`, lease());
    const lock = TargetLock.acquire(target, run);
    expect(lock.lease.token).toBe(1);
    lock.release();
    expect(lockLeftovers(dir.path).sort()).toEqual(['shop.db.datafix.lock.0123456789abcdef.tmp', 'shop.db.datafix.lock.takeover']);
  });
});

describe('datafix unlock (TargetLock.clear)', () => {
  it('clears a stale lock; says none when there is none; refuses a lock it cannot judge stale without --force (DF712)', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    expect(TargetLock.clear(target, undefined, false)).toBe('none');
    writeLease(file, lease());
    expect(TargetLock.clear(target, undefined, false)).toBe('cleared');
    expect(lockLeftovers(dir.path)).toEqual([]);

    const notStale = 'Use --force only if you are sure no run is active';
    const cases: [Lease | string, string][] = [
      [lease({ pid: process.pid }), `the lock is not stale: process ${process.pid} is still running. ${notStale}`],
      [lease({ host: 'build-7' }), `the lock is not stale: it was taken on build-7, which this machine cannot check. ${notStale}`],
      [
        lease({ pidNamespace: 'pid:[1]' }),
        `the lock is not stale: it was taken by process ${DEAD_PID} in another pid namespace (pid:[1], a container sharing this host name), which this process cannot check. ${notStale}`,
      ],
      ['', `the lock is not stale: its lock file cannot be read. ${notStale}`],
    ];
    for (const [l, message] of cases) {
      writeLease(file, l);
      expect(codeAndMessage(refusal(() => TargetLock.clear(target, undefined, false)))).toEqual(['DF712', message]);
      expect(readFileSync(file, 'utf8')).toBe(typeof l === 'string' ? l : JSON.stringify(l));
      expect(TargetLock.clear(target, undefined, true)).toBe('cleared');
      expect(existsSync(file)).toBe(false);
    }
  });

  it('--force also removes a takeover marker; without it a live marker refuses (DF714); a segment lock is cleared alone', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    const file = lockFile(target);
    const marker = JSON.stringify({ pid: process.pid, host: HOST, at: '2030-01-01T00:00:00.000Z' });
    writeLease(file, lease());
    writeFileSync(`${file}.takeover`, marker);
    expect(refusal(() => TargetLock.clear(target, undefined, false)).code).toBe('DF714');
    expect(existsSync(file)).toBe(true);
    expect(TargetLock.clear(target, undefined, true)).toBe('cleared');
    expect(lockLeftovers(dir.path)).toEqual([]);
    // A marker alone, with no lock: --force still removes it.
    writeFileSync(`${file}.takeover`, marker);
    expect(TargetLock.clear(target, undefined, true)).toBe('none');
    expect(lockLeftovers(dir.path)).toEqual([]);

    const seg = { index: 1, total: 2 };
    writeLease(lockFile(target, seg), lease({ segment: seg }));
    writeLease(file, lease());
    expect(TargetLock.clear(target, seg, false)).toBe('cleared');
    expect(lockLeftovers(dir.path)).toEqual(['shop.db.datafix.lock']);
  });
});

describe('refusals before a lock file is written', () => {
  it('a SQLite file with a second hard link: DF716 under either name, no lock written', () => {
    const dir = tmp();
    const target = sqliteTarget(dir);
    linkSync(target.path, dir.file('copy.db'));
    for (const path of [target.path, dir.file('copy.db')]) {
      const err = refusal(() => TargetLock.acquire({ ...target, path }, run));
      expect(err.code).toBe('DF716');
      expect(err.message).toBe(
        `${path} has 2 hard links: a lock next to this name cannot keep out a process writing the file under another name, and SQLite keeps its rollback journal next to the name it opened, so writing under two names can corrupt the database (https://www.sqlite.org/howtocorrupt.html). Nothing was written. Work on a copy, or remove the other links (\`find / -samefile ${path}\`), then run again`,
      );
    }
    expect(lockLeftovers(dir.path)).toEqual([]);
  });

  it('a database not there yet is locked by its name', () => {
    const dir = tmp();
    const target = { backend: 'sqlite' as const, path: dir.file('new.db'), busyTimeoutMs: 1000 };
    const lock = TargetLock.acquire(target, run);
    expect(lock.file).toBe(`${dir.file('new.db')}.datafix.lock`);
    lock.release();
  });

  it('a lock directory that cannot be made, a lock file that cannot be created (DF715)', () => {
    const dir = tmp();
    const blocker = dir.write('not-a-dir', '');
    vi.stubEnv('DATAFIX_LOCK_DIR', join(blocker, 'locks'));
    const err = refusal(() => TargetLock.acquire(dynamoTarget(), run));
    expect(err.code).toBe('DF715');
    expect(err.message).toMatch(new RegExp(`^cannot create the lock directory ${blocker}/locks: ENOTDIR`));

    // A database name as long as a name can be: its lock file's name is too long for the file system.
    const target = sqliteTarget(dir, `${'d'.repeat(250)}.db`);
    const tooLong = refusal(() => TargetLock.acquire(target, run));
    expect(tooLong.code).toBe('DF715');
    expect(tooLong.message).toMatch(
      new RegExp(
        `^cannot create the lock file ${lockFile(target).replace(/\./g, '\\.')}: ENAMETOOLONG.*\\. Check that its directory is writable$`,
      ),
    );
  });
});

describe('segments of a split scan (DynamoDB)', () => {
  it('segments of one split of one fix run side by side; another split, another fix or the whole table is refused (DF710), and each refusal leaves no file', () => {
    const dir = tmp();
    vi.stubEnv('DATAFIX_LOCK_DIR', dir.path);
    const target = dynamoTarget();
    const seg0 = TargetLock.acquire(target, { ...run, segment: { index: 0, total: 2 } });
    expect(seg0.lease.segment).toEqual({ index: 0, total: 2 });
    expect(seg0.file).toBe(lockFile(target, { index: 0, total: 2 }));
    const seg1 = TargetLock.acquire(target, { ...run, segment: { index: 1, total: 2 } });
    const held = lockLeftovers(dir.path).sort();
    expect(held).toHaveLength(2);
    // The lock of another table is no conflict.
    TargetLock.acquire(dynamoTarget('other'), run).release();

    // Either segment's lock is named, whichever is found first.
    const hint = /`datafix unlock \/fixes\/sync\.yaml --segment [01] --total-segments 2`$/;
    for (const request of [
      run,
      { ...run, segment: { index: 0, total: 4 } },
      { ...run, segment: { index: 1, total: 4 } },
      { ...run, fix: 'other-fix', segment: { index: 1, total: 2 } },
    ]) {
      const err = refusal(() => TargetLock.acquire(target, request));
      expect(err.code, JSON.stringify(request)).toBe('DF710');
      expect(err.message).toContain(`another process is writing dynamodb media (http://127.0.0.1:8000): process ${process.pid}`);
      expect(err.message).toMatch(hint);
      expect(lockLeftovers(dir.path).sort()).toEqual(held);
    }
    seg1.release();
    // Segment 1 of the same split, for another fix: not one split, so refused.
    expect(refusal(() => TargetLock.acquire(target, { ...run, fix: 'other-fix', segment: { index: 1, total: 2 } })).code).toBe('DF710');
    expect(lockLeftovers(dir.path)).toEqual([seg0.file.slice(dir.path.length + 1)]);
    seg0.release();

    // A whole-table lock excludes every segment.
    const whole = TargetLock.acquire(target, run);
    expect(refusal(() => TargetLock.acquire(target, { ...run, segment: { index: 0, total: 2 } })).message).toContain(
      '`datafix unlock /fixes/sync.yaml`',
    );
    whole.release();
    expect(lockLeftovers(dir.path)).toEqual([]);
  });

  it('a stale segment lock of another split refuses as stale (DF711); an unreadable one as held', () => {
    const dir = tmp();
    vi.stubEnv('DATAFIX_LOCK_DIR', dir.path);
    const target = dynamoTarget();
    writeLease(lockFile(target, { index: 0, total: 4 }), lease({ segment: { index: 0, total: 4 } }));
    const err = refusal(() => TargetLock.acquire(target, { ...run, segment: { index: 0, total: 2 } }));
    expect(err.code).toBe('DF711');
    expect(err.message).toContain('`datafix unlock /fixes/sync.yaml --segment 0 --total-segments 4` to start over');
    expect(lockLeftovers(dir.path)).toEqual([`${lockFile(target, { index: 0, total: 4 }).slice(dir.path.length + 1)}`]);

    writeLease(lockFile(target, { index: 0, total: 4 }), '');
    const unreadable = refusal(() => TargetLock.acquire(target, { ...run, segment: { index: 1, total: 4 } }));
    expect(unreadable.code).toBe('DF710');
    expect(unreadable.message).toContain('a process whose lock file cannot be read (it may be writing it right now)');
  });
});
