/**
 * Acceptance 6: a live run asks before writing only in an interactive terminal. Without a TTY
 * (pipes, CI, cron) it never prompts and never reads stdin. In a terminal (util-linux `script`
 * gives the CLI a pseudo-terminal) it prints the counts and the target and asks; "n" cancels
 * with nothing written, and `--yes` skips the question.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { HAS_SCRIPT, inTerminal, NO_SCRIPT, stripTerminal } from '../helpers/terminal.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  generationIds,
  jsonSummary,
  killLeftoverProcesses,
  lockFiles,
  SYNC_FIX,
  show,
  sqliteAll,
  startCli,
  waitFor,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

let template: string;
let updatable: string[];
let expected: Map<string, string | null>;

beforeAll(() => {
  template = shared().file('template.db');
  ({ updatable, expected } = createGeneratedVeo3Db(template, 800));
});

function copy() {
  const dir = tmp();
  const db = dir.file('veo3.db');
  copyFileSync(template, db);
  return { dir, db, env: { VEO3_DB_PATH: db } };
}

function expectFixed(db: string): void {
  const ids = generationIds(db);
  for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
}

describe('no terminal: never asks', () => {
  it('a live run through pipes completes without reading stdin (CI=true, as runCli runs it)', async () => {
    const { dir, db, env } = copy();
    // "n" on stdin is never read as an answer: the run writes.
    const r = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env, input: 'n\n' });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ updated: updatable.length });
    expect(r.stderr).not.toContain('[y/N]');
    expect(r.stderr).not.toContain('cancelled');
    expectFixed(db);
  });

  it('a live run with CI unset but stdin a pipe that stays open never waits for an answer', async () => {
    const { dir, db, env } = copy();
    const child = startCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env, ci: false, timeoutMs: 20_000 });
    // stdin is never written to nor closed: a prompt would hang until the timeout kills it.
    const r = await child.done;
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).not.toContain('[y/N]');
    expectFixed(db);
  });
});

describe('in a terminal (util-linux script)', () => {
  // Never skipped: without `script` these tests fail here, naming what to install.
  it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
    expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
  });

  it('shows the counts and the target, asks, and "n" cancels with nothing written', async () => {
    const { dir, db, env } = copy();
    const hash = sha256File(db);
    const child = inTerminal(['run', SYNC_FIX], { cwd: dir.path, env });
    await waitFor('the question', () => child.stdout().includes('[y/N]'), { timeoutMs: 20_000 });
    child.child.stdin.write('n\r');
    const r = await child.done;
    const screen = stripTerminal(r.stdout + r.stderr);
    expect(r.code, screen).toBe(0);
    expect(screen).toContain(`checking what sync-media-generation-ids would change on sqlite ${db}`);
    const [{ n: read } = { n: 0 }] = sqliteAll<{ n: number }>(
      template,
      'SELECT count(*) AS n FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL',
    );
    expect(screen).toContain(
      `${updatable.length} record(s) would be updated, ${read - updatable.length} skipped, 0 failed (of ${read} read).`,
    );
    expect(screen).toContain(`Write these changes to sqlite ${db}? [y/N]`);
    expect(screen).toContain('cancelled: nothing was written.');
    expect(sha256File(db)).toBe(hash);
    // Nothing was started: no lock, no journal, no state.
    expect(lockFiles(dir.path)).toEqual([]);
    expect(existsSync(dir.file('.datafix'))).toBe(false);
  });

  it('--segment on a SQLite source is refused (exit 2, DF727) before the dry pass and the question', async () => {
    const { dir, db, env } = copy();
    const hash = sha256File(db);
    const r = await inTerminal(['run', SYNC_FIX, '--segment', '0', '--total-segments', '2'], { cwd: dir.path, env }).done;
    const screen = stripTerminal(r.stdout + r.stderr);
    expect(r.code, screen).toBe(2);
    expect(screen).toContain('error DF727: --segment splits a DynamoDB scan, but sync-media-generation-ids reads a SQLite table');
    expect(screen).not.toContain('checking what');
    expect(screen).not.toContain('[y/N]');
    expect(sha256File(db)).toBe(hash);
  });

  it('"y" writes', async () => {
    const { dir, db, env } = copy();
    const child = inTerminal(['run', SYNC_FIX], { cwd: dir.path, env });
    await waitFor('the question', () => child.stdout().includes('[y/N]'), { timeoutMs: 20_000 });
    child.child.stdin.write('y\r');
    const r = await child.done;
    expect(r.code, stripTerminal(r.stdout)).toBe(0);
    expectFixed(db);
  });

  it('--yes does not ask, and writes', async () => {
    const { dir, db, env } = copy();
    const child = inTerminal(['run', SYNC_FIX, '--yes'], { cwd: dir.path, env });
    const r = await child.done;
    const screen = stripTerminal(r.stdout + r.stderr);
    expect(r.code, screen).toBe(0);
    expect(screen).not.toContain('[y/N]');
    expect(screen).not.toContain('would be updated');
    expectFixed(db);
  });
});
