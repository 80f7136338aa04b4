/**
 * How the SQLite adapter opens a database file, before anything of a run happens: each way it can
 * fail is a DatafixError with its own category, code and full message (a missing file, a
 * directory, a file that is not a database, a damaged one, a lock held past the busy timeout,
 * including the lock of a WAL recovery, and, for a run that writes, a file or directory the user
 * cannot write), and none of them changes the file or leaves a journal beside it.
 *
 * Write access is taken away for real: by the file's mode, and when the tests run as root, whom
 * modes do not stop, also by the immutable attribute (`chattr +i`), which stops root too.
 */
import { type ChildProcessByStdio, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import { DatafixError } from '../../src/errors.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import { createDb, openDb } from './fixtures.js';

const tmp = useTempDirs();

const targetOf = (path: string, busyTimeoutMs = 5000) => ({ backend: 'sqlite' as const, path, busyTimeoutMs });

const ITEMS = "CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO items VALUES (1, NULL), (2, 'kept');";

/** A database of two rows in a fresh temp dir (in `sub` of it when given). */
function newDb(sub?: string): string {
  const dir = tmp();
  if (sub) mkdirSync(dir.file(sub));
  const path = sub ? dir.file(sub, 'd.db') : dir.file('d.db');
  createDb(path, ITEMS);
  return path;
}

/** The DatafixError that opening `path` throws, as what a user reads of it. */
function openError(path: string, options: { readonly?: boolean; busyTimeoutMs?: number } = {}) {
  let thrown: unknown;
  try {
    createSqliteAdapter(targetOf(path, options.busyTimeoutMs), { readonly: options.readonly ?? false });
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(DatafixError);
  const err = thrown as DatafixError;
  return { category: err.category, code: err.code, message: err.message };
}

const asRoot = process.getuid?.() === 0;

/**
 * Takes write access to `path` (a file or a directory) away from the user running the tests, and
 * returns what gives it back (the temp dir can be removed only then).
 */
function denyWrites(path: string): () => void {
  const mode = statSync(path).mode & 0o777;
  chmodSync(path, statSync(path).isDirectory() ? 0o555 : 0o444);
  if (asRoot) execFileSync('chattr', ['+i', path]);
  return () => {
    if (asRoot) execFileSync('chattr', ['-i', path]);
    chmodSync(path, mode);
  };
}

/** The first line a child process prints (it may arrive in several chunks). */
function firstLine(child: ChildProcessByStdio<Writable, Readable, null>): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`exited with ${code} before printing a line: ${out}`)));
  });
}

const NOT_WRITABLE_ADVICE = 'Nothing was written; give the user running datafix write access (or use --dry-run to only look)';

describe('a path that is not a usable database: DF410, a connection error, live and dry run alike', () => {
  it('a missing file: "not found", and no file is created', () => {
    const path = tmp().file('missing.db');
    for (const readonly of [false, true]) {
      expect(openError(path, { readonly })).toEqual({
        category: 'connection',
        code: 'DF410',
        message: `SQLite database not found: ${path}. Check the path in the spec's target (or the environment variable it reads)`,
      });
    }
    expect(existsSync(path)).toBe(false);
  });

  it('a directory: "is not a file"', () => {
    const dir = tmp();
    mkdirSync(dir.file('adir'));
    expect(openError(dir.file('adir'))).toEqual({
      category: 'connection',
      code: 'DF410',
      message: `${dir.file('adir')} is not a file, so it cannot be a SQLite database; give the path of the database file itself`,
    });
  });

  it('a text file: "it is not a SQLite database", and the file is left as it was', () => {
    const path = tmp().write('notes.db', 'just some text, not SQLite\n'.repeat(200));
    const before = sha256File(path);
    for (const readonly of [false, true]) {
      expect(openError(path, { readonly })).toEqual({
        category: 'connection',
        code: 'DF410',
        message: `cannot open SQLite database ${path}: it is not a SQLite database. Check the path in the spec's target`,
      });
    }
    expect(sha256File(path)).toBe(before);
  });

  it('a damaged database (its first page\'s b-tree header overwritten): SQLite\'s own reason, not "not a SQLite database"', () => {
    const path = newDb();
    const bytes = readFileSync(path);
    // Byte 100 is the type of the schema table's root page (13, a table leaf); 0 is no page type.
    expect(bytes[100]).toBe(13);
    bytes[100] = 0;
    writeFileSync(path, bytes);
    for (const readonly of [false, true]) {
      expect(openError(path, { readonly })).toEqual({
        category: 'connection',
        code: 'DF410',
        message: `cannot open SQLite database ${path}: database disk image is malformed. Check the path in the spec's target`,
      });
    }
  });
});

