/**
 * One target, one writer, whatever the spelling: the lock follows the target's real identity
 * (the resolved SQLite file; the DynamoDB table, region and endpoint), not the spec's text, its
 * tuning settings or the working directory. Runs, resumes, undos and applies all take it; a
 * stale lock is taken over by one process only; scan segments of one split run side by side and
 * exclude everything else. `--segment` on a source that cannot be split is refused.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, linkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dumpSqlite,
  dynamoEnv,
  generationIds,
  I2V_FIX,
  jsonSummary,
  killLeftoverProcesses,
  lockFiles,
  markItemsSpec,
  markItemsTable,
  onlyState,
  pauseBetweenTransactions,
  SYNC_FIX,
  scanRaw,
  show,
  startCli,
  syncSpecWithBusyTimeout,
  videoDataset,
  waitFor,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

describe('SQLite: the lock is on the database file', () => {
  let template: string;
  let expected: Map<string, string | null>;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected } = createGeneratedVeo3Db(template, 1200));
  });

  function expectEveryRowFixed(db: string): void {
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
  }

  it('while a run holds it: a run, resume, undo and apply through a symlink, with another busyTimeoutMs, from another directory all exit 2 (DF710)', async () => {
    const first = tmp();
    const db = first.file('veo3.db');
    copyFileSync(template, db);
    const other = tmp();
    const link = other.file('same.db');
    symlinkSync(db, link);
    const spec = syncSpecWithBusyTimeout(other, 250);
    const env = { VEO3_DB_PATH: link };
    const plan = other.file('saved.plan.jsonl');
    const planned = await runCli(['plan', spec, '--out', plan], { cwd: other.path, env });
    expect(planned.code, show(planned)).toBe(0);

    const holder = startCli(['run', SYNC_FIX], { cwd: first.path, env: { VEO3_DB_PATH: db } });
    await waitFor('the first checkpoint', () => (onlyState(first.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
    // Paused between two transactions: alive, holding its lock, holding no SQLite lock.
    await pauseBetweenTransactions(holder.child, db);
    const journal = onlyState(first.path)?.journal as string;
    const before = dumpSqlite(db);

    const attempts = {
      run: await runCli(['run', spec, '--json'], { cwd: other.path, env }),
      resume: await runCli(['run', spec, '--resume'], { cwd: other.path, env }),
      undo: await runCli(['undo', journal], { cwd: other.path }),
      apply: await runCli(['apply', plan], { cwd: other.path, env }),
    };
    for (const [what, r] of Object.entries(attempts)) {
      expect(r.code, `${what}: ${show(r)}`).toBe(2);
      expect(r.stderr, what).toContain(`error DF710: another process is writing sqlite `);
      expect(r.stderr, what).toContain(`process ${holder.pid} on ${hostname()} (sync-media-generation-ids)`);
    }
    expect(dumpSqlite(db)).toEqual(before);

    holder.child.kill('SIGCONT');
    const done = await holder.done;
    expect(done.code, show(done)).toBe(0);
    expectEveryRowFixed(db);
    expect(lockFiles(first.path)).toEqual([]);
  });

  it('a database with a second hard link: run, apply and undo under either name exit 2 (DF716) and write nothing; a dry run still works', async () => {
    const first = tmp();
    const db = first.file('veo3.db');
    copyFileSync(template, db);
    const env = { VEO3_DB_PATH: db };
    // A journal and a plan made before the link, to undo and apply under it.
    const run = await runCli(['run', SYNC_FIX, '--limit', '5', '--json'], { cwd: first.path, env });
    expect(run.code, show(run)).toBe(0);
    const journal = onlyState(first.path)?.journal as string;
    const plan = first.file('p.plan.jsonl');
    expect((await runCli(['plan', SYNC_FIX, '--out', plan], { cwd: first.path, env })).code).toBe(0);

    const other = tmp();
    const link = other.file('hard.db');
    linkSync(db, link);
    const before = dumpSqlite(db);
    for (const [args, path, cwd] of [
      [['run', SYNC_FIX], link, other.path],
      [['run', SYNC_FIX], db, first.path],
      [['apply', plan], db, first.path],
      [['undo', journal], db, first.path],
    ] as const) {
      const r = await runCli([...args], { cwd, env: { VEO3_DB_PATH: path } });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain(`error DF716: ${realpathSync(db === path ? db : link)} has 2 hard links`);
    }
    expect(dumpSqlite(db)).toEqual(before);
    expect(lockFiles(first.path)).toEqual([]);
    expect(lockFiles(other.path)).toEqual([]);
    const dry = await runCli(['run', SYNC_FIX, '--dry-run', '--json'], { cwd: other.path, env: { VEO3_DB_PATH: link } });
    expect(dry.code, show(dry)).toBe(0);

    rmSync(link);
    const after = await runCli(['run', SYNC_FIX, '--json'], { cwd: first.path, env });
    expect(after.code, show(after)).toBe(0);
    expectEveryRowFixed(db);
  });

  it('a lock file that cannot be written (file size limit): DF715, exit 2, no lock left to block the next run', async () => {
    const dir = tmp();
    const db = dir.file('small.db');
    createGeneratedVeo3Db(db, 50);
    const before = dumpSqlite(db);
    const env = { VEO3_DB_PATH: db };
    // RLIMIT_FSIZE 0: the lock file is created, and its first byte cannot be written.
    const blocked = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env, fileSizeLimitKiB: 0 });
    expect(blocked.code, show(blocked)).toBe(2);
    expect(blocked.stderr).toContain(`error DF715: cannot write the lock file ${db}.datafix.lock: `);
    expect(lockFiles(dir.path)).toEqual([]);
    expect(dumpSqlite(db)).toEqual(before);
    const next = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env });
    expect(next.code, show(next)).toBe(0);
  });

  it('three --resume at once on one stale lock: exactly one takes it over and finishes, the others exit 2', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    const env = { VEO3_DB_PATH: db };
    const victim = startCli(['run', SYNC_FIX], { cwd: dir.path, env });
    await waitFor('the first checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
    victim.child.kill('SIGKILL');
    await victim.done;
    expect(lockFiles(dir.path)).toHaveLength(1);

    const results = await Promise.all(
      [0, 1, 2].map(() => runCli(['run', SYNC_FIX, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 })),
    );
    const codes = results.map((r) => r.code).sort();
    expect(codes, results.map(show).join('\n')).toEqual([0, 2, 2]);
    for (const r of results.filter((x) => x.code === 2)) expect(r.stderr).toMatch(/error DF7(10|14|21): /);
    expectEveryRowFixed(db);
    expect(lockFiles(dir.path)).toEqual([]);
  });
});

describe('DynamoDB: segments of a scan', () => {
  const N = 120;
  let dynamo: RunningDynalite;
  let slow: CountingProxy;
  let n = 0;

  beforeAll(async () => {
    dynamo = await startDynalite();
    slow = await startCountingProxy(dynamo.endpoint, { latencyMs: 30 });
  });
  afterAll(async () => {
    await slow?.stop();
    await dynamo?.stop();
  });

  function freshTable(): Promise<string> {
    return markItemsTable(dynamo.endpoint, `items-${++n}`, N);
  }

  it('a segment 0 of 2 in progress excludes a whole-table run and segment 0 of 4 (DF710); segment 1 of 2 runs beside it; every item is written once', async () => {
    const table = await freshTable();
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const env = { TABLE: table, ENDPOINT: slow.endpoint };
    const seg0 = startCli(['run', spec, '--segment', '0', '--total-segments', '2', '--json'], { cwd: dir.path, env });
    await waitFor('segment 0 to take its lock and write a page', () => (onlyState(dir.path)?.pages ?? 0) >= 1, {
      timeoutMs: 30_000,
      intervalMs: 5,
    });
    seg0.child.kill('SIGSTOP');
    const other = tmp();
    const whole = await runCli(['run', spec, '--json'], { cwd: other.path, env });
    const quarter = await runCli(['run', spec, '--segment', '0', '--total-segments', '4', '--json'], { cwd: other.path, env });
    for (const r of [whole, quarter]) {
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain(`error DF710: another process is writing dynamodb ${table}`);
      expect(r.stderr).toContain(`process ${seg0.pid} on ${hostname()} (mark-items)`);
    }
    const seg1 = await runCli(['run', spec, '--segment', '1', '--total-segments', '2', '--json'], { cwd: other.path, env });
    expect(seg1.code, show(seg1)).toBe(0);

    seg0.child.kill('SIGCONT');
    const done = await seg0.done;
    expect(done.code, show(done)).toBe(0);
    expect((jsonSummary(done).updated as number) + (jsonSummary(seg1).updated as number)).toBe(N);
    const items = await scanRaw(dynamo.endpoint, table);
    expect(items.map((i) => i.copyOfN?.N)).toEqual(items.map((i) => i.n?.N));
    expect(items).toHaveLength(N);
    expect(lockFiles(dir.path)).toEqual([]);
  });

  it('a whole-table run in progress excludes a segmented run (DF710)', async () => {
    const table = await freshTable();
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const env = { TABLE: table, ENDPOINT: slow.endpoint };
    const whole = startCli(['run', spec, '--json'], { cwd: dir.path, env });
    await waitFor('the whole-table run to write a page', () => (onlyState(dir.path)?.pages ?? 0) >= 1, {
      timeoutMs: 30_000,
      intervalMs: 5,
    });
    whole.child.kill('SIGSTOP');
    const seg = await runCli(['run', spec, '--segment', '1', '--total-segments', '2', '--json'], { cwd: tmp().path, env });
    expect(seg.code, show(seg)).toBe(2);
    expect(seg.stderr).toContain(`error DF710: another process is writing dynamodb ${table}`);
    whole.child.kill('SIGCONT');
    const done = await whole.done;
    expect(done.code, show(done)).toBe(0);
    expect(jsonSummary(done)).toMatchObject({ total: N, updated: N });
  });

  it('--segment on a DynamoDB query exits 2 (DF727) and writes nothing', async () => {
    const table = 'media-query';
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(dynamo.endpoint, table, videoDataset(50).items);
    const before = await scanRaw(dynamo.endpoint, table);
    const r = await runCli(['run', I2V_FIX, '--segment', '0', '--total-segments', '2', '--json'], {
      cwd: tmp().path,
      env: dynamoEnv(table, dynamo.endpoint),
    });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain('error DF727: --segment splits a DynamoDB scan, but i2v-thumbnails reads with source.query');
    expect(jsonSummary(r)).toMatchObject({ error: { code: 'DF727', file: null } });
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
  });
});

describe('--segment on SQLite', () => {
  it('exits 2 (DF727), live or dry run, and writes nothing', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    createGeneratedVeo3Db(db, 50);
    const before = dumpSqlite(db);
    for (const extra of [[], ['--dry-run']]) {
      const r = await runCli(['run', SYNC_FIX, '--segment', '0', '--total-segments', '2', ...extra], {
        cwd: dir.path,
        env: { VEO3_DB_PATH: db },
      });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain(
        'error DF727: --segment splits a DynamoDB scan, but sync-media-generation-ids reads a SQLite table, which cannot be split: every process would handle every record. Run it once, without --segment and --total-segments',
      );
      expect(dumpSqlite(db)).toEqual(before);
    }
  });
});

describe('segments started at the same moment', () => {
  it("a segment's lock file seen while its writer is still writing it is waited for, not taken as a conflict", async () => {
    const dir = tmp();
    const { TargetLock, lockFile } = await import('../../src/safety/lock.js');
    const target = { backend: 'sqlite' as const, path: dir.write('app.db', ''), busyTimeoutMs: 1000 };
    const other = lockFile(target, { index: 0, total: 2 });
    const lease = {
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      spec: 'f.yaml',
      fix: 'f',
      purpose: 'run',
      segment: { index: 0, total: 2 },
      nonce: 'n',
      token: 1,
    };
    // The other segment's process has created its lock file and writes it 60 ms later, as
    // createExclusive does (open, then write), on a machine slow at that moment.
    const writer = spawn(process.execPath, [
      '-e',
      `const fs = require('node:fs'); fs.writeFileSync(${JSON.stringify(other)}, ''); process.stdout.write('created\\n'); setTimeout(() => fs.writeFileSync(${JSON.stringify(other)}, ${JSON.stringify(JSON.stringify(lease))}), 60);`,
    ]);
    await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
    const mine = TargetLock.acquire(target, { fix: 'f', spec: 'f.yaml', purpose: 'run', segment: { index: 1, total: 2 } });
    mine.release();
    await new Promise((resolve) => writer.once('exit', resolve));
    rmSync(other, { force: true });
  });
});
