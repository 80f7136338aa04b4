/**
 * Acceptance 2 and 3: a live run killed with SIGKILL part-way, or stopped with Ctrl-C (SIGINT),
 * is finished by `datafix run SPEC --resume`, and the data ends exactly as the test data says a
 * finished run leaves it (written by the data generators, not taken from a run). The resumed run continues from the checkpoint (it does not re-read the pages
 * already done), refuses when the spec changed since, and there must be something to resume.
 */
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliResult } from '../helpers/cli.js';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, rawClient, seedItems, startDynalite } from '../helpers/dynalite.js';
import { expectOracleState, scanAll } from '../helpers/i2v-oracle.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dumpSqlite,
  dynamoEnv,
  generationIds,
  i2vSpecWithPageSize,
  jsonLines,
  jsonSummary,
  killLeftoverProcesses,
  lockFiles,
  onlyState,
  pkOf,
  type RawItem,
  SYNC_FIX,
  scanRaw,
  seededTables,
  show,
  sqliteAll,
  startCli,
  syncSpecWithBusyTimeout,
  tableNames,
  videoDataset,
  waitFor,
  whileWriteLocked,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

/** Waits until the run's state file says at least one page is done. */
async function afterFirstPage(dir: string): Promise<void> {
  await waitFor('the first checkpoint', () => (onlyState(dir)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
}

// --- DynamoDB ----------------------------------------------------------------------------------

describe('resume on DynamoDB (fixes/i2v-thumbnails.yaml behind a slow endpoint)', () => {
  const VIDEOS = 250; // five query pages of 50
  let dynamo: RunningDynalite;
  let slow: CountingProxy;
  let fast: CountingProxy;
  let data: ReturnType<typeof videoDataset>;
  let seeded: RawItem[];
  /** Queries a whole run sends: one a page of 50, and one more after the last full page, which answers with a LastEvaluatedKey. */
  const QUERIES = VIDEOS / 50 + 1;
  /** The shipped fix reading 50 videos a page. */
  let spec: string;

  beforeAll(async () => {
    dynamo = await startDynalite();
    slow = await startCountingProxy(dynamo.endpoint, { latencyMs: 15 });
    fast = await startCountingProxy(dynamo.endpoint);
    data = videoDataset(VIDEOS);
    spec = i2vSpecWithPageSize(shared(), 50);
    seeded = await scanRaw(dynamo.endpoint, await freshTable());
  });
  afterAll(async () => {
    await slow?.stop();
    await fast?.stop();
    await dynamo?.stop();
  });

  const freshTable = seededTables(
    () => dynamo.endpoint,
    () => data.items,
    'media-resume',
  );

  /**
   * Every item is as the fix's rules (the test oracle) say, the killed or stopped process and the
   * resumed one each stamping its own updatedAt, and exactly the videos the data marks as
   * updatable were updated.
   */
  async function expectFixed(table: string): Promise<void> {
    expect(expectOracleState(data.items, await scanAll(dynamo.endpoint, table), { runs: 2 })).toBe(data.updatable.length);
  }

  /** A fresh table, and a live run on it through the slow endpoint SIGKILLed after its first page. */
  async function killedRun(): Promise<{ table: string; dir: ReturnType<typeof tmp>; env: Record<string, string | undefined> }> {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, slow.endpoint);
    const victim = startCli(['run', spec], { cwd: dir.path, env });
    await afterFirstPage(dir.path);
    victim.child.kill('SIGKILL');
    const killed = await victim.done;
    expect(killed.code, show(killed)).toBe(137);
    return { table, dir, env };
  }

  it('kill -9 part-way, then --resume: every item ends as the fix’s rules say, without re-querying the pages already done', async () => {
    const { table, dir, env } = await killedRun();

    const state = onlyState(dir.path);
    expect(state).toMatchObject({ fix: 'i2v-thumbnails', status: 'running' });
    const done = state?.pages ?? 0;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(done).toBeLessThan(VIDEOS / 50);
    // The run died holding its lock.
    expect(lockFiles(dir.path)).toHaveLength(1);

    slow.reset();
    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(resumed.stderr).toContain(`resuming after ${state?.records} record(s) in ${done} page(s)`);
    // The resumed run read only what the killed one had not checkpointed.
    expect(slow.counts().Query ?? 0).toBe(QUERIES - done);
    expect(jsonSummary(resumed).total).toBe(VIDEOS - (state?.records ?? 0));

    await expectFixed(table);
    expect(onlyState(dir.path)?.status).toBe('done');
    expect(lockFiles(dir.path)).toEqual([]);

    // One journal covers both processes: undo puts every item back as seeded, including the
    // writes the killed process sent but never recorded an outcome for.
    const journal = state?.journal as string;
    expect(jsonLines(journal).filter((l) => l.type === 'resume')).toHaveLength(1);
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: data.updatable.length, conflicts: 0, failed: 0 });
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(seeded);
  });

  it('the table deleted and created again (as a restore from a backup does) between kill and --resume: exit 2 (DF726), nothing written', async () => {
    const { table, dir, env } = await killedRun();
    // The same name, the same items as seeded: another table all the same.
    const client = rawClient(dynamo.endpoint);
    try {
      await client.send(new DeleteTableCommand({ TableName: table }));
    } finally {
      client.destroy();
    }
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(dynamo.endpoint, table, data.items);
    const restored = await scanRaw(dynamo.endpoint, table);
    const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF726: dynamodb ${table}`);
    expect(r.stderr).toContain('is not the table the interrupted run wrote');
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(restored);
  });

  it('Ctrl-C part-way exits 130 with the --resume hint; --resume then completes the fix', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, slow.endpoint);
    const victim = startCli(['run', spec], { cwd: dir.path, env });
    await afterFirstPage(dir.path);
    victim.child.kill('SIGINT');
    const stopped = await victim.done;
    expect(stopped.code, show(stopped)).toBe(130);
    expect(stopped.stderr).toContain(`interrupted: the checkpoint is saved. Continue with: datafix run ${spec} --resume`);
    const state = onlyState(dir.path);
    expect(state?.status).toBe('interrupted');
    expect(state?.pages).toBeGreaterThanOrEqual(1);
    // A clean stop releases the lock.
    expect(lockFiles(dir.path)).toEqual([]);
    // Part-way: some of the videos to fix are done, some are not yet.
    const midway = new Map((await scanRaw(dynamo.endpoint, table)).map((i) => [pkOf(i), i.updatedAt?.S]));
    const seededAt = new Map(seeded.map((i) => [pkOf(i), i.updatedAt?.S]));
    const notYet = data.updatable.filter((pk) => midway.get(pk) === seededAt.get(pk));
    expect(notYet.length).toBeGreaterThan(0);
    expect(notYet.length).toBeLessThan(data.updatable.length);

    slow.reset();
    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(slow.counts().Query ?? 0).toBe(QUERIES - (state?.pages ?? 0));
    await expectFixed(table);
    expect(onlyState(dir.path)?.status).toBe('done');
  });
});

// --- SQLite ------------------------------------------------------------------------------------

describe('resume on SQLite (fixes/sync-media-generation-ids.yaml, pages of 200 rows)', () => {
  const ROWS = 1200; // six pages of 200: enough to stop part-way, small enough for a slow CI machine
  let template: string;
  /** The id each row must end with, and the rows the fix updates, as the data generator wrote them. */
  let expected: Map<string, string | null>;
  let updatable: string[];
  /** The rows the fix reads (its `where`: a raw_response and no id yet), in id order, counted by SQL on the data. */
  let readable: string[];
  let seededIds: Map<string, { mgid: string | null; updatedAt: string | null }>;
  let templateDump: ReturnType<typeof dumpSqlite>;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected, updatable } = createGeneratedVeo3Db(template, ROWS));
    templateDump = dumpSqlite(template);
    seededIds = generationIds(template);
    readable = sqliteAll<{ id: string }>(
      template,
      'SELECT id FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL ORDER BY id',
    ).map((r) => r.id);
  });

  /** Rows whose updated_at the run changed. */
  const touched = (db: string) =>
    [...generationIds(db)].filter(([id, v]) => v.updatedAt !== seededIds.get(id)?.updatedAt).map(([id]) => id);

  /** Every row holds the id the data generator says; exactly the updatable rows were written. */
  function expectFixed(db: string): void {
    const ids = generationIds(db);
    expect(ids.size).toBe(ROWS);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
    expect(touched(db).sort()).toEqual([...updatable].sort());
    expect(tableNames(db)).not.toContain('_datafix_checkpoints');
  }

  function copy(): { dir: ReturnType<typeof tmp>; db: string; spec: string; env: Record<string, string> } {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    // A private copy of the shipped spec, so that it can be edited.
    const spec = dir.write('sync.yaml', readFileSync(SYNC_FIX, 'utf8'));
    return { dir, db, spec, env: { VEO3_DB_PATH: db } };
  }

  it('kill -9 after a page, then --resume (refused while the spec differs): every row ends fixed, checkpoint table gone', async () => {
    const { dir, db, spec, env } = copy();
    const victim = startCli(['run', spec], { cwd: dir.path, env });
    await afterFirstPage(dir.path);
    victim.child.kill('SIGKILL');
    expect((await victim.done).code).toBe(137);
    const state = onlyState(dir.path);
    expect(state).toMatchObject({ status: 'running' });
    expect(state?.pages).toBeGreaterThanOrEqual(1);
    // The position is kept inside the database, committed with each page's writes; the state
    // file follows it at most once a second, so it may be behind.
    expect(tableNames(db)).toContain('_datafix_checkpoints');
    const [row] = sqliteAll<{ cursor: string }>(db, 'SELECT cursor FROM _datafix_checkpoints');
    const committed = JSON.parse(row?.cursor ?? '{}') as { pages: number; records: number };
    expect(committed.pages).toBeGreaterThanOrEqual(state?.pages ?? 1);
    expect(committed.pages).toBeLessThan(ROWS / 200);

    // The spec changed since: resuming would mix two fixes.
    const original = readFileSync(spec, 'utf8');
    writeFileSync(spec, original.replace('Recover media_generation_id', 'Recover (edited) media_generation_id'));
    const refused = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain(`error DF720: ${spec} changed since the interrupted run`);
    expect(refused.stderr).toContain('Run without --resume to start over');
    writeFileSync(spec, original);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(resumed.stderr).toContain(`resuming after ${committed.records} record(s) in ${committed.pages} page(s)`);
    // It did not re-read the pages already done.
    expect(jsonSummary(resumed).total).toBe(readable.length - committed.records);
    expectFixed(db);
    expect(onlyState(dir.path)?.status).toBe('done');
    expect(lockFiles(dir.path)).toEqual([]);

    // Nothing left to resume now.
    const nothing = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(nothing.code, show(nothing)).toBe(2);
    expect(nothing.stderr).toContain('error DF721: there is no interrupted run of sync-media-generation-ids on this target to resume');

    // The one journal of both processes undoes both: the database is as generated, table for table.
    const undo = await runCli(['undo', state?.journal as string, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ conflicts: 0, failed: 0 });
    expect(dumpSqlite(db)).toEqual(templateDump);
  });

  // better-sqlite3 never yields, so the engine returns to the event loop between pages; only then
  // can the SIGINT listener stop a live SQLite run (Ctrl-C after page 1).
  it('Ctrl-C part-way exits 130 with the --resume hint (with its --env); --resume then completes the fix', async () => {
    const { dir, db, spec } = copy();
    // The settings come from --env, so the hint must carry it to work as printed.
    dir.write('.env.t', `VEO3_DB_PATH=${db}\n`);
    const env = {};
    const victim = startCli(['run', spec, '--env', 't', '--json'], { cwd: dir.path, env });
    await afterFirstPage(dir.path);
    victim.child.kill('SIGINT');
    const stopped: CliResult = await victim.done;
    expect(stopped.code, show(stopped)).toBe(130);
    expect(stopped.stderr).toContain(`interrupted: the checkpoint is saved. Continue with: datafix run ${spec} --env t --resume`);
    const partial = jsonSummary(stopped);
    // The one JSON object says the counts are of a part of the source.
    expect(partial.interrupted).toBe(true);
    expect(partial.total as number).toBeLessThan(readable.length);
    const state = onlyState(dir.path);
    expect(state?.status).toBe('interrupted');
    expect(lockFiles(dir.path)).toEqual([]);

    const resumed = await runCli(['run', spec, '--env', 't', '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(jsonSummary(resumed).interrupted).toBeUndefined();
    // The resumed run names the journal it goes on writing, as the first run did.
    expect(resumed.stderr).toContain(`journal ${state?.journal} (undo with: datafix undo ${state?.journal})`);
    // Across the two processes, every record was read once.
    expect((partial.total as number) + (jsonSummary(resumed).total as number)).toBe(readable.length);
    expect((partial.updated as number) + (jsonSummary(resumed).updated as number)).toBe(updatable.length);
    expectFixed(db);
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)(
    '%s (a scheduler stopping the job, a closed terminal) stops like Ctrl-C: checkpoint saved, lock released, exit 130',
    async (signal) => {
      const { dir, db, spec, env } = copy();
      const victim = startCli(['run', spec, '--json'], { cwd: dir.path, env });
      await afterFirstPage(dir.path);
      victim.child.kill(signal);
      const stopped: CliResult = await victim.done;
      expect(stopped.code, show(stopped)).toBe(130);
      expect(stopped.stderr).toContain(`interrupted: the checkpoint is saved. Continue with: datafix run ${spec} --resume`);
      expect(onlyState(dir.path)?.status).toBe('interrupted');
      expect(lockFiles(dir.path)).toEqual([]);
      const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
      expect(resumed.code, show(resumed)).toBe(0);
      expectFixed(db);
    },
  );

  it("--resume keeps the interrupted run's --limit: exactly the first 700 rows read are fixed; another --limit is DF729", async () => {
    const { dir, db, spec, env } = copy();
    const victim = startCli(['run', spec, '--limit', '700'], { cwd: dir.path, env });
    await afterFirstPage(dir.path);
    victim.child.kill('SIGKILL');
    expect((await victim.done).code).toBe(137);
    const other = await runCli(['run', spec, '--resume', '--limit', '500'], { cwd: dir.path, env });
    expect(other.code, show(other)).toBe(2);
    expect(other.stderr).toContain("error DF729: --limit 500 is not the interrupted run's --limit 700");
    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    // The limit counts records read, in the source's order (by id): the first 700 the fix reads.
    const limited = new Set(readable.slice(0, 700));
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(limited.has(id) ? want : seededIds.get(id)?.mgid);
    expect(touched(db).sort()).toEqual(updatable.filter((id) => limited.has(id)).sort());
  });

  it('a run that stopped on an error (database locked) is resumable, and --resume finishes it', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    const { expected } = createGeneratedVeo3Db(db, 500);
    const spec = syncSpecWithBusyTimeout(dir, 100);
    const env = { VEO3_DB_PATH: db };
    const failed = await whileWriteLocked(db, () => runCli(['run', spec, '--json'], { cwd: dir.path, env }));
    expect(failed.code, show(failed)).toBe(2);
    expect(failed.stderr).toContain('error DF411');
    expect(onlyState(dir.path)?.status).toBe('interrupted');
    expect(lockFiles(dir.path)).toEqual([]);
    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
    expect(tableNames(db)).not.toContain('_datafix_checkpoints');
  });

  // A journal removed by hand after an interrupted run is a usage error naming the journal and
  // what to do (run without --resume), never an internal error with a raw ENOENT.
  it('--resume whose journal was deleted exits 2 with a message naming the journal', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    createGeneratedVeo3Db(db, 100);
    const spec = syncSpecWithBusyTimeout(dir, 100);
    const env = { VEO3_DB_PATH: db };
    await whileWriteLocked(db, () => runCli(['run', spec], { cwd: dir.path, env }));
    const journal = onlyState(dir.path)?.journal as string;
    rmSync(journal);
    const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(r.stderr).not.toContain('internal error');
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(journal);
  });

  it('--resume with nothing to resume exits 2 and writes nothing', async () => {
    const { dir, db, spec, env } = copy();
    const before = dumpSqlite(db);
    const r = await runCli(['run', spec, '--resume'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(
      'error DF721: there is no interrupted run of sync-media-generation-ids on this target to resume; run without --resume',
    );
    expect(dumpSqlite(db)).toEqual(before);
    expect(lockFiles(dir.path)).toEqual([]);
    expect(existsSync(dir.file('.datafix', 'runs'))).toBe(false);

    const dry = await runCli(['run', spec, '--resume', '--dry-run'], { cwd: dir.path, env });
    expect(dry.code, show(dry)).toBe(2);
    expect(dry.stderr).toContain('error DF722: --resume continues a live run; it cannot be combined with --dry-run');
  });

  // The SQLite checkpoint is committed in the same transaction as the page's writes
  // (docs/operations.md): a crash between that commit and the state-file write must resume from
  // the database's position, not re-read a page it says is done.
  it('resumes from the checkpoint committed in the database when the state file lags behind it', async () => {
    const { dir, db, spec, env } = copy();
    const victim = startCli(['run', spec], { cwd: dir.path, env });
    await afterFirstPage(dir.path);
    victim.child.kill('SIGKILL');
    expect((await victim.done).code).toBe(137);
    // Simulate the crash window: the state file still says nothing is done (as right after
    // the first page's commit, before its state write), while the database holds the checkpoint.
    const state = onlyState(dir.path);
    const { file, ...rest } = state as NonNullable<typeof state>;
    writeFileSync(file, JSON.stringify({ ...rest, pages: 0, records: 0, cursor: undefined }));
    const [row] = sqliteAll<{ cursor: string }>(db, 'SELECT cursor FROM _datafix_checkpoints');
    const stored = JSON.parse((row as { cursor: string }).cursor) as unknown;
    const position = (Array.isArray(stored) ? stored : (stored as { cursor: unknown[] }).cursor) as string[];
    const [left] = sqliteAll<{ n: number }>(
      db,
      'SELECT count(*) AS n FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL AND id > ?',
      position[0],
    );

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    expectFixed(db);
    // Only the rows after the database's checkpoint are read, not the skipped rows of done pages.
    expect(jsonSummary(resumed).total).toBe(left?.n);
  });
});
