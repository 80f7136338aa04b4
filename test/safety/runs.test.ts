/**
 * `datafix runs` lists what live runs left in `.datafix/runs/` (fix, target without credentials,
 * status, counts, journal, size) and `datafix runs prune --older-than AGE` removes old finished
 * runs' files: never a resumable run's, and a journal that is the only way to undo its writes only
 * with `--force` or a yes at the terminal (a real pseudo-terminal from util-linux `script`).
 */
import { copyFileSync, existsSync, statSync, utimesSync } from 'node:fs';
import { relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { CTRL_C, hasScript, inTerminal, MISSING_SCRIPT, stripTerminal } from '../helpers/terminal.js';
import { type TempDir, useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dynamoEnv,
  generationIds,
  I2V_FIX,
  jsonSummary,
  killLeftoverProcesses,
  SYNC_FIX,
  show,
  sqliteAll,
  stateFiles,
  videoDataset,
  waitFor,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

const DAY = 86_400_000;
const ROWS = 120;
let template: string;
let updatable: string[];

beforeAll(() => {
  template = shared().file('template.db');
  ({ updatable } = createGeneratedVeo3Db(template, ROWS));
});

/** Rows the sync fix reads (its `where`), counted with SQL. */
function toRead(db: string): number {
  return sqliteAll<{ n: number }>(
    db,
    'SELECT count(*) AS n FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL',
  )[0]?.n as number;
}

/** Sets a file's modification time `days` back, as if last written then. */
function age(file: string, days: number): void {
  const when = new Date(Date.now() - days * DAY);
  utimesSync(file, when, when);
}

interface Listed {
  kind: string;
  fix: string;
  target: string;
  status: string;
  resumable: boolean;
  read?: number;
  writes: number;
  summary?: { updated: number; skipped: number; failed: number };
  journal?: string;
  stateFile?: string;
  lastWrittenAt: string;
  bytes: number;
}

async function listed(dir: TempDir): Promise<Listed[]> {
  const r = await runCli(['runs', '--json'], { cwd: dir.path });
  expect(r.code, show(r)).toBe(0);
  return (jsonSummary(r) as { runs: Listed[] }).runs;
}

/**
 * One working directory with runs of every kind, all but `fresh` last written 40 days ago:
 * `limited` (done, superseded by `full`), `full` (done, then undone), `stopped` (interrupted: its
 * journal could not be written, so it is resumable), `applied` (a saved plan applied), `idle` (a
 * run with nothing to write) and `fresh` (done today).
 */
async function history() {
  const dir = tmp();
  const db = (name: string) => {
    const path = dir.file(name);
    copyFileSync(template, path);
    return path;
  };
  const main = db('main.db');
  const journal = (name: string) => dir.file(`.datafix/runs/${name}.journal.jsonl`);
  const run = async (path: string, name: string, args: string[] = [], more: { fileSizeLimitKiB?: number } = {}) => {
    const r = await runCli(['run', SYNC_FIX, '--journal', journal(name), ...args], {
      cwd: dir.path,
      env: { VEO3_DB_PATH: path },
      ...more,
    });
    return r;
  };
  const readFirst = toRead(main);
  expect((await run(main, 'limited', ['--limit', '5'])).code).toBe(0);
  const readFull = toRead(main);
  expect((await run(main, 'full')).code).toBe(0);
  const undo = await runCli(['undo', journal('full')], { cwd: dir.path });
  expect(undo.code, show(undo)).toBe(0);

  const other = db('other.db');
  const stopped = await run(other, 'stopped', [], { fileSizeLimitKiB: 4 });
  expect(stopped.code, show(stopped)).toBe(2);
  expect(stopped.stderr).toContain('error DF704');

  const planned = db('planned.db');
  const plan = dir.file('p.plan.jsonl');
  expect((await runCli(['plan', SYNC_FIX, '--out', plan], { cwd: dir.path, env: { VEO3_DB_PATH: planned } })).code).toBe(0);
  const apply = await runCli(['apply', plan, '--journal', journal('applied')], { cwd: dir.path, env: { VEO3_DB_PATH: planned } });
  expect(apply.code, show(apply)).toBe(0);

  const idle = dir.file('idle.db');
  copyFileSync(planned, idle);
  expect((await run(idle, 'idle')).code).toBe(0);

  for (const f of stateFiles(dir.path).map((s) => s.file)) age(f, 40);
  for (const name of ['limited', 'full', 'stopped', 'applied', 'idle']) age(journal(name), 40);
  const fresh = db('fresh.db');
  expect((await run(fresh, 'fresh', ['--limit', '3'])).code).toBe(0);
  return { dir, main, other, planned, idle, fresh, journal, readFirst, readFull };
}

/** The state file of the runs on database `db` (their target). */
const stateOf = (dir: TempDir, db: string) =>
  stateFiles(dir.path).find((s) => (s as unknown as { target: { path: string } }).target.path === db);

describe('datafix runs', () => {
  it('lists every run: fix, target, status, counts, journal and size', async () => {
    const h = await history();
    const runs = await listed(h.dir);
    const byJournal = new Map(runs.map((r) => [r.journal, r]));
    expect(runs).toHaveLength(6);
    const size = (...files: (string | undefined)[]) => files.reduce((n, f) => n + (f && existsSync(f) ? statSync(f).size : 0), 0);
    const fix = 'sync-media-generation-ids';

    expect(byJournal.get(h.journal('limited'))).toEqual({
      kind: 'run',
      fix,
      target: `sqlite ${h.main}`,
      status: 'done',
      resumable: false,
      specFile: SYNC_FIX,
      startedAt: expect.any(String),
      lastWrittenAt: expect.any(String),
      read: 5,
      writes: 5,
      summary: { updated: 5, skipped: 0, failed: 0 },
      journal: h.journal('limited'),
      bytes: size(h.journal('limited')),
    });
    // Last written when the test aged its files: 40 days ago.
    const written = Date.parse(byJournal.get(h.journal('limited'))?.lastWrittenAt ?? '');
    expect(Math.abs(written - (Date.now() - 40 * DAY))).toBeLessThan(5 * 60_000);
    const full = stateOf(h.dir, h.main);
    expect(byJournal.get(h.journal('full'))).toMatchObject({
      status: 'undone',
      resumable: false,
      read: h.readFull,
      writes: updatable.length - 5,
      summary: { updated: updatable.length - 5, failed: 0 },
      stateFile: full?.file,
      bytes: size(h.journal('full'), full?.file),
    });
    expect(byJournal.get(h.journal('stopped'))).toMatchObject({
      target: `sqlite ${h.other}`,
      status: 'interrupted',
      resumable: true,
      writes: 0,
    });
    expect(byJournal.get(h.journal('applied'))).toMatchObject({ kind: 'apply', status: 'done', writes: updatable.length });
    expect(byJournal.get(h.journal('idle'))).toMatchObject({ status: 'done', writes: 0, summary: { updated: 0 } });
    expect(byJournal.get(h.journal('fresh'))).toMatchObject({ status: 'done', read: 3, writes: 3 });
    expect(h.readFirst).toBe(toRead(h.other));

    // As a person reads it.
    const text = await runCli(['runs'], { cwd: h.dir.path });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`  ${fix}  interrupted (resumable)\n    target   sqlite ${h.other}\n`);
    expect(text.stdout).toContain('    counts   read 5 · updated 5 · skipped 0 · failed 0 · 5 write(s) journaled\n');
    expect(text.stdout).toContain(
      `    journal  .datafix/runs/limited.journal.jsonl  ${(size(h.journal('limited')) / 1024).toFixed(1)} KiB\n`,
    );
  });

  it('names a DynamoDB target without the credentials of its endpoint', async () => {
    let dynamo: RunningDynalite | undefined;
    try {
      dynamo = await startDynalite();
      await createMediaTable(dynamo.endpoint, 'runs-list');
      await seedItems(dynamo.endpoint, 'runs-list', videoDataset(8).items);
      const dir = tmp();
      const url = new URL(dynamo.endpoint);
      const secret = `http://ops:s3cr3t-pw@${url.host}/?token=tok-xyz`;
      const r = await runCli(['run', I2V_FIX], { cwd: dir.path, env: dynamoEnv('runs-list', secret) });
      expect(r.code, show(r)).toBe(0);
      const list = await runCli(['runs'], { cwd: dir.path });
      const json = await runCli(['runs', '--json'], { cwd: dir.path });
      for (const out of [list.stdout, json.stdout]) {
        expect(out).toContain(`dynamodb runs-list (http://${url.host})`);
        expect(out).not.toContain('s3cr3t');
        expect(out).not.toContain('tok-xyz');
      }
    } finally {
      await dynamo?.stop();
    }
  });

  it('says so when the directory has no runs', async () => {
    const dir = tmp();
    const r = await runCli(['runs'], { cwd: dir.path });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('no runs recorded in .datafix/runs\n');
    expect(existsSync(dir.file('.datafix'))).toBe(false);
  });
});

describe('datafix runs prune', () => {
  it('without a terminal: removes undone and write-less runs, keeps the resumable one and the journals that are the only undo', async () => {
    const h = await history();
    const r = await runCli(['runs', 'prune', '--older-than', '30d'], { cwd: h.dir.path });
    expect(r.code, show(r)).toBe(0);
    expect(existsSync(h.journal('full'))).toBe(false);
    expect(existsSync(h.journal('idle'))).toBe(false);
    expect(existsSync(h.journal('stopped'))).toBe(true);
    expect(existsSync(h.journal('limited'))).toBe(true);
    expect(existsSync(h.journal('applied'))).toBe(true);
    expect(existsSync(h.journal('fresh'))).toBe(true);
    expect(r.stdout).toContain(
      `kept .datafix/runs/limited.journal.jsonl: its journal is the only way to undo 5 write(s); --force removes it\n`,
    );
    expect(r.stdout).toContain(
      `kept .datafix/runs/stopped.journal.jsonl: resumable: continue with datafix run ${SYNC_FIX} --resume, or undo it\n`,
    );
    expect(r.stdout).toMatch(/removed 2 run\(s\), .*; kept 3 older and 1 newer than 30d\n$/);
    // The undone run's state went with its journal; the resumable run's state is still there.
    expect(stateOf(h.dir, h.main)).toBeUndefined();
    expect(stateOf(h.dir, h.other)?.status).toBe('interrupted');

    // The resumable run still resumes; the kept journal still undoes.
    const resumed = await runCli(['run', SYNC_FIX, '--resume', '--json'], { cwd: h.dir.path, env: { VEO3_DB_PATH: h.other } });
    expect(resumed.code, show(resumed)).toBe(0);
    expect([...generationIds(h.other).values()].filter((v) => v.mgid !== null && !v.mgid.startsWith('KEEP')).length).toBe(updatable.length);
    const undo = await runCli(['undo', h.journal('limited'), '--json'], { cwd: h.dir.path });
    expect(jsonSummary(undo)).toMatchObject({ restored: 5 });
  });

  it('--force also removes the journals that are the only undo, never the resumable run; --dry-run removes nothing', async () => {
    const h = await history();
    const dry = await runCli(['runs', 'prune', '--older-than', '30d', '--force', '--dry-run', '--json'], { cwd: h.dir.path });
    expect(dry.code, show(dry)).toBe(0);
    const planned = jsonSummary(dry) as { removed: { journal: string }[]; kept: { journal: string }[] };
    expect(planned.removed.map((x) => x.journal).sort()).toEqual(['applied', 'full', 'idle', 'limited'].map((n) => h.journal(n)).sort());
    expect(planned.kept.map((x) => x.journal)).toEqual([h.journal('stopped')]);
    for (const n of ['limited', 'full', 'stopped', 'applied', 'idle', 'fresh']) expect(existsSync(h.journal(n)), n).toBe(true);

    const r = await runCli(['runs', 'prune', '--older-than', '30d', '--force'], { cwd: h.dir.path });
    expect(r.code, show(r)).toBe(0);
    for (const n of ['limited', 'full', 'applied', 'idle']) expect(existsSync(h.journal(n)), n).toBe(false);
    for (const n of ['stopped', 'fresh']) expect(existsSync(h.journal(n)), n).toBe(true);
    expect((await listed(h.dir)).map((x) => x.journal).sort()).toEqual([h.journal('fresh'), h.journal('stopped')].sort());
  });

  it('a journal written elsewhere with --journal stays: only its state goes, without asking', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    const own = dir.file('own.journal.jsonl');
    const run = await runCli(['run', SYNC_FIX, '--journal', own], { cwd: dir.path, env: { VEO3_DB_PATH: db } });
    expect(run.code, show(run)).toBe(0);
    const state = stateOf(dir, db)?.file as string;
    age(own, 40);
    age(state, 40);
    const r = await runCli(['runs', 'prune', '--older-than', '30d'], { cwd: dir.path });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(`removed ${relative(dir.path, state)} (sync-media-generation-ids, done)\n`);
    expect(existsSync(state)).toBe(false);
    expect(existsSync(own)).toBe(true);
    const undo = await runCli(['undo', own, '--json'], { cwd: dir.path });
    expect(jsonSummary(undo)).toMatchObject({ restored: updatable.length });
  });

  it('a bad age is refused, naming the form (DF023)', async () => {
    const dir = tmp();
    const r = await runCli(['runs', 'prune', '--older-than', '30 days'], { cwd: dir.path });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error DF023: --older-than must be a whole number and a unit: s, m, h, d or w, as in 30d (got "30 days")\n');
  });

  describe('in a terminal', () => {
    it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
      expect(hasScript, MISSING_SCRIPT).toBe(true);
    });

    it('lists the journals that are the only undo and asks: "y" removes them, "n" and Ctrl-D keep them', async () => {
      for (const [key, gone] of [
        ['y\r', true],
        ['n\r', false],
        // Ctrl-D (end of input) is a no, as for run, undo and apply: not an interrupt.
        ['\x04', false],
      ] as const) {
        const h = await history();
        const child = inTerminal(['runs', 'prune', '--older-than', '30d'], { cwd: h.dir.path });
        await waitFor('the question', () => child.stdout().includes('[y/N]'), { timeoutMs: 20_000 });
        child.child.stdin.write(key);
        const r = await child.done;
        const screen = stripTerminal(r.stdout + r.stderr);
        expect(r.code, screen).toBe(0);
        expect(screen).toContain('2 run(s) hold writes whose journal is the only way to undo them:\n');
        expect(screen).toContain(
          '  .datafix/runs/limited.journal.jsonl (read 5 · updated 5 · skipped 0 · failed 0 · 5 write(s) journaled)\n',
        );
        expect(screen).toContain('Remove them too? [y/N]');
        expect(existsSync(h.journal('limited')), key).toBe(!gone);
        expect(existsSync(h.journal('applied')), key).toBe(!gone);
        expect(existsSync(h.journal('full'))).toBe(false);
        expect(existsSync(h.journal('stopped'))).toBe(true);
      }
    });

    it('Ctrl-C at the question removes nothing, says so, and exits 130', async () => {
      const h = await history();
      const child = inTerminal(['runs', 'prune', '--older-than', '30d'], { cwd: h.dir.path });
      await waitFor('the question', () => child.stdout().includes('[y/N]'), { timeoutMs: 20_000 });
      child.press(CTRL_C);
      const r = await child.done;
      const screen = stripTerminal(r.stdout + r.stderr);
      expect(r.code, screen).toBe(130);
      expect(screen).toContain('interrupted: nothing was removed.');
      for (const name of ['limited', 'applied', 'stopped', 'full']) expect(existsSync(h.journal(name)), name).toBe(true);
    });
  });
});
