/**
 * `undo` and `apply` write the target like `run`: in a terminal (a real pseudo-terminal from
 * util-linux `script`) they show what they will do and ask first; "n" and Ctrl-C write nothing,
 * `--yes` skips the question, and without a terminal they never ask. Both take `--env NAME` like
 * `run`; `undo --env` connects with the credentials that file holds.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { hasScript, inTerminal, MISSING_SCRIPT, stripTerminal } from '../helpers/terminal.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dynamoEnv,
  generationIds,
  I2V_FIX,
  killLeftoverProcesses,
  lockFiles,
  type RunningCli,
  SYNC_FIX,
  scanRaw,
  show,
  stateFiles,
  videoDataset,
  waitFor,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

let template: string;
let updatable: string[];

beforeAll(() => {
  template = shared().file('template.db');
  ({ updatable } = createGeneratedVeo3Db(template, 300));
});

/** A copy of the sample database in a fresh working directory, and the environment naming it. */
function copy() {
  const dir = tmp();
  const db = dir.file('veo3.db');
  copyFileSync(template, db);
  return { dir, db, env: { VEO3_DB_PATH: db } };
}

/** id → media_generation_id, the values a person compares. */
const ids = (db: string) => new Map([...generationIds(db)].map(([id, v]) => [id, v.mgid]));

/** A copy after a live run made without a terminal: its journal, and the database's hash after it. */
async function afterLiveRun() {
  const { dir, db, env } = copy();
  const journal = dir.file('run.journal.jsonl');
  const r = await runCli(['run', SYNC_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
  expect(r.code, show(r)).toBe(0);
  return { dir, db, env, journal, afterRun: sha256File(db) };
}

/** Waits for the question, types `keys`, and returns what the person saw and the exit code. */
async function answer(child: RunningCli, keys: string): Promise<{ code: number; screen: string }> {
  await waitFor('the question', () => child.stdout().includes('[y/N]'), { timeoutMs: 20_000 });
  child.child.stdin.write(keys);
  const r = await child.done;
  return { code: r.code, screen: stripTerminal(r.stdout + r.stderr) };
}

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(hasScript, MISSING_SCRIPT).toBe(true);
});

describe('datafix undo in a terminal', () => {
  it('shows the counts and the target, asks, and "n" restores nothing', async () => {
    const { dir, db, env, journal, afterRun } = await afterLiveRun();
    const { code, screen } = await answer(inTerminal(['undo', journal], { cwd: dir.path, env }), 'n\r');
    expect(code, screen).toBe(0);
    expect(screen).toContain(`checking what undo of ${journal} would restore on sqlite ${db} …`);
    expect(screen).toContain(
      `${updatable.length} record(s) would be restored, 0 unchanged, 0 conflict(s), 0 failed (of ${updatable.length} journaled write(s)).`,
    );
    expect(screen).toContain(`Restore these records on sqlite ${db}? [y/N]`);
    expect(screen).toContain('cancelled: nothing was written.');
    expect(screen).not.toContain('Undo summary');
    expect(sha256File(db)).toBe(afterRun);
    expect(lockFiles(dir.path)).toEqual([]);
  });

  it('"y" restores every record', async () => {
    const { dir, db, env, journal } = await afterLiveRun();
    const { code, screen } = await answer(inTerminal(['undo', journal], { cwd: dir.path, env }), 'y\r');
    expect(code, screen).toBe(0);
    expect(screen).toMatch(new RegExp(`restored +${updatable.length}\\n`));
    expect(ids(db)).toEqual(ids(template));
  });

  it('Ctrl-C at the question restores nothing and exits 130', async () => {
    const { dir, db, env, journal, afterRun } = await afterLiveRun();
    const { code, screen } = await answer(inTerminal(['undo', journal], { cwd: dir.path, env }), '\x03');
    expect(code, screen).toBe(130);
    expect(screen).toContain('interrupted: nothing was written.');
    expect(screen).not.toContain('internal error');
    expect(sha256File(db)).toBe(afterRun);
    expect(lockFiles(dir.path)).toEqual([]);
  });

  it('--yes does not ask; a terminal shows the first 20 restored records and says how many more', async () => {
    const { dir, db, env, journal } = await afterLiveRun();
    const r = await inTerminal(['undo', journal, '--yes'], { cwd: dir.path, env }).done;
    const screen = stripTerminal(r.stdout + r.stderr);
    expect(r.code, screen).toBe(0);
    expect(screen).not.toContain('[y/N]');
    expect(screen.match(/^~ restored /gm)).toHaveLength(20);
    expect(screen).toContain(`… ${updatable.length - 20} more record line(s) not shown (the first 20 of each kind are above)`);
    expect(ids(db)).toEqual(ids(template));
  });

  it('--json with "n": stdout holds one object saying it was cancelled, with the counts it showed', async () => {
    const { dir, db, env, journal } = await afterLiveRun();
    const out = dir.file('out.json');
    const { code, screen } = await answer(inTerminal(['undo', journal, '--json'], { cwd: dir.path, env, stdoutTo: out }), 'n\r');
    expect(code, screen).toBe(0);
    const lines = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      cancelled: {
        message: 'cancelled: nothing was written',
        preview: { journal, dryRun: true, total: updatable.length, restored: updatable.length, conflicts: 0 },
      },
    });
    expect(ids(db).size).toBe(ids(template).size);
  });

  it('without a terminal it never asks', async () => {
    const { dir, db, env, journal } = await afterLiveRun();
    const r = await runCli(['undo', journal], { cwd: dir.path, env: { ...env, CI: undefined }, input: 'n\n' });
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).not.toContain('[y/N]');
    expect(ids(db)).toEqual(ids(template));
  });
});

