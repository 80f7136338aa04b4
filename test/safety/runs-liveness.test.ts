/**
 * `datafix runs` tells a run that is running from one whose process died: the state of both says
 * `running`; the lock's holder (its pid on this host) decides. A live run is listed as running
 * with its process; a killed one as interrupted and resumable, naming the process that is gone.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createGeneratedVeo3Db, killLeftoverProcesses, onlyState, SYNC_FIX, show, startCli, waitFor } from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

let template: string;
beforeAll(() => {
  template = shared().file('template.db');
  createGeneratedVeo3Db(template, 3000);
});

/** The status line `datafix runs` prints for the one run in `cwd`. */
async function statusLine(cwd: string, env: Record<string, string>): Promise<string> {
  const r = await runCli(['runs'], { cwd, env });
  expect(r.code, show(r)).toBe(0);
  const lines = r.stdout.split('\n').filter((l) => /^\d{4}-.* sync-media-generation-ids /.test(l));
  expect(lines).toHaveLength(1);
  return (lines[0] as string).replace(/^\S+ \S+ {2}sync-media-generation-ids {2}/, '');
}

it('a run whose process is alive is "running" with its process; once killed it is "interrupted (resumable)", its process gone', async () => {
  const dir = tmp();
  const db = dir.file('veo3.db');
  copyFileSync(template, db);
  const env = { VEO3_DB_PATH: db };
  const spec = dir.write('sync.yaml', readFileSync(SYNC_FIX, 'utf8').replace(/pageSize: 200\b/, 'pageSize: 20'));
  const run = startCli(['run', spec, '--json'], { cwd: dir.path, env });
  await waitFor('the first checkpoint', () => (onlyState(dir.path)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
  run.child.kill('SIGSTOP');
  expect(onlyState(dir.path)?.status).toBe('running');
  expect(await statusLine(dir.path, env)).toBe(`running (process ${run.pid} on ${hostname()} is alive)`);

  run.child.kill('SIGKILL');
  await run.done;
  // The state still says running: only the dead lock holder tells.
  expect(onlyState(dir.path)?.status).toBe('running');
  expect(await statusLine(dir.path, env)).toBe(`interrupted (resumable: its process ${run.pid} on ${hostname()} is gone)`);

  const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 120_000 });
  expect(resumed.code, show(resumed)).toBe(0);
  expect(await statusLine(dir.path, env)).toBe('done');
});
