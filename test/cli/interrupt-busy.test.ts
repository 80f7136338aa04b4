/**
 * Ctrl-C (in a real pseudo-terminal from util-linux `script`) or SIGTERM while SQLite waits for a
 * database another connection holds locked (`busyTimeoutMs`): SQLite's wait cannot be cut short,
 * but when it ends the command takes the interrupt path (exit 130, summary, resume hint), not
 * DF411's "stayed locked" (exit 2). A lock that simply outlasts the wait, with no signal, is still
 * DF411. The lock is held by a real second connection in the test process.
 */
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { CTRL_C, HAS_SCRIPT, inTerminal, NO_SCRIPT } from '../helpers/terminal.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  generationIds,
  jsonLines,
  killLeftoverProcesses,
  lockFiles,
  onlyState,
  show,
  sleep,
  startCli,
  syncSpecWithBusyTimeout,
  waitFor,
  whileWriteLocked,
} from '../safety/support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

/** How long the CLI waits for the locked database (target.sqlite.busyTimeoutMs). */
const BUSY_MS = 3000;

let template: string;
let expected: Map<string, string | null>;
let updatable: string[];

beforeAll(() => {
  template = shared().file('template.db');
  ({ expected, updatable } = createGeneratedVeo3Db(template, 300));
});

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
});

function copy() {
  const dir = tmp();
  const db = dir.file('veo3.db');
  copyFileSync(template, db);
  const spec = syncSpecWithBusyTimeout(dir, BUSY_MS);
  return { dir, db, spec, env: { VEO3_DB_PATH: db } };
}

function expectFixed(db: string): void {
  const ids = generationIds(db);
  for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
}

/** Whether the run's journal (in .datafix/runs) holds a write line: the batch waits for the lock next. */
function journaledAWrite(dir: string): boolean {
  try {
    const runs = join(dir, '.datafix/runs');
    return readdirSync(runs).some((f) => f.endsWith('.journal.jsonl') && readFileSync(join(runs, f), 'utf8').includes('{"type":"writes"'));
  } catch {
    return false;
  }
}

describe('datafix run', () => {
  it('Ctrl-C while the first batch waits for the write lock: exit 130, interrupted summary, resume hint, nothing counted; --resume finishes', async () => {
    const { dir, db, spec, env } = copy();
    const before = sha256File(db);
    const { code, screen } = await whileWriteLocked(db, async () => {
      const run = inTerminal(['run', spec, '--yes'], { cwd: dir.path, env });
      await waitFor('the first batch to be journaled', () => journaledAWrite(dir.path), { timeoutMs: 30_000, intervalMs: 5 });
      run.press(CTRL_C);
      const r = await run.done;
      return { code: r.code, screen: run.screen() };
    });
    expect(code, screen).toBe(130);
    expect(screen).not.toContain('DF411');
    expect(screen).toContain('Summary (interrupted)');
    expect(screen).toMatch(/\n {2}total +0\n {2}updated +0\n/);
    expect(screen).toContain(`interrupted: the checkpoint is saved. Continue with: datafix run ${spec} --resume`);
    expect(onlyState(dir.path)).toMatchObject({ status: 'interrupted', pages: 0, records: 0 });
    expect(lockFiles(dir.path)).toEqual([]);
    expect(sha256File(db)).toBe(before);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(JSON.parse(resumed.stdout).wholeRun).toMatchObject({ updated: updatable.length });
    expectFixed(db);
  });

  it('Ctrl-C while opening a database held EXCLUSIVE (even reads wait): "nothing was written", exit 130, no lock', async () => {
    const { dir, db, spec, env } = copy();
    const before = sha256File(db);
    const { code, screen } = await whileWriteLocked(
      db,
      async () => {
        const run = inTerminal(['run', spec, '--yes'], { cwd: dir.path, env });
        // The run opens the database before it draws anything, and SQLite waits synchronously:
        // nothing is drawn until the wait ends, BUSY_MS after start-up (about 1 s).
        await sleep(2000);
        expect(run.screen()).toBe('');
        run.press(CTRL_C);
        const r = await run.done;
        return { code: r.code, screen: run.screen() };
      },
      { exclusive: true },
    );
    expect(code, screen).toBe(130);
    expect(screen).not.toContain('DF411');
    expect(screen).toContain('interrupted: nothing was written.');
    expect(lockFiles(dir.path)).toEqual([]);
    expect(sha256File(db)).toBe(before);
  });

  it('without a signal, a lock that outlasts the wait is still DF411, exit 2', async () => {
    const { dir, db, spec, env } = copy();
    const r = await whileWriteLocked(db, () => runCli(['run', spec, '--json'], { cwd: dir.path, env }));
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF411: ${db} is locked by another process and stayed locked for ${BUSY_MS} ms`);
  });
});

describe('datafix apply', () => {
  it('SIGTERM while a batch waits for the write lock: exit 130, interrupted summary, nothing applied; apply again applies all', async () => {
    const { dir, db, spec, env } = copy();
    const plan = dir.file('sync.plan.jsonl');
    const made = await runCli(['plan', spec, '--out', plan], { cwd: dir.path, env });
    expect(made.code, show(made)).toBe(0);
    const before = sha256File(db);
    const { code, out } = await whileWriteLocked(db, async () => {
      const run = startCli(['apply', plan], { cwd: dir.path, env });
      await waitFor('the first batch to be journaled', () => journaledAWrite(dir.path), { timeoutMs: 30_000, intervalMs: 5 });
      run.child.kill('SIGTERM');
      const r = await run.done;
      return { code: r.code, out: r.stdout + r.stderr };
    });
    expect(code, out).toBe(130);
    expect(out).not.toContain('DF411');
    expect(out).toMatch(/Apply summary \(interrupted\)\n {2}total {4}0\n {2}applied {2}0\n/);
    expect(out).toContain(
      `interrupted: 0 of ${updatable.length} planned record(s) were handled and journaled. Continue with: datafix apply ${plan}`,
    );
    expect(lockFiles(dir.path)).toEqual([]);
    expect(sha256File(db)).toBe(before);
    const runs = join(dir.path, '.datafix/runs');
    const [journal] = readdirSync(runs).filter((f) => f.endsWith('.journal.jsonl'));
    expect(jsonLines(join(runs, journal as string)).at(-1)).toMatchObject({ type: 'end', interrupted: true });

    const again = await runCli(['apply', plan, '--journal', dir.file('again.journal.jsonl')], { cwd: dir.path, env });
    expect(again.code, show(again)).toBe(0);
    expectFixed(db);
  });
});