describe('a database another process holds past busyTimeoutMs while it is opened: DF411, retry when it is free', () => {
  const locked = (path: string) => ({
    category: 'connection',
    code: 'DF411',
    message: `${path} is locked by another process and stayed locked for 50 ms; retry when it is free, or raise target.sqlite.busyTimeoutMs`,
  });

  it('held EXCLUSIVE by another connection', () => {
    const path = newDb();
    const holder = openDb(path);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      expect(openError(path, { busyTimeoutMs: 50 })).toEqual(locked(path));
      expect(openError(path, { busyTimeoutMs: 50, readonly: true })).toEqual(locked(path));
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });

  // SQLite's extended code SQLITE_BUSY_RECOVERY: another process holds the WAL's write and
  // recovery locks (it is rebuilding the WAL index after a crash), and the index needs that recovery.
  it('a WAL database another process is recovering (SQLITE_BUSY_RECOVERY)', async () => {
    const path = newDb();
    const wal = openDb(path);
    wal.exec('PRAGMA journal_mode = WAL');
    wal.close();
    // A live connection holds the shared-memory file's DMS lock (byte 128); the recovering one
    // also holds the WAL write lock (120) and the recovery lock (122). The index is all zeros.
    const holder = spawn(
      'python3',
      [
        '-S',
        '-c',
        'import fcntl, os, sys\n' +
          'fd = os.open(sys.argv[1] + "-shm", os.O_RDWR | os.O_CREAT, 0o644)\n' +
          'os.ftruncate(fd, 32768)\n' +
          'fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 128)\n' +
          'fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)\n' +
          'fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 122)\n' +
          'print("held", flush=True)\n' +
          'sys.stdin.read()\n',
        path,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    try {
      expect(await firstLine(holder)).toBe('held');
      expect(openError(path, { busyTimeoutMs: 50 })).toEqual(locked(path));
      expect(openError(path, { busyTimeoutMs: 50, readonly: true })).toEqual(locked(path));
    } finally {
      holder.stdin.end();
      await exited;
    }
  });
});

describe('a live run on a database the user cannot write: DF415, a config error, before anything is written', () => {
  it('a read-only file: "the file is read-only"; nothing is written beside it, and a dry run still reads it', async () => {
    const path = newDb();
    const dir = join(path, '..');
    const before = sha256File(path);
    const giveBack = denyWrites(path);
    try {
      expect(openError(path)).toEqual({
        category: 'config',
        code: 'DF415',
        message: `cannot write to SQLite database ${path}: the file is read-only. ${NOT_WRITABLE_ADVICE}`,
      });
      expect(readdirSync(dir)).toEqual(['d.db']);
      // A dry run opens it read-only, and reads it.
      const dry = createSqliteAdapter(targetOf(path), { readonly: true });
      try {
        expect(await dry.lookup([{ table: 'items', key: { id: 2 }, consistentRead: true }])).toEqual([{ id: 2, note: 'kept' }]);
      } finally {
        await dry.close();
      }
    } finally {
      giveBack();
    }
    expect(sha256File(path)).toBe(before);
    expect(readdirSync(dir)).toEqual(['d.db']);
  });

  it('a writable file in a directory the user cannot write (where SQLite keeps its rollback journal): says so, naming the directory', () => {
    const path = newDb('ro');
    const dir = join(path, '..');
    const before = sha256File(path);
    const giveBack = denyWrites(dir);
    try {
      expect(openError(path)).toEqual({
        category: 'config',
        code: 'DF415',
        message: `cannot write to SQLite database ${path}: its directory ${dir} is not writable, and SQLite keeps its rollback journal there. ${NOT_WRITABLE_ADVICE}`,
      });
    } finally {
      giveBack();
    }
    expect(sha256File(path)).toBe(before);
    expect(readdirSync(dir)).toEqual(['d.db']);
  });
});
