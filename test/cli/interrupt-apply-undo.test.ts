/**
 * Ctrl-C (in a real pseudo-terminal from util-linux `script`), SIGTERM and SIGHUP during a live
 * `datafix apply` and `datafix undo` stop them as they stop `run`: the writes in flight finish and
 * are journaled, the summary says it was interrupted and how to continue, the lock is released,
 * the exit code is 130, and `datafix runs` lists it as interrupted. Running the command again
 * finishes the work. The writes go to dynalite behind a loopback proxy that delays each
 * UpdateItem, so that the signal arrives while a batch is in flight.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type RunningDynalite, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { CTRL_C, HAS_SCRIPT, inTerminal, NO_SCRIPT } from '../helpers/terminal.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  journalResults,
  journalWrites,
  jsonLines,
  killLeftoverProcesses,
  lockFiles,
  markedItems,
  markItemsSpec,
  markItemsTable,
  type RunningCli,
  show,
  sleep,
  startCli,
  waitFor,
} from '../safety/support.js';

const tmp = useTempDirs();
killLeftoverProcesses();

/** Items in the table; apply and undo handle them in batches of 100. */
const N = 250;
const BATCH = 100;

let dynamo: RunningDynalite;
let proxy: CountingProxy;
/** Milliseconds each UpdateItem waits in the proxy before it is forwarded. */
let writeDelay = 0;
let tables = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  proxy = await startCountingProxy(dynamo.endpoint, {
    fault: (r) => (r.operation === 'UpdateItem' && writeDelay > 0 ? { beforeForward: () => sleep(writeDelay) } : undefined),
  });
});
afterAll(async () => {
  await proxy?.stop();
  await dynamo?.stop();
});

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
});

/** A fresh table of N items `{PK, SK, n}`, the mark-items fix (copies n into copyOfN) and its env. */
async function fresh() {
  const table = `interrupt-writes-${++tables}`;
  await markItemsTable(dynamo.endpoint, table, N);
  const dir = tmp();
  const spec = markItemsSpec(dir);
  return { table, dir, spec, env: { TABLE: table, ENDPOINT: proxy.endpoint } };
}

/** Items of the table whose copyOfN holds their n (written by the fix), counted from the table itself. */
async function marked(table: string): Promise<number> {
  const { items, marked } = await markedItems(dynamo.endpoint, table);
  expect(items).toBe(N);
  return marked;
}

/** How the test stops the command: Ctrl-C typed in a terminal, or a signal sent to the process. */
type Stop = 'Ctrl-C' | 'SIGTERM' | 'SIGHUP';

/** Starts `datafix ARGS` (in a terminal for Ctrl-C, with `--yes` there so it does not ask). */
function start(stop: Stop, args: string[], cwd: string, env: Record<string, string>): { run: RunningCli; stop(): void; screen(): string } {
  if (stop === 'Ctrl-C') {
    const run = inTerminal([...args, '--yes'], { cwd, env });
    return { run, stop: () => run.press(CTRL_C), screen: () => run.screen() };
  }
  const run = startCli(args, { cwd, env });
  return { run, stop: () => run.child.kill(stop), screen: () => run.stdout() + run.stderr() };
}

/** Starts the command with writes slowed down, stops it once its first writes are in flight. */
async function stopWhileWriting(stop: Stop, args: string[], cwd: string, env: Record<string, string>) {
  const before = proxy.counts().UpdateItem ?? 0;
  writeDelay = 40;
  try {
    const cli = start(stop, args, cwd, env);
    await waitFor('the first writes to be in flight', () => (proxy.counts().UpdateItem ?? 0) > before, {
      timeoutMs: 30_000,
      intervalMs: 5,
    });
    cli.stop();
    const r = await cli.run.done;
    return { code: r.code, screen: cli.screen().replace(/\r/g, '') };
  } finally {
    writeDelay = 0;
  }
}

/** The status line `datafix runs` prints for the run or apply of mark-items. */
async function runsStatus(cwd: string, env: Record<string, string>): Promise<string[]> {
  const r = await runCli(['runs'], { cwd, env });
  expect(r.code, show(r)).toBe(0);
  return r.stdout.split('\n').filter((l) => /^\d.* mark-items /.test(l));
}

