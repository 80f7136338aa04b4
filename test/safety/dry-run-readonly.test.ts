/**
 * A dry run opens a SQLite database read-only, so it cannot change the file even as a side
 * effect. The side effect that shows it: a database in WAL mode whose last writer died before
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

describe('dry run on SQLite', () => {
  it('leaves the database file and its pending WAL byte for byte as they were', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    createGeneratedVeo3Db(db, 300);
    sqliteExec(db, 'PRAGMA journal_mode = WAL');
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

    const r = await runCli(['run', SYNC_FIX, '--dry-run', '--json'], { cwd: dir.path, env: { VEO3_DB_PATH: db } });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ dryRun: true, failed: 0 });

    expect(readFileSync(db).equals(mainBefore), 'the database file changed').toBe(true);
    expect(existsSync(`${db}-wal`), 'the WAL was folded in and deleted').toBe(true);
    expect(statSync(`${db}-wal`).size).toBe(walBefore.length);
  });
});
