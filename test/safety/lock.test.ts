/**
 * Acceptance 4: one writer per target. A second live run while the first is in progress exits
 * 2 saying so; a lock left by a dead process is named as stale with the way out
 * (`datafix unlock SPEC`), which clears it; `--resume` takes over a stale lock by itself.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
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
  onlyState,
  SYNC_FIX,
  show,
  startCli,
  tableNames,
  videoDataset,
  waitFor,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('a run in progress holds the lock (DynamoDB behind a slow endpoint)', () => {
  let dynamo: RunningDynalite;
  let slow: CountingProxy;
  const table = 'media-lock';
  let data: ReturnType<typeof videoDataset>;

  beforeAll(async () => {
    dynamo = await startDynalite();
    slow = await startCountingProxy(dynamo.endpoint, { latencyMs: 40 });
    await createMediaTable(dynamo.endpoint, table);
    data = videoDataset(600);
    await seedItems(dynamo.endpoint, table, data.items);
  });
  afterAll(async () => {
    await slow?.stop();
    await dynamo?.stop();
  });

  it('a second live run of the same fix on the same target exits 2 and says another run is in progress', async () => {
    const dir = tmp();
    const env = dynamoEnv(table, slow.endpoint);
    const first = startCli(['run', I2V_FIX, '--json'], { cwd: dir.path, env });
    await waitFor('the first run to take its lock', () => lockFiles(dir.path).length === 1 && onlyState(dir.path), { intervalMs: 5 });
    const lockFile = lockFiles(dir.path)[0] as string;
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: first.pid, host: hostname(), spec: I2V_FIX });

    // While it runs: a second live run, `unlock`, and a dry run (which needs no lock).
    // The same server spelled otherwise: localhost, IPv4 shorthand, a zero-padded port.
    const port = new URL(slow.endpoint).port;
    const spellings = [
      `http://localhost:${port}`,
      `http://127.1:${port}`,
      `http://127.0.0.1:0${port}/`,
      `http://0.0.0.0:${port}`,
      `http://[::ffff:127.0.0.1]:${port}`,
      `http://127.0.0.1:${port}/dynamodb`,
    ];
    const [second, unlock, dry, resume, ...spelled] = await Promise.all([
      runCli(['run', I2V_FIX, '--json'], { cwd: dir.path, env }),
      runCli(['unlock', I2V_FIX], { cwd: dir.path, env }),
      runCli(['run', I2V_FIX, '--dry-run', '--json'], { cwd: dir.path, env }),
      runCli(['run', I2V_FIX, '--resume', '--json'], { cwd: dir.path, env }),
      ...spellings.map((endpoint) => runCli(['run', I2V_FIX, '--json'], { cwd: tmp().path, env: dynamoEnv(table, endpoint) })),
    ]);
    for (const r of spelled) {
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain(`: process ${first.pid} on ${hostname()} (i2v-thumbnails), started `);
    }
    expect(first.child.exitCode, 'the first run must still be running').toBeNull();

    expect(second.code, show(second)).toBe(2);
    expect(second.stderr).toContain(`error DF710: another process is writing dynamodb ${table} (`);
    expect(second.stderr).toContain(`: process ${first.pid} on ${hostname()} (i2v-thumbnails), started `);
    expect(second.stderr).toContain(`datafix unlock ${I2V_FIX}`);
    expect(jsonSummary(second)).toMatchObject({ error: { code: 'DF710' } });
    // The refused run started no journal of its own.
    expect(readdirSync(dir.file('.datafix', 'runs')).filter((f) => f.endsWith('.journal.jsonl'))).toHaveLength(1);

    // `unlock` refuses to clear the lock of a live run.
    expect(unlock.code, show(unlock)).toBe(2);
    expect(unlock.stderr).toContain(`error DF712: the lock is not stale: process ${first.pid} is still running`);
    expect(existsSync(lockFile)).toBe(true);

    expect(dry.code, show(dry)).toBe(0);
    // --resume takes over only a stale lock, never a live run's.
    expect(resume.code, show(resume)).toBe(2);
    expect(resume.stderr).toContain(`error DF710: another process is writing dynamodb ${table} (`);

    // The first run was not disturbed: stopped with Ctrl-C it finishes its page cleanly and releases its lock.
    first.child.kill('SIGINT');
    const done = await first.done;
    expect(done.code, show(done)).toBe(130);
    expect(jsonSummary(done)).toMatchObject({ failed: 0 });
    expect(lockFiles(dir.path)).toEqual([]);
  });
});

describe('stale locks (SQLite)', () => {
  let template: string;
  let expected: Map<string, string | null>;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected } = createGeneratedVeo3Db(template, 800));
  });

  function copy() {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    return { dir, db, env: { VEO3_DB_PATH: db } };
  }

  /** The lock file of a database: next to it, named after it (as a user finds it). */
  function lockPathFor(db: string): string {
    return `${realpathSync(db)}.datafix.lock`;
  }

  it('a lock from another pid namespace (a container with this host name) is not judged by its pid: run exits 2 (DF710), unlock needs --force', async () => {
    const { dir, db, env } = copy();
    const lock = lockPathFor(db);
    // The pid is not running here, but it names a process in a namespace this one cannot see.
    const pid = deadPid();
    const lease = {
      pid,
      host: hostname(),
      pidNamespace: 'pid:[1]',
      startedAt: '2025-01-01T00:00:00.000Z',
      spec: SYNC_FIX,
      fix: 'sync-media-generation-ids',
      purpose: 'run',
    };
    writeFileSync(lock, JSON.stringify(lease));
    const before = dumpSqlite(db);

    const refused = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env });
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain(`error DF710: another process is writing sqlite ${db}`);
    const unlock = await runCli(['unlock', SYNC_FIX], { cwd: dir.path, env });
    expect(unlock.code, show(unlock)).toBe(2);
    expect(unlock.stderr).toContain(
      `error DF712: the lock is not stale: it was taken by process ${pid} in another pid namespace (pid:[1], a container sharing this host name), which this process cannot check. Use --force only if you are sure no run is active`,
    );
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(lease);
    expect(dumpSqlite(db)).toEqual(before);

    const forced = await runCli(['unlock', SYNC_FIX, '--force'], { cwd: dir.path, env });
    expect(forced.code, show(forced)).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  it('a stale lock left by an apply says to clear it and run the apply again (apply has no --resume)', async () => {
    const { dir, db, env } = copy();
    const pid = deadPid();
    writeFileSync(
      lockPathFor(db),
      JSON.stringify({ pid, host: hostname(), startedAt: '2025-01-01T00:00:00.000Z', spec: SYNC_FIX, purpose: 'apply', fix: 'sync' }),
    );
    const refused = await runCli(['run', SYNC_FIX], { cwd: dir.path, env });
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('error DF711: a stale lock is left by');
    expect(refused.stderr).toContain(`then run that datafix apply again`);
    expect(refused.stderr).not.toContain('--resume');
  });

  it('a lock left by a dead process: a plain run exits 2 naming it and `datafix unlock`; unlock clears it; the run then works', async () => {
    const { dir, db, env } = copy();
    const lock = lockPathFor(db);
    const pid = deadPid();
    writeFileSync(lock, JSON.stringify({ pid, host: hostname(), startedAt: '2025-01-01T00:00:00.000Z', spec: SYNC_FIX }));
    const before = dumpSqlite(db);

    const refused = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env });
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain(`error DF711: a stale lock is left by process ${pid} on ${hostname()}`);
    expect(refused.stderr).toContain('which is no longer running');
    expect(refused.stderr).toContain(`\`datafix unlock ${SYNC_FIX}\``);
    expect(dumpSqlite(db)).toEqual(before);
    expect(existsSync(lock)).toBe(true);

    const unlock = await runCli(['unlock', SYNC_FIX], { cwd: dir.path, env });
    expect(unlock.code, show(unlock)).toBe(0);
    expect(unlock.stdout).toBe(`cleared the lock on sqlite ${db}\n`);
    expect(existsSync(lock)).toBe(false);
    const again = await runCli(['unlock', SYNC_FIX], { cwd: dir.path, env });
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toBe(`no lock is held on sqlite ${db}\n`);

    const run = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
    expect(lockFiles(dir.path)).toEqual([]);
  });

  it('the lock of a run killed with SIGKILL is stale: a plain run refuses, --resume takes it over (past a dead takeover marker) and finishes', async () => {
    const dir = tmp();
    const db = dir.file('big.db');
    const { expected: bigExpected } = createGeneratedVeo3Db(db, 1200);
    const env = { VEO3_DB_PATH: db };
    const victim = startCli(['run', SYNC_FIX], { cwd: dir.path, env });
    await waitFor('a checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
    victim.child.kill('SIGKILL');
    await victim.done;
    const [lock] = lockFiles(dir.path);
    expect(lock).toBeDefined();
    expect(JSON.parse(readFileSync(lock as string, 'utf8'))).toMatchObject({ pid: victim.pid });

    const plain = await runCli(['run', SYNC_FIX], { cwd: dir.path, env });
    expect(plain.code, show(plain)).toBe(2);
    expect(plain.stderr).toContain(`error DF711: a stale lock is left by process ${victim.pid}`);
    expect(plain.stderr).toContain('Continue that run with --resume');
    expect(plain.stderr).toContain(`\`datafix unlock ${SYNC_FIX}\``);

    // A takeover marker left by a process killed mid-takeover (its pid is gone) does not block
    // the next takeover for good.
    const marker = `${lock}.takeover`;
    writeFileSync(marker, JSON.stringify({ pid: deadPid(), host: hostname(), at: '2025-01-01T00:00:00.000Z' }));

    const resumed = await runCli(['run', SYNC_FIX, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
    expect(resumed.code, show(resumed)).toBe(0);
    const ids = generationIds(db);
    for (const [id, want] of bigExpected) expect(ids.get(id)?.mgid, id).toBe(want);
    expect(lockFiles(dir.path)).toEqual([]);
    expect(existsSync(marker)).toBe(false);
    expect(tableNames(db)).not.toContain('_datafix_checkpoints');
  });

  it('a stale lock on another database does not block this one; one of another fix on this database does (DF711)', async () => {
    const { dir, db, env } = copy();
    const stale = (spec: string) => JSON.stringify({ pid: deadPid(), host: hostname(), startedAt: '2025-01-01T00:00:00.000Z', spec });
    // Another database in the same directory: its lock does not concern this one.
    const other = dir.file('other.db.datafix.lock');
    writeFileSync(other, stale(SYNC_FIX));
    const run = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    expect(existsSync(other)).toBe(true);

    // Any fix writing this database holds the one lock of the database.
    copyFileSync(template, db);
    const before = dumpSqlite(db);
    writeFileSync(lockPathFor(db), stale('fixes/another-fix.yaml'));
    const refused = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env });
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain('error DF711: a stale lock is left by process');
    expect(refused.stderr).toContain('`datafix unlock fixes/another-fix.yaml`');
    expect(dumpSqlite(db)).toEqual(before);
  });
});
