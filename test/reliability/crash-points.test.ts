/**
 * Crashes at random points: a live run is SIGKILLed after a seeded random number of pages, then
 * resumed and killed again further on, then resumed to the end. The data must end exactly as the
 * test data says the fix leaves it (the generator's expected ids; the i2v oracle), the journal
 * must stay valid, and undo of that one journal must restore the data as it was before the first
 * run.
 */
import { copyFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type RunningDynalite, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  committedPages,
  createGeneratedVeo3Db,
  dumpSqlite,
  dynamoEnv,
  generationIds,
  i2vSpecWithPageSize,
  jsonLines,
  jsonSummary,
  killLeftoverProcesses,
  onlyState,
  SYNC_FIX,
  scanRaw,
  seededTables,
  show,
  startCli,
  videoDataset,
  waitFor,
} from '../safety/support.js';
import { expectOracleState, lcg, scanAll } from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

/**
 * Runs the fix live, killing it twice at random page counts (each later than the last, as
 * `pagesDone` reads them), then resumes to the end. Returns the journal path.
 */
async function killTwiceThenFinish(
  spec: string,
  cwd: string,
  env: Record<string, string | undefined>,
  pages: number,
  random: () => number,
  pagesDone: () => number,
): Promise<string> {
  const first = 1 + Math.floor(random() * Math.max(1, pages / 2 - 1));
  const second = first + 1 + Math.floor(random() * Math.max(1, pages / 2 - 1));
  let args = ['run', spec];
  const codes: number[] = [];
  for (const killAt of [first, second]) {
    const victim = startCli(args, { cwd, env });
    const reached = await waitFor(`page ${killAt}`, () => pagesDone() >= killAt || victim.child.exitCode !== null, {
      timeoutMs: 60_000,
      intervalMs: 2,
    });
    expect(reached).toBe(true);
    victim.child.kill('SIGKILL');
    codes.push((await victim.done).code);
    args = ['run', spec, '--resume'];
  }
  // Both kills land mid-run (137 = killed by SIGKILL): the second at least two pages before the
  // end, so the last resume always has pages left to do.
  expect(codes).toEqual([137, 137]);
  const state = onlyState(cwd);
  const done = await runCli([...args, '--json'], { cwd, env, timeoutMs: 120_000 });
  // Every record of the data is fixed or skipped; none fails.
  expect(done.code, show(done)).toBe(0);
  expect(jsonSummary(done)).toMatchObject({ failed: 0 });
  // The journal is valid JSON Lines from end to end, across both kills and both resumes.
  const lines = jsonLines(state?.journal as string);
  expect(lines[0]).toMatchObject({ type: 'header' });
  expect(lines.filter((l) => l.type === 'resume').length).toBe(2);
  return state?.journal as string;
}

describe('SQLite: SIGKILL at random pages, resume, undo', () => {
  const ROWS = 2400; // twelve pages of 200
  let template: string;
  /** The id each row must end with, written by the data generator (its current value where the fix must leave it). */
  let expected: Map<string, string | null>;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected } = createGeneratedVeo3Db(template, ROWS));
  });

  for (const seed of [7, 1234]) {
    it(`seed ${seed}: every row ends with the id its data holds, and undo restores the database table for table`, async () => {
      const dir = tmp();
      const db = dir.file('veo3.db');
      copyFileSync(template, db);
      const before = dumpSqlite(db);
      const journal = await killTwiceThenFinish(SYNC_FIX, dir.path, { VEO3_DB_PATH: db }, ROWS / 200, lcg(seed), () => committedPages(db));
      const ids = generationIds(db);
      expect(ids.size).toBe(ROWS);
      for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
      const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
      expect(undo.code, show(undo)).toBe(0);
      expect(jsonSummary(undo)).toMatchObject({ conflicts: 0, failed: 0 });
      expect(dumpSqlite(db)).toEqual(before);
    });
  }
});

describe('DynamoDB: SIGKILL at random pages, resume, undo', () => {
  const VIDEOS = 200; // four query pages of 50
  let dynamo: RunningDynalite;
  let slow: CountingProxy;
  let data: ReturnType<typeof videoDataset>;
  /** The shipped fix reading 50 videos a page. */
  let spec: string;

  const freshTable = seededTables(
    () => dynamo.endpoint,
    () => data.items,
    'media-crash',
  );

  beforeAll(async () => {
    dynamo = await startDynalite();
    slow = await startCountingProxy(dynamo.endpoint, { latencyMs: 10 });
    data = videoDataset(VIDEOS);
    spec = i2vSpecWithPageSize(shared(), 50);
  });
  afterAll(async () => {
    await slow?.stop();
    await dynamo?.stop();
  });

  it('seed 42: every item ends as the fix’s rules say, and undo restores every item', async () => {
    const dir = tmp();
    const table = await freshTable();
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = await killTwiceThenFinish(
      spec,
      dir.path,
      dynamoEnv(table, slow.endpoint),
      VIDEOS / 50,
      lcg(42),
      () => onlyState(dir.path)?.pages ?? 0,
    );
    // The i2v rules written independently of datafix; each of the three processes stamps its own time.
    const updated = expectOracleState(data.items, await scanAll(dynamo.endpoint, table), { runs: 3 });
    expect(updated).toBe(data.updatable.length);
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path, env: dynamoEnv(table, dynamo.endpoint) });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ conflicts: 0, failed: 0 });
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
  });
});
