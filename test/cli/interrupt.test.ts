/**
 * Ctrl-C in a real terminal (a pseudo-terminal from util-linux `script`), at every moment of a
 * run: part-way through a live run, twice, during start-up, in the preview pass and at the [y/N]
 * question. Each stops where the docs say, with the exit code 130, and leaves the target, the
 * lock, the state and the temp directory as a user expects them.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SAME_STOP_MS } from '../../src/cli/early-stop.js';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { type RunningDynalite, startDynalite } from '../helpers/dynalite.js';
import { expectOracleState, scanAll } from '../helpers/i2v-oracle.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { CTRL_C, ctrlCNothingWritten, HAS_SCRIPT, inTerminal, NO_SCRIPT } from '../helpers/terminal.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dynamoEnv,
  generationIds,
  i2vSpecWithPageSize,
  jsonSummary,
  killLeftoverProcesses,
  lockFiles,
  onlyState,
  type RawItem,
  SYNC_FIX,
  scanRaw,
  seededTables,
  show,
  sleep,
  sqliteAll,
  startCli,
  videoDataset,
  waitFor,
} from '../safety/support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
});

/** A temp directory for the CLI's TMPDIR, to see whether it leaves files there; removed when the test ends. */
function ownTmpdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'datafix-own-tmp-'));
  // Inside a test, afterAll registers nothing: the directory was left behind by every run.
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('SQLite (fixes/sync-media-generation-ids.yaml, pages of 20 rows)', () => {
  const ROWS = 3000;
  let template: string;
  let expected: Map<string, string | null>;
  /** Rows the fix reads: raw_response set, media_generation_id NULL (read from the data, not from datafix). */
  let readable: number;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected } = createGeneratedVeo3Db(template, ROWS));
    [{ n: readable } = { n: 0 }] = sqliteAll<{ n: number }>(
      template,
      'SELECT count(*) AS n FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL',
    );
  });

  function copy(pageSize = 20) {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    const spec = dir.write('sync.yaml', readFileSync(SYNC_FIX, 'utf8').replace(/pageSize: 200\b/, `pageSize: ${pageSize}`));
    return { dir, db, spec, env: { VEO3_DB_PATH: db } };
  }

  function expectFixed(db: string): void {
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
  }

  it('Ctrl-C part-way through a live run: records in flight finish, summary, --resume hint, checkpoint, lock released, no temp file, exit 130', async () => {
    const { dir, db, spec, env } = copy();
    const temp = ownTmpdir();
    const run = inTerminal(['run', spec, '--yes'], { cwd: dir.path, env: { ...env, TMPDIR: temp } });
    await waitFor('the first checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
    run.press(CTRL_C);
    const r = await run.done;
    const screen = run.screen();
    expect(r.code, screen).toBe(130);
    expect(screen).toContain('interrupt: finishing the records in flight and saving the checkpoint (Ctrl-C again to stop at once)');
    expect(screen).toContain('Summary (interrupted)');
    expect(screen).toContain(`interrupted: the checkpoint is saved. Continue with: datafix run ${spec} --resume`);
    expect(screen).not.toContain('internal error');
    const state = onlyState(dir.path);
    expect(state?.status).toBe('interrupted');
    // Whole pages only: every record read was finished and counted in the checkpoint.
    expect(state?.records).toBe((state?.pages ?? 0) * 20);
    expect(state?.records).toBeLessThan(readable);
    expect(screen).toMatch(new RegExp(`\\n  total +${state?.records}\\n`));
    expect(lockFiles(dir.path)).toEqual([]);
    expect(readdirSync(temp)).toEqual([]);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(jsonSummary(resumed).total).toBe(readable - (state?.records ?? 0));
    expectFixed(db);
  });

  // Ctrl-C before the display was up once crashed inside the terminal UI library (exit 1) and
  // later exited 127 with the lock left; now every instant of start-up ends the same way.
  it('Ctrl-C at any instant of start-up exits 130 with no internal error and no lock, stopped before it began or resumable', async () => {
    let last: ReturnType<typeof copy> | undefined;
    // Pages of 4 rows: the run lasts seconds, so every instant falls before its end. The last
    // Ctrl-C waits for the run's first checkpoint rather than a time: on a loaded machine 1 s
    // can still be start-up, and that one must stop part-way for --resume to have work.
    for (const afterMs of [100, 300, 600, undefined]) {
      last = copy(4);
      const { dir, spec, env } = last;
      const run = inTerminal(['run', spec, '--yes'], { cwd: dir.path, env });
      if (afterMs === undefined) {
        await waitFor('the first checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 60_000, intervalMs: 5 });
      } else await sleep(afterMs);
      run.press(CTRL_C);
      const r = await run.done;
      const screen = run.screen();
      expect(r.code, `Ctrl-C after ${afterMs} ms:\n${screen}`).toBe(130);
      expect(screen, `after ${afterMs} ms`).not.toContain('internal error');
      expect(screen, `after ${afterMs} ms`).not.toContain('TypeError');
      expect(lockFiles(dir.path), `after ${afterMs} ms`).toEqual([]);
      // No state: nothing was started. Else the state of a run stopped cleanly.
      expect([undefined, 'interrupted'], `after ${afterMs} ms`).toContain(onlyState(dir.path)?.status);
    }
    // The last one, stopped part-way, is finished by --resume.
    const { dir, db, spec, env } = last as ReturnType<typeof copy>;
    expect(onlyState(dir.path)?.status).toBe('interrupted');
    const again = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 120_000 });
    expect(again.code, show(again)).toBe(0);
    expectFixed(db);
  });

  it('Ctrl-C during plan (in a terminal, and as SIGTERM without one): stops, saves no plan and no partial file, exit 130', async () => {
    for (const how of ['terminal', 'sigterm'] as const) {
      const { dir, db, spec, env } = copy(1);
      const hash = sha256File(db);
      const out = dir.file('sync.plan.jsonl');
      const args = ['plan', spec, '--out', out];
      const run = how === 'terminal' ? inTerminal(args, { cwd: dir.path, env }) : undefined;
      const plain = how === 'sigterm' ? startCli(args, { cwd: dir.path, env }) : undefined;
      // Part-way: the unfinished plan holds some changes already.
      await waitFor('the plan to be under way', () => readdirSync(dir.path).includes('sync.plan.jsonl.partial'), {
        timeoutMs: 60_000,
        intervalMs: 5,
      });
      if (run) run.press(CTRL_C);
      else plain?.child.kill('SIGTERM');
      const r = await (run ?? plain)?.done;
      const text = run ? run.screen() : `${r?.stdout}${r?.stderr}`;
      expect(r?.code, `${how}:\n${text}`).toBe(130);
      expect(text).toContain('no plan was saved');
      expect(
        readdirSync(dir.path).filter((f) => f.startsWith('sync.plan')),
        how,
      ).toEqual([]);
      expect(sha256File(db)).toBe(hash);
    }
  });

  it('Ctrl-C at the [y/N] question: says nothing was written, exit 130, nothing started', async () => {
    const { dir, db, spec, env } = copy();
    const hash = sha256File(db);
    const run = inTerminal(['run', spec], { cwd: dir.path, env });
    await waitFor('the question', () => run.screen().includes('[y/N]'), { timeoutMs: 30_000 });
    const screen = await ctrlCNothingWritten(run);
    expect(screen).not.toContain('AbortError');
    expect(sha256File(db)).toBe(hash);
    expect(lockFiles(dir.path)).toEqual([]);
    expect(readdirSync(dir.path).sort()).toEqual(['sync.yaml', 'veo3.db']);
  });
});

