/**
 * A dry run (`run`, `apply` and `undo` with `--dry-run`) and `plan` open a SQLite database
 * read-only, so they cannot change the file even as a side effect. The side effect that shows it: a database in WAL mode whose last writer died before
 * checkpointing keeps its changes in `<db>-wal`; a read-write connection that closes last folds
 * them into the database file and deletes the WAL, a read-only one leaves both as they are.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createGeneratedVeo3Db, jsonSummary, killLeftoverProcesses, SYNC_FIX, show, sqliteExec, startProcess } from './support.js';

const tmp = useTempDirs();
killLeftoverProcesses();

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

/** A command that must not change the database, and what it needs made before the WAL is left behind. */
interface ReadOnlyCase {
  readonly name: string;
  /** Run against the database before the other application's WAL exists (a plan, a live run). */
  readonly prepare?: (cwd: string, env: Record<string, string>) => Promise<void>;
  readonly argv: readonly string[];
  /**
   * Exit code and summary, given `n` rows the fix updates on the database as generated. The other
   * application's change (row gen-000007 given an id) is in the WAL only: a command that reads
   * the WAL sees that row as no longer to update, drifted, or changed since the run.
   */
  readonly expected: (n: number) => { code: number; summary: Record<string, unknown> };
}

const CASES: readonly ReadOnlyCase[] = [
  {
    name: 'run --dry-run',
    argv: ['run', SYNC_FIX, '--dry-run', '--json'],
    expected: (n) => ({ code: 0, summary: { dryRun: true, updated: n - 1, failed: 0 } }),
  },
  {
    name: 'plan',
    argv: ['plan', SYNC_FIX, '--out', 'plan.jsonl', '--json'],
    expected: (n) => ({ code: 0, summary: { dryRun: true, updated: n - 1, failed: 0 } }),
  },
  {
    name: 'apply --dry-run',
    prepare: async (cwd, env) => {
      const r = await runCli(['plan', SYNC_FIX, '--out', 'plan.jsonl', '--json'], { cwd, env });
      expect(r.code, show(r)).toBe(0);
    },
    argv: ['apply', 'plan.jsonl', '--dry-run', '--json'],
    expected: (n) => ({ code: 1, summary: { dryRun: true, total: n, applied: n - 1, drifted: 1, failed: 0 } }),
  },
  {
    name: 'undo --dry-run',
    prepare: async (cwd, env) => {
      const r = await runCli(['run', SYNC_FIX, '--journal', 'run.journal.jsonl', '--json'], { cwd, env });
      expect(r.code, show(r)).toBe(0);
    },
    argv: ['undo', 'run.journal.jsonl', '--dry-run', '--json'],
    expected: (n) => ({ code: 1, summary: { dryRun: true, total: n, restored: n - 1, conflicts: 1, failed: 0 } }),
  },
];

describe('commands that write nothing open SQLite read-only', () => {
  it.each(CASES)('$name leaves the database file and its pending WAL byte for byte as they were', async ({ prepare, argv, expected }) => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    const env = { VEO3_DB_PATH: db };
    const { updatable } = createGeneratedVeo3Db(db, 300);
    expect(updatable).toContain('gen-000007');
    sqliteExec(db, 'PRAGMA journal_mode = WAL');
    await prepare?.(dir.path, env);
    // Another application writes one row and dies before any checkpoint: its change is in the WAL.
    const app = startProcess(
      process.execPath,
      [
        '-e',
        `const Database = require(${JSON.stringify(BETTER_SQLITE3)});
         const db = new Database(${JSON.stringify(db)});
         db.pragma('wal_autocheckpoint = 0');
         db.prepare("UPDATE veo3_video_generations SET media_generation_id = 'APP-7' WHERE id = 'gen-000007'").run();
         process.kill(process.pid, 'SIGKILL');`,
      ],
      { cwd: dir.path },
    );
    expect((await app.done).code).toBe(137);
    const mainBefore = readFileSync(db);
    const walBefore = readFileSync(`${db}-wal`);
    expect(walBefore.length).toBeGreaterThan(0);

    const r = await runCli(argv, { cwd: dir.path, env });
    const { code, summary } = expected(updatable.length);
    expect(r.code, show(r)).toBe(code);
    expect(jsonSummary(r)).toMatchObject(summary);

    expect(readFileSync(db).equals(mainBefore), 'the database file changed').toBe(true);
    expect(existsSync(`${db}-wal`), 'the WAL was folded in and deleted').toBe(true);
    expect(statSync(`${db}-wal`).size).toBe(walBefore.length);
  });
});