describe('datafix apply', () => {
  for (const stop of ['Ctrl-C', 'SIGTERM'] as const) {
    it(`${stop} during the writes: the batch in flight finishes and is journaled, summary says interrupted, lock released, exit 130; apply again finishes`, async () => {
      const { table, dir, spec, env } = await fresh();
      const plan = dir.file('mark.plan.jsonl');
      const made = await runCli(['plan', spec, '--out', plan], { cwd: dir.path, env });
      expect(made.code, show(made)).toBe(0);
      const { code, screen } = await stopWhileWriting(stop, ['apply', plan], dir.path, env);
      expect(code, screen).toBe(130);
      // The first batch was in flight: it finished, and nothing after it was sent.
      expect(await marked(table)).toBe(BATCH);
      expect(screen).toContain('interrupt: finishing the writes in flight and journaling them (Ctrl-C again to stop at once)');
      expect(screen).toMatch(/Apply summary \(interrupted\)\n {2}total {4}100\n {2}applied {2}100\n {2}drifted {2}0\n {2}failed {3}0\n/);
      expect(screen).toContain(
        `interrupted: ${BATCH} of ${N} planned record(s) were handled and journaled. Continue with: datafix apply ${plan} (records already applied are left as they are and reported as drifted)`,
      );
      expect(screen).not.toContain('internal error');
      expect(lockFiles(dir.path)).toEqual([]);
      // Every write sent has its outcome in the journal, and the end line says it was interrupted.
      const journals = readdirSync(join(dir.path, '.datafix/runs')).filter((f) => f.endsWith('.journal.jsonl'));
      expect(journals).toHaveLength(1);
      const journal = join(dir.path, '.datafix/runs', journals[0] as string);
      const lines = jsonLines(journal);
      expect(journalWrites(journal)).toHaveLength(BATCH);
      expect(journalResults(journal)).toHaveLength(BATCH);
      expect(lines.at(-1)).toMatchObject({ type: 'end', interrupted: true });
      expect(await runsStatus(dir.path, env)).toEqual([
        expect.stringMatching(/ {2}apply mark-items {2}interrupted \(run the apply again to continue\)$/),
      ]);

      const again = await runCli(['apply', plan, '--journal', dir.file('again.journal.jsonl')], { cwd: dir.path, env });
      expect(again.code, show(again)).toBe(1);
      expect(again.stdout).toMatch(new RegExp(`total {4}${N}\\n {2}applied {2}${N - BATCH}\\n {2}drifted {2}${BATCH}\\n`));
      expect(await marked(table)).toBe(N);
    });
  }
});

describe('datafix undo', () => {
  for (const stop of ['Ctrl-C', 'SIGHUP'] as const) {
    it(`${stop} during the restores: the batch in flight finishes, summary says interrupted, lock released, exit 130, runs says undo interrupted; undo again finishes`, async () => {
      const { table, dir, spec, env } = await fresh();
      const journal = dir.file('run.journal.jsonl');
      const ran = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path, env });
      expect(ran.code, show(ran)).toBe(0);
      expect(await marked(table)).toBe(N);

      const { code, screen } = await stopWhileWriting(stop, ['undo', journal], dir.path, env);
      expect(code, screen).toBe(130);
      expect(await marked(table)).toBe(N - BATCH);
      expect(screen).toMatch(
        /Undo summary \(interrupted\)\n {2}total {7}100\n {2}not written 0\n {2}restored {4}100\n {2}unchanged {3}0\n {2}conflicts {3}0\n {2}failed {6}0\n/,
      );
      expect(screen).toContain(
        `interrupted: ${BATCH} journaled write(s) were handled. Continue with: datafix undo ${journal} (records already restored count as unchanged)`,
      );
      expect(lockFiles(dir.path)).toEqual([]);
      expect(await runsStatus(dir.path, env)).toEqual([
        expect.stringMatching(/ {2}mark-items {2}undo interrupted \(continue with: datafix undo run\.journal\.jsonl\)$/),
      ]);

      const again = await runCli(['undo', journal], { cwd: dir.path, env });
      expect(again.code, show(again)).toBe(0);
      expect(again.stdout).toMatch(
        new RegExp(`total {7}${N}\\n {2}not written 0\\n {2}restored {4}${N - BATCH}\\n {2}unchanged {3}${BATCH}\\n`),
      );
      expect(await marked(table)).toBe(0);
      expect(await runsStatus(dir.path, env)).toEqual([expect.stringMatching(/ {2}mark-items {2}undone$/)]);
    });
  }
});

describe('undo on SQLite, whose writes answer at once', () => {
  it('SIGTERM part-way stops after the batch in flight (exit 130, interrupted); undo again restores the rest', async () => {
    const { createGeneratedVeo3Db, SYNC_FIX, dumpSqlite } = await import('../safety/support.js');
    const dir = tmp();
    const db = dir.file('veo3.db');
    createGeneratedVeo3Db(db, 20_000);
    const before = dumpSqlite(db);
    const env = { VEO3_DB_PATH: db };
    const r = await runCli(['run', SYNC_FIX, '--yes'], { cwd: dir.path, env, timeoutMs: 120_000 });
    expect(r.code, show(r)).toBe(0);
    const journal = /journal (\S+\.journal\.jsonl) \(undo with/.exec(r.stderr)?.[1] as string;
    const undo = startCli(['undo', journal, '--yes'], { cwd: dir.path, env });
    await waitFor('some rows restored', () => (undo.stdout().match(/^~ restored /gm)?.length ?? 0) >= 300, {
      timeoutMs: 60_000,
      intervalMs: 5,
    });
    undo.child.kill('SIGTERM');
    const u = await undo.done;
    expect(u.code, show(u)).toBe(130);
    expect(u.stdout).toContain('Undo summary (interrupted)');
    const restored = Number(/^ {2}restored +(\d+)$/m.exec(u.stdout)?.[1]);
    expect(restored).toBeGreaterThan(0);
    expect(u.stderr).toContain(`Continue with: datafix undo ${journal}`);
    expect(lockFiles(dir.path)).toEqual([]);
    const again = await runCli(['undo', journal, '--yes'], { cwd: dir.path, env, timeoutMs: 120_000 });
    expect(again.code, show(again)).toBe(0);
    expect(dumpSqlite(db)).toEqual(before);
  });
});