describe('DynamoDB (fixes/i2v-thumbnails.yaml, pages of 10 behind a slow endpoint)', () => {
  const VIDEOS = 120;
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  let data: ReturnType<typeof videoDataset>;
  let spec: string;
  /** Milliseconds each UpdateItem, each Query and each lookup (BatchGetItem, GetItem) waits. */
  const delays = { write: 0, read: 0, lookup: 0 };

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startCountingProxy(dynamo.endpoint, {
      fault: (r) => {
        const ms = { UpdateItem: delays.write, Query: delays.read, BatchGetItem: delays.lookup, GetItem: delays.lookup }[r.operation] ?? 0;
        return ms > 0 ? { beforeForward: () => sleep(ms) } : undefined;
      },
    });
    data = videoDataset(VIDEOS);
    spec = i2vSpecWithPageSize(shared(), 10);
  });
  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  const freshTable = seededTables(
    () => dynamo.endpoint,
    () => data.items,
    'media-ctrl-c',
  );

  /** What a run that stopped before writing leaves: the table as it was, no lock, no file. */
  async function expectUntouched(table: string, before: RawItem[], dir: string): Promise<void> {
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
    expect(lockFiles(dir)).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  }

  it('Ctrl-C during the preview pass: stops there, asks nothing, writes nothing, exit 130', async () => {
    const table = await freshTable();
    const before = await scanRaw(dynamo.endpoint, table);
    const dir = tmp();
    delays.read = 300;
    try {
      const run = inTerminal(['run', spec], { cwd: dir.path, env: dynamoEnv(table, proxy.endpoint) });
      await waitFor('the preview pass to read a page', () => (proxy.counts().Query ?? 0) >= 2, { timeoutMs: 30_000 });
      run.press(CTRL_C);
      // A preview that went on to ask with its partial counts would wait for an answer forever.
      await waitFor('the run to stop (or to ask)', () => run.child.exitCode !== null || run.screen().includes('[y/N]'), {
        timeoutMs: 30_000,
      });
      expect(run.screen()).not.toContain('[y/N]');
      const r = await run.done;
      const screen = run.screen();
      expect(r.code, screen).toBe(130);
      expect(screen).toContain('interrupted: nothing was written.');
      expect(screen).not.toContain('would be updated');
      expect(screen).not.toContain('saving the checkpoint');
      await expectUntouched(table, before, dir.path);
    } finally {
      delays.read = 0;
    }
  });

  it('a second Ctrl-C during the preview pass stops at once and says so: nothing written, exit 130', async () => {
    const table = await freshTable();
    const before = await scanRaw(dynamo.endpoint, table);
    const dir = tmp();
    delays.lookup = 3000;
    // The proxy counts every test's requests: this run's lookups are those after this count.
    const lookups = () => (proxy.counts().BatchGetItem ?? 0) + (proxy.counts().GetItem ?? 0);
    const earlier = lookups();
    try {
      const run = inTerminal(['run', spec], { cwd: dir.path, env: dynamoEnv(table, proxy.endpoint) });
      await waitFor('the lookups of the first page', () => lookups() > earlier, { timeoutMs: 30_000 });
      run.press(CTRL_C);
      await waitFor('the first Ctrl-C to be taken', () => run.screen().includes('interrupt: stopping before anything is written'));
      // A person's second Ctrl-C: one sooner is the first delivered again (SAME_STOP_MS).
      await sleep(SAME_STOP_MS + 50);
      const second = Date.now();
      run.press(CTRL_C);
      const r = await run.done;
      // At once: well before the 3 s the lookups in flight take.
      expect(Date.now() - second).toBeLessThan(2000 * TIME_SCALE);
      const screen = run.screen();
      expect(r.code, screen).toBe(130);
      // The task list gave the terminal back first: the last words are on screen.
      expect(screen).toContain('stopped at once: nothing was written.');
      expect(screen).not.toContain('[y/N]');
      await expectUntouched(table, before, dir.path);
    } finally {
      delays.lookup = 0;
    }
  });

  it('a second Ctrl-C stops at once, before the writes in flight return; --resume then fixes every item', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, proxy.endpoint);
    delays.write = 4000;
    let stoppedAfterMs: number;
    let r: Awaited<ReturnType<typeof runCli>>;
    let screen: string;
    try {
      const run = inTerminal(['run', spec, '--yes'], { cwd: dir.path, env });
      await waitFor('the first writes to be in flight', () => proxy.counts().UpdateItem ?? 0, { timeoutMs: 30_000 });
      run.press(CTRL_C);
      await waitFor('the first Ctrl-C to be taken', () => run.screen().includes('interrupt: finishing the records in flight'));
      await sleep(SAME_STOP_MS + 50);
      const second = Date.now();
      run.press(CTRL_C);
      r = await run.done;
      stoppedAfterMs = Date.now() - second;
      screen = run.screen();
    } finally {
      delays.write = 0;
    }
    expect(r.code, screen).toBe(130);
    // At once: well before the 4 s the writes in flight take.
    expect(stoppedAfterMs).toBeLessThan(2000 * TIME_SCALE);
    expect(screen).toContain(`stopped at once. The run can be continued from its last checkpoint with: datafix run ${spec} --resume`);
    expect(screen).not.toContain('internal error');
    // What a crash leaves: the state of a run that did not finish, and its lock.
    expect(onlyState(dir.path)?.status).toBe('running');
    expect(lockFiles(dir.path)).toHaveLength(1);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    // Every item as the fix's rules (the test oracle) say; the stopped process and the resumed
    // one each stamp their own time.
    expect(expectOracleState(data.items, await scanAll(dynamo.endpoint, table), { runs: 2 })).toBe(data.updatable.length);
    expect(lockFiles(dir.path)).toEqual([]);
  });
});