describe('datafix run --json in a terminal', () => {
  it('"n" at the question: stdout holds one object saying it was cancelled, with the preview counts', async () => {
    const { dir, db, env } = copy();
    const before = sha256File(db);
    const out = dir.file('out.json');
    const { code, screen } = await answer(inTerminal(['run', SYNC_FIX, '--json'], { cwd: dir.path, env, stdoutTo: out }), 'n\r');
    expect(code, screen).toBe(0);
    expect(screen).toContain('cancelled: nothing was written.');
    const lines = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      cancelled: { message: 'cancelled: nothing was written', preview: { dryRun: true, updated: updatable.length, failed: 0 } },
    });
    expect(sha256File(db)).toBe(before);
  });
});

describe('datafix apply in a terminal', () => {
  async function planned() {
    const { dir, db, env } = copy();
    const plan = dir.file('p.plan.jsonl');
    const r = await runCli(['plan', SYNC_FIX, '--out', plan], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(0);
    return { dir, db, env, plan };
  }

  it('shows the counts and the target, asks, and "n" applies nothing (no journal, no state)', async () => {
    const { dir, db, env, plan } = await planned();
    const before = sha256File(db);
    const { code, screen } = await answer(inTerminal(['apply', plan], { cwd: dir.path, env }), 'n\r');
    expect(code, screen).toBe(0);
    expect(screen).toContain(`checking which records of ${plan} still match on sqlite ${db} …`);
    expect(screen).toContain(`${updatable.length} record(s) would be applied, 0 drifted, 0 failed (of ${updatable.length} planned).`);
    expect(screen).toContain(`Apply these changes to sqlite ${db}? [y/N]`);
    expect(screen).toContain('cancelled: nothing was written.');
    expect(sha256File(db)).toBe(before);
    expect(existsSync(dir.file('.datafix'))).toBe(false);
    expect(lockFiles(dir.path)).toEqual([]);
  });

  it('"y" applies, Ctrl-C exits 130 with nothing applied, --yes does not ask', async () => {
    const yes = await planned();
    const a = await answer(inTerminal(['apply', yes.plan], { cwd: yes.dir.path, env: yes.env }), 'y\r');
    expect(a.code, a.screen).toBe(0);
    expect(a.screen).toMatch(new RegExp(`applied +${updatable.length}\\n`));
    const fixed = ids(yes.db);

    const stop = await planned();
    const before = sha256File(stop.db);
    const c = await answer(inTerminal(['apply', stop.plan], { cwd: stop.dir.path, env: stop.env }), '\x03');
    expect(c.code, c.screen).toBe(130);
    expect(c.screen).toContain('interrupted: nothing was written.');
    expect(sha256File(stop.db)).toBe(before);

    const skip = await planned();
    const r = await inTerminal(['apply', skip.plan, '--yes'], { cwd: skip.dir.path, env: skip.env }).done;
    const screen = stripTerminal(r.stdout + r.stderr);
    expect(r.code, screen).toBe(0);
    expect(screen).not.toContain('[y/N]');
    expect(ids(skip.db)).toEqual(fixed);
  });

  it('apply --env loads the environment the plan was made with, and says so', async () => {
    const { dir, db, plan } = await planned();
    writeFileSync(dir.file('.env.prod'), `VEO3_DB_PATH=${db}\n`);
    const r = await runCli(['apply', plan, '--env', 'prod', '--json'], { cwd: dir.path, env: { VEO3_DB_PATH: undefined } });
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toContain('loaded .env.prod (1 variable(s) not already set)');
    expect(JSON.parse(r.stdout)).toMatchObject({ applied: updatable.length, drifted: 0 });
    expect(stateFiles(dir.path)).toEqual([]);
  });
});

describe('Ctrl-D (end of input) at the question', () => {
  it('is a no for run, undo and apply alike: "cancelled: nothing was written.", exit 0, nothing written', async () => {
    const ran = await afterLiveRun();
    const fresh = copy();
    const plan = fresh.dir.file('p.plan.jsonl');
    const made = await runCli(['plan', SYNC_FIX, '--out', plan], { cwd: fresh.dir.path, env: fresh.env });
    expect(made.code, show(made)).toBe(0);
    const asks = [
      { args: ['run', SYNC_FIX], at: fresh },
      { args: ['apply', plan], at: fresh },
      { args: ['undo', ran.journal], at: ran },
    ];
    for (const { args, at } of asks) {
      const before = sha256File(at.db);
      const { code, screen } = await answer(inTerminal(args, { cwd: at.dir.path, env: at.env }), '\x04');
      expect(code, `${args[0]}: ${screen}`).toBe(0);
      expect(screen, args[0]).toContain('cancelled: nothing was written.');
      expect(screen, args[0]).not.toContain('interrupted');
      expect(sha256File(at.db), args[0]).toBe(before);
      expect(lockFiles(at.dir.path), args[0]).toEqual([]);
    }
  });
});

describe('datafix undo --env', () => {
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  const seen: string[] = [];

  beforeAll(async () => {
    dynamo = await startDynalite();
    // Records the access key each request is signed with (the `Credential=` of its Authorization).
    proxy = await startCountingProxy(dynamo.endpoint, {
      fault: (request) => {
        if (request.operation === 'UpdateItem') seen.push(request.authorization);
        return undefined;
      },
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  it('connects with the credentials of .env.NAME, like run; a missing file is refused before anything is restored', async () => {
    const { items, updatable: videos } = videoDataset(24);
    await createMediaTable(dynamo.endpoint, 'undo-env');
    await seedItems(dynamo.endpoint, 'undo-env', items);
    const before = await scanRaw(dynamo.endpoint, 'undo-env');
    const dir = tmp();
    const env = dynamoEnv('undo-env', proxy.endpoint);
    const journal = dir.file('i2v.journal.jsonl');
    const run = await runCli(['run', I2V_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    expect(seen).toHaveLength(videos.length);

    const refused = await runCli(['undo', journal, '--env', 'staging'], { cwd: dir.path, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`error DF304: --env staging: cannot read ${dir.file('.env.staging')}`);
    expect(seen).toHaveLength(videos.length);

    writeFileSync(dir.file('.env.prod'), 'AWS_ACCESS_KEY_ID=AKIDFROMENVFILE\nAWS_SECRET_ACCESS_KEY=from-the-env-file\n');
    seen.length = 0;
    const undo = await runCli(['undo', journal, '--env', 'prod', '--json'], { cwd: dir.path, env });
    expect(undo.code, show(undo)).toBe(0);
    expect(undo.stderr).toContain('loaded .env.prod (2 variable(s) not already set)');
    expect(JSON.parse(undo.stdout)).toMatchObject({ restored: videos.length, conflicts: 0 });
    expect(seen).toHaveLength(videos.length);
    for (const auth of seen) expect(auth).toContain('Credential=AKIDFROMENVFILE/');
    expect(await scanRaw(dynamo.endpoint, 'undo-env')).toEqual(before);
  });
});
