/**
 * Resume continues exactly one run, on exactly the data it wrote: the state file, the journal it
 * names and the checkpoint in the target must all belong to that run. A journal of another run
 * (or another fix) is refused before anything is appended to it; a checkpoint left by an older
 * run is superseded; a database replaced by a restored copy is refused (exit 2) instead of
 * resumed from a position it never reached.
 */
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  committedPages,
  createGeneratedVeo3Db,
  dumpSqlite,
  generationIds,
  journalResults,
  journalWrites,
  jsonLines,
  jsonSummary,
  killLeftoverProcesses,
  onlyState,
  perRecordJournalLines,
  sealedJournalText,
  show,
  sleep,
  sqliteAll,
  sqliteExec,
  startCli,
  syncSpecWithBusyTimeout,
  tableNames,
  waitFor,
  whileWriteLocked,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

const ROWS = 1200; // six pages of 200

/** Restores a database file from a backup as an operator would: the file and no rollback journal. */
function restore(backup: string, db: string): void {
  copyFileSync(backup, db);
  rmSync(`${db}-journal`, { force: true });
}

/**
 * A consistent copy of a database a live run is writing (`VACUUM INTO` reads one snapshot),
 * retried while the run holds the write lock at that moment.
 */
async function consistentCopy(db: string, to: string, writer: { kill(signal: NodeJS.Signals): boolean }): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    writer.kill('SIGSTOP');
    rmSync(to, { force: true });
    const reader = new Database(db, { readonly: true, timeout: 0 });
    try {
      reader.prepare('VACUUM INTO ?').run(to);
      return;
    } catch (err) {
      if (attempt > 200 || !String((err as { code?: string }).code).startsWith('SQLITE_BUSY')) throw err;
    } finally {
      reader.close();
      writer.kill('SIGCONT');
    }
    await sleep(2);
  }
}

