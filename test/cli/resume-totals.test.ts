/**
 * A live run whose `--diff-file` the disk stops filling (DF747, made by failing the diff file's
 * writes at the file-system seam) stops as on Ctrl-C: the page in flight is finished and
 * checkpointed, so a resumed run's whole-run totals equal an independent count of the data, and
 * `datafix runs` lists the whole run's totals, not only the last process's part.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createGeneratedVeo3Db, jsonSummary, onlyState, SYNC_FIX, show, sqliteAll } from '../safety/support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
const ROWS = 1000;
let template: string;

beforeAll(() => {
  template = shared().file('template.db');
  createGeneratedVeo3Db(template, ROWS);
});

/** Preloaded into the CLI: its diff file's writes fail as on a full disk. */
const FULL_DISK = fileURLToPath(new URL('../helpers/full-disk-diff-file.mjs', import.meta.url));

/** Counts read from the database itself: rows the fix reads (raw_response set, no id yet), and rows with an id. */
function census(db: string): { readable: number; withId: number } {
  const [r] = sqliteAll<{ readable: number; withId: number }>(
    db,
    `SELECT sum(raw_response IS NOT NULL AND media_generation_id IS NULL) AS readable,
            sum(media_generation_id IS NOT NULL) AS withId FROM veo3_video_generations`,
  );
  return r as { readable: number; withId: number };
}

it('a disk that fills with the diff file stops the run after a whole page; --resume and `datafix runs` give the whole run totals of the data', async () => {
  const dir = tmp();
  const db = dir.file('veo3.db');
  copyFileSync(template, db);
  const env = { VEO3_DB_PATH: db };
  const before = census(db);

  // The first chunk of lines (64 KiB) is written; from the second on, the disk is full.
  const first = await runCli(['run', SYNC_FIX, '--verbose', '--diff-file', 'diffs.jsonl'], {
    cwd: dir.path,
    env: { ...env, NODE_OPTIONS: `--import=${FULL_DISK}`, DATAFIX_TEST_DIFF_WRITES: '1', DATAFIX_TEST_DIFF_TORN: '1' },
  });
  expect(first.code, show(first)).toBe(2);
  expect(first.stderr).toContain(`error DF747: cannot write --diff-file ${dir.file('diffs.jsonl')}: ENOSPC`);
  expect(first.stderr).toContain(`continue with: datafix run ${SYNC_FIX} --resume --diff-file diffs.jsonl`);
  // Stopped after a whole page, and the state says so: its counts cover what the target holds.
  const state = onlyState(dir.path) as (ReturnType<typeof onlyState> & { counts?: Record<string, number> }) | undefined;
  expect(state?.status).toBe('interrupted');
  expect(state?.records).toBe((state?.pages ?? 0) * 200);
  expect(state?.counts?.total).toBe(state?.records);
  expect(state?.counts?.updated).toBe(census(db).withId - before.withId);

  const resumed = await runCli(['run', SYNC_FIX, '--resume', '--json', '--diff-file', 'diffs.jsonl'], { cwd: dir.path, env });
  expect(resumed.code, show(resumed)).toBe(0);
  // The line the full disk tore is cut off: the file is one JSON object per line, two headers.
  const lines = readFileSync(dir.file('diffs.jsonl'), 'utf8').trimEnd().split('\n');
  const parsed = lines.map((l, i) => {
    try {
      return JSON.parse(l) as { type?: string };
    } catch {
      throw new Error(`diffs.jsonl line ${i + 1} is not JSON: ${l.slice(0, 80)}`);
    }
  });
  expect(parsed.filter((p) => p.type === 'datafix-diffs').length).toBe(2);
  const after = census(db);
  const updated = after.withId - before.withId;
  const wholeRun = jsonSummary(resumed).wholeRun as { total: number; updated: number; skipped: number; failed: number };
  expect(wholeRun.total).toBe(before.readable);
  expect(wholeRun.updated).toBe(updated);
  expect(wholeRun.updated + wholeRun.skipped + wholeRun.failed).toBe(before.readable);

  const runs = await runCli(['runs'], { cwd: dir.path, env });
  expect(runs.code, show(runs)).toBe(0);
  expect(runs.stdout).toContain(
    `counts   read ${before.readable} · updated ${updated} · skipped ${wholeRun.skipped} · failed ${wholeRun.failed} · `,
  );
});