describe('resume on SQLite checks the run it continues', () => {
  let template: string;
  let expected: Map<string, string | null>;
  /** Rows the sync fix updates. */
  let updatable: string[];
  let templateDump: ReturnType<typeof dumpSqlite>;
  /** Rows the sync fix's source reads: raw_response set, media_generation_id still NULL. */
  let sourceRows: number;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected, updatable } = createGeneratedVeo3Db(template, ROWS));
    templateDump = dumpSqlite(template);
    const [n] = sqliteAll<{ n: number }>(
      template,
      'SELECT count(*) AS n FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL',
    );
    sourceRows = n?.n ?? -1;
  });

  function copy() {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    const spec = syncSpecWithBusyTimeout(dir, 100);
    return { dir, db, spec, env: { VEO3_DB_PATH: db } };
  }

  /** Starts a live run and SIGKILLs it once its state file shows a page done. */
  async function killAfterFirstPage(dir: string, spec: string, env: Record<string, string>) {
    const victim = startCli(['run', spec], { cwd: dir, env });
    // Its own state: an earlier, finished run of the same fix in `dir` has one under the same key.
    await waitFor(
      'the first checkpoint',
      () => {
        const s = onlyState(dir);
        return s?.status === 'running' && s.pages >= 1;
      },
      { timeoutMs: 30_000, intervalMs: 5 },
    );
    victim.child.kill('SIGKILL');
    expect((await victim.done).code).toBe(137);
    const state = onlyState(dir);
    if (!state) throw new Error('the killed run left no state file');
    return state;
  }

  function expectEveryRowFixed(db: string): void {
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
    expect(tableNames(db)).not.toContain('_datafix_checkpoints');
  }

  it('--resume refuses (exit 2, DF725) a state file naming a journal of another run or another fix, and appends nothing to it', async () => {
    const { dir, db, spec, env } = copy();
    // Two finished runs whose journals are not the interrupted run's: an earlier run of the same
    // fix on the same database (only the run id differs), and a run of another fix on it.
    const earlier = await runCli(['run', spec, '--limit', '3', '--json'], { cwd: dir.path, env });
    expect(earlier.code, show(earlier)).toBe(0);
    const earlierJournal = onlyState(dir.path)?.journal as string;
    const otherDir = tmp();
    const otherSpec = otherDir.write('other.yaml', readFileSync(spec, 'utf8').replace(/^name: .*$/m, 'name: other-fix'));
    const other = await runCli(['run', otherSpec, '--limit', '3', '--json'], { cwd: otherDir.path, env });
    expect(other.code, show(other)).toBe(0);
    const otherJournal = onlyState(otherDir.path)?.journal as string;

    const state = await killAfterFirstPage(dir.path, spec, env);
    const afterKill = dumpSqlite(db);
    const { file, ...rest } = state;
    for (const [foreign, why] of [
      [earlierJournal, 'run '],
      [otherJournal, 'fix other-fix, not sync-media-generation-ids'],
    ] as const) {
      const foreignBefore = readFileSync(foreign, 'utf8');
      writeFileSync(file, JSON.stringify({ ...rest, journal: foreign }));
      const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain(`error DF725: the journal ${foreign} named by the interrupted run's state does not belong to it (`);
      expect(r.stderr).toContain(why);
      expect(r.stderr).toContain('nothing was appended to it. Run without --resume to start over');
      expect(readFileSync(foreign, 'utf8')).toBe(foreignBefore);
      expect(dumpSqlite(db)).toEqual(afterKill);
    }

    // With its own journal back, the same state resumes and finishes the run.
    writeFileSync(file, JSON.stringify(rest));
    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    expectEveryRowFixed(db);
  });

  it('kill, undo, unlock, a fresh run stopped before its first commit, --resume: starts from the first page and fixes every row', async () => {
    const { dir, db, spec, env } = copy();
    const killed = await killAfterFirstPage(dir.path, spec, env);
    // The killed run committed its checkpoint in the database.
    expect(tableNames(db)).toContain('_datafix_checkpoints');

    const [oldCheckpoint] = sqliteAll<{ id: string; cursor: string; updated_at: string }>(db, 'SELECT * FROM _datafix_checkpoints');
    const undo = await runCli(['undo', killed.journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(dumpSqlite(db).rows.veo3_video_generations).toEqual(templateDump.rows.veo3_video_generations);
    // Undo removed the old run's checkpoint row; an older datafix left it, so it is put back:
    // a new run must still never continue from another run's position.
    expect(tableNames(db)).not.toContain('_datafix_checkpoints');
    sqliteExec(db, 'CREATE TABLE _datafix_checkpoints (id TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_at TEXT NOT NULL)');
    sqliteExec(
      db,
      'INSERT INTO _datafix_checkpoints VALUES (?, ?, ?)',
      oldCheckpoint?.id,
      oldCheckpoint?.cursor,
      oldCheckpoint?.updated_at,
    );
    const unlock = await runCli(['unlock', spec], { cwd: dir.path, env });
    expect(unlock.code, show(unlock)).toBe(0);

    // A fresh run that stops before it commits anything (the database is write-locked).
    const fresh = await whileWriteLocked(db, () => runCli(['run', spec, '--json'], { cwd: dir.path, env }));
    expect(fresh.code, show(fresh)).toBe(2);
    expect(fresh.stderr).toContain('error DF411');

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    // Every source row is read again: nothing of the fresh run was done, the old run was undone.
    expect(jsonSummary(resumed).total).toBe(sourceRows);
    expectEveryRowFixed(db);
  });

  it.each([
    ['the run’s directory', false, false],
    ['another directory', true, false],
    ['another directory, of a copy of the journal', true, true],
  ])('after undo from %s, --resume of the undone run exits 2 (DF721): there is nothing to resume', async (_where, elsewhere, copied) => {
    const { dir, db, spec, env } = copy();
    const killed = await killAfterFirstPage(dir.path, spec, env);
    const other = tmp();
    const journal = copied ? other.file('copy.journal.jsonl') : killed.journal;
    if (copied) copyFileSync(killed.journal, journal);
    const undo = await runCli(['undo', journal, '--json'], { cwd: elsewhere ? other.path : dir.path });
    expect(undo.code, show(undo)).toBe(0);
    const undone = dumpSqlite(db);
    // Table for table as before the run: the undone run's checkpoint table is gone too.
    expect(undone).toEqual(templateDump);

    const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(
      `error DF721: there is no interrupted run of sync-media-generation-ids on this target to resume (the last one was undone from ${killed.journal}); run without --resume`,
    );
    expect(dumpSqlite(db)).toEqual(undone);
  });

  it('a journal in the format before batched lines (4: a line per write and per outcome), resumed: the run goes on in that format, and undo restores the database as it was', async () => {
    const { dir, db, spec, env } = copy();
    const killed = await killAfterFirstPage(dir.path, spec, env);
    // The journal as datafix wrote it before format 5, with its checksums.
    const old = perRecordJournalLines(jsonLines(killed.journal, { completeOnly: true })).map((l) =>
      l.type === 'header' ? { ...l, format: 4 } : l,
    );
    writeFileSync(killed.journal, sealedJournalText(old));
    const r = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(r.code, show(r)).toBe(0);
    expectEveryRowFixed(db);
    // Appended in the journal's own format: no batch lines after per-record ones.
    const types = new Set(jsonLines(killed.journal).map((l) => l.type));
    expect(types).toEqual(new Set(['header', 'write', 'result', 'resume', 'end']));
    // Every updatable row journaled, and applied at most once. A page the kill cut off after
    // journaling it but before its commit is journaled again by the resume, so writes are counted
    // by key; one it cut off after its commit but before its outcomes were journaled (more likely
    // where pages overlap) has no outcome lines, and undo checks those rows against the database.
    const applied = journalResults(killed.journal).filter((r) => r.status === 'applied');
    expect(applied.length).toBeLessThanOrEqual(updatable.length);
    expect(new Set(applied.map((r) => r.seq)).size).toBe(applied.length);
    expect(new Set(journalWrites(killed.journal).map((w) => JSON.stringify(w.key))).size).toBe(updatable.length);
    const undo = await runCli(['undo', killed.journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: updatable.length, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db)).toEqual(templateDump);
  });

  it('a journal cut short at a line boundary: --resume exits 2 (DF728) and leaves the journal and the database as they were', async () => {
    const { dir, db, spec, env } = copy();
    const killed = await killAfterFirstPage(dir.path, spec, env);
    const recorded = (onlyState(dir.path) as { journalSeq?: number }).journalSeq ?? 0;
    expect(recorded).toBeGreaterThan(0);
    // Whole lines go from the end until the last batch of writes left ends before the recorded one.
    const lines = readFileSync(killed.journal, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    /** The last write a line holds: a batch's writes are numbered on from its seq. */
    const lastSeqOf = (l: string) => {
      const line = JSON.parse(l) as { type: string; seq?: number; count?: number };
      return line.type === 'writes' ? (line.seq as number) + (line.count as number) - 1 : 0;
    };
    let keep = lines.length;
    while (keep > 1 && lines.slice(0, keep).some((l) => lastSeqOf(l) >= recorded)) keep--;
    const held = Math.max(...lines.slice(0, keep).map(lastSeqOf));
    expect(held).toBeLessThan(recorded);
    writeFileSync(killed.journal, `${lines.slice(0, keep).join('\n')}\n`);
    const cut = readFileSync(killed.journal, 'utf8');
    const beforeResume = dumpSqlite(db);
    const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(
      `error DF728: the journal ${killed.journal} holds writes up to ${held}, but the interrupted run had journaled ${recorded} by its last checkpoint`,
    );
    expect(readFileSync(killed.journal, 'utf8')).toBe(cut);
    expect(dumpSqlite(db)).toEqual(beforeResume);
  });

  it('a resumed run remembers the targets the killed one updated: a later record of the same target is duplicate_target', async () => {
    const dir = tmp();
    const db = dir.file('shop.db');
    const w = new Database(db);
    w.exec(
      'CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, n INTEGER); CREATE TABLE users (id INTEGER PRIMARY KEY, last_order INTEGER)',
    );
    const order = w.prepare('INSERT INTO orders VALUES (?, ?, ?)');
    const user = w.prepare('INSERT INTO users VALUES (?, NULL)');
    // Order 1 and the last order both update user 1; every other order its own user.
    for (let i = 1; i <= 1200; i++) order.run(i, i === 1200 ? 1 : i, i);
    for (let i = 1; i < 1200; i++) user.run(i);
    w.close();
    const spec = dir.write(
      'last-order.yaml',
      `name: last-order\ntarget:\n  sqlite: { path: "${db}" }\nsource: { as: ord, table: orders, pageSize: 100 }\nupdate:\n  table: users\n  key: { id: "{{ ord.user_id }}" }\n  set: { last_order: "{{ ord.n }}" }\n  overwrite: true\n`,
    );
    await killAfterFirstPage(dir.path, spec, {});
    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(jsonSummary(resumed).reasons).toMatchObject({ duplicate_target: 1 });
    expect(sqliteAll<{ last_order: number }>(db, 'SELECT last_order FROM users WHERE id = 1')).toEqual([{ last_order: 1 }]);
  });

  it('the database replaced by a restored copy: --resume exits 2 (DF726) and writes nothing; a fresh run then fixes every row', async () => {
    const { dir, db, spec, env } = copy();
    const killed = await killAfterFirstPage(dir.path, spec, env);
    expect(killed.pages).toBeGreaterThanOrEqual(1);
    // Restored from the backup taken before the run.
    restore(template, db);

    const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF726: sqlite ${db} does not hold the checkpoint this run committed to it (`);
    expect(r.stderr).toContain('the database was replaced or restored, or another run started over on it');
    expect(r.stderr).toContain('Run without --resume to start over');
    expect(dumpSqlite(db)).toEqual(templateDump);

    const fresh = await runCli(['run', spec, '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(fresh.code, show(fresh)).toBe(0);
    expect(jsonSummary(fresh).total).toBe(sourceRows);
    expectEveryRowFixed(db);
  });

  it('the database restored from a copy taken mid-run (an older checkpoint of the same run): --resume exits 2 (DF726)', async () => {
    const { dir, db, spec, env } = copy();
    const victim = startCli(['run', spec], { cwd: dir.path, env });
    await waitFor('the first checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
    const backup = dir.file('backup.db');
    await consistentCopy(db, backup, victim.child);
    const [row] = sqliteAll<{ cursor: string }>(backup, 'SELECT cursor FROM _datafix_checkpoints');
    const backupPages = (JSON.parse((row as { cursor: string }).cursor) as { pages: number }).pages;
    // Stopped (Ctrl-C) once the database holds a later checkpoint: the state then records every
    // page the run committed (a crash could leave it up to a second behind the database).
    await waitFor('a later checkpoint', () => committedPages(db) > backupPages, { timeoutMs: 30_000, intervalMs: 2 });
    victim.child.kill('SIGINT');
    expect((await victim.done).code).toBe(130);
    expect(onlyState(dir.path)?.committedPages).toBeGreaterThan(backupPages);
    restore(backup, db);
    const restored = dumpSqlite(db);

    const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF726: sqlite ${db} does not hold the checkpoint this run committed to it (`);
    expect(r.stderr).toContain(`it holds an older one (${backupPages} page(s)), so the database was restored from a copy`);
    expect(dumpSqlite(db)).toEqual(restored);
  });
});
