/**
 * The SQLite comparison: datafix's sync fix (library call, and once through the CLI) against the
 * hand-written better-sqlite3 script, each on its own fresh copy of one generated database, each
 * in its own process, alternating which side goes first. Ends by checking that both sides left
 * identical tables (apart from the updated_at timestamps themselves).
 */
import { copyFileSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { flushToDisk, ROOT, removeDb, runNode, runWorker, sleep } from './proc.js';

const FIX = join(ROOT, 'fixes', 'sync-media-generation-ids.yaml');
const WORKER = join(ROOT, 'bench', 'sqlite-worker.js');
const ORIGINAL_UPDATED_AT = '2025-06-01T10:00:00.000Z';

/** A fresh copy of the generated database, flushed to disk before anyone touches it. */
async function freshCopy(source, file) {
  removeDb(file);
  copyFileSync(source, file);
  flushToDisk(file);
  await sleep(200);
}

function sameCounts(c, expected) {
  return c.total === expected.selected && c.updated === expected.updated && c.skipped === expected.skipped && c.failed === expected.failed;
}

/**
 * Compares two finished databases row by row on the primary key: every column equal, and the
 * same rows touched (updated_at changed), the timestamps themselves aside. Also checks the end
 * state against what the generator says the fix must do.
 */
export function verifySame(aPath, bPath, expected) {
  const db = new Database(aPath, { readonly: true });
  try {
    db.prepare('ATTACH DATABASE ? AS other').run(bPath);
    const t = 'veo3_video_generations';
    const rows = db.prepare(`SELECT (SELECT count(*) FROM main.${t}) AS a, (SELECT count(*) FROM other.${t}) AS b`).get();
    const differing = db
      .prepare(
        `SELECT count(*) AS n FROM main.${t} x LEFT JOIN other.${t} y ON y.id = x.id
         WHERE y.id IS NULL
            OR x.media_generation_id IS NOT y.media_generation_id
            OR x.raw_response IS NOT y.raw_response OR x.prompt IS NOT y.prompt
            OR x.status IS NOT y.status OR x.created_at IS NOT y.created_at
            OR (x.updated_at = @orig) IS NOT (y.updated_at = @orig)`,
      )
      .get({ orig: ORIGINAL_UPDATED_AT }).n;
    const state = db
      .prepare(
        `SELECT
           sum(media_generation_id IS NOT NULL AND updated_at <> @orig) AS filled,
           sum(media_generation_id LIKE 'EXISTING-%' AND updated_at = @orig) AS kept,
           sum(raw_response IS NOT NULL AND media_generation_id IS NULL AND updated_at = @orig) AS leftNull
         FROM main.${t}`,
      )
      .get({ orig: ORIGINAL_UPDATED_AT });
    const ok =
      rows.a === rows.b &&
      differing === 0 &&
      state.filled === expected.updated &&
      state.kept === (expected.byKind.already_set ?? 0) &&
      state.leftNull === expected.skipped + expected.failed;
    return { ok, rows: rows.a, differing, ...state };
  } finally {
    db.close();
  }
}

/** Whether a dry run's copy is exactly as generated: no row written, no checkpoint table added. */
export function verifyUntouched(path, expected) {
  const db = new Database(path, { readonly: true });
  try {
    const t = 'veo3_video_generations';
    const state = db
      .prepare(
        `SELECT count(*) AS rows, sum(updated_at <> @orig) AS touched,
                sum(media_generation_id IS NOT NULL) AS withId FROM ${t}`,
      )
      .get({ orig: ORIGINAL_UPDATED_AT });
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get().n;
    const ok = state.rows === expected.rows && state.touched === 0 && state.withId === (expected.byKind.already_set ?? 0) && tables === 1;
    return { ok, ...state, tables };
  } finally {
    db.close();
  }
}

/**
 * Runs `rounds` rounds of each pair [datafix side, hand-written side] (order alternating) on
 * copies of `source` under `dir`, then, when `cli` is set, one CLI run. Returns every run by side
 * plus the verification: the live sides left identical tables, the dry sides left theirs untouched.
 */
export async function benchSqlite({ source, expected, dir, rounds, cli, log, pairs = [['datafix', 'baseline']] }) {
  const runs = {};
  const file = (side) => join(dir, `${side}.db`);
  for (let r = 0; r < rounds; r++) {
    for (const pair of pairs) {
      for (const side of r % 2 === 0 ? pair : [...pair].reverse()) {
        await freshCopy(source, file(side));
        const res = await runWorker([WORKER, side, file(side)]);
        if (!sameCounts(res.counts, expected)) {
          throw new Error(`${side} counted ${JSON.stringify(res.counts)}, expected ${JSON.stringify(expected)}`);
        }
        runs[side] = [...(runs[side] ?? []), res];
        rmSync(join(dir, '.datafix'), { recursive: true, force: true });
        const journal = res.journalBytes ? `, journal ${(res.journalBytes / 2 ** 20).toFixed(1)} MiB` : '';
        log(
          `    ${side.padEnd(12)} round ${r + 1}: ${(res.wallMs / 1000).toFixed(2)} s, peak RSS ${(res.maxRssKb / 1024).toFixed(0)} MiB${journal}`,
        );
      }
    }
  }
  // The last copy of each side is still there: compare them.
  const verification = { ok: true };
  if (runs.datafix && runs.baseline) {
    verification.live = verifySame(file('datafix'), file('baseline'), expected);
    verification.ok &&= verification.live.ok;
    log(`    verify datafix vs baseline: ${verification.live.ok ? 'identical' : 'DIFFERENT'} (${JSON.stringify(verification.live)})`);
  }
  for (const side of ['datafix-dry', 'baseline-dry', 'baseline-dry-mapped'].filter((s) => runs[s])) {
    verification[side] = verifyUntouched(file(side), expected);
    verification.ok &&= verification[side].ok;
    log(`    verify ${side} left the table untouched: ${verification[side].ok ? 'yes' : 'NO'}`);
  }
  for (const side of Object.keys(runs).filter((s) => s !== 'baseline')) removeDb(file(side));

  let cliRun;
  if (cli) {
    await freshCopy(source, file('cli'));
    const rssFile = join(dir, 'cli.rss');
    const logFile = join(dir, 'cli.log');
    // The CLI journals every live run and takes a lock under ./.datafix: run it inside the work
    // dir so both land there and are removed with it.
    const r = await runNode(
      [
        '--import',
        pathToFileURL(join(ROOT, 'bench', 'lib', 'rss-probe.js')).href,
        join(ROOT, 'bin', 'datafix.js'),
        'run',
        FIX,
        '--json',
        '--yes',
        '--journal',
        join(dir, 'cli.journal.jsonl'),
      ],
      { cwd: dir, env: { ...process.env, VEO3_DB_PATH: file('cli'), BENCH_RSS_FILE: rssFile }, stderrFile: logFile },
    );
    const summary = r.json;
    if (!summary || !sameCounts(summary, expected)) {
      throw new Error(`the CLI run exited ${r.code} with ${r.stdout.slice(0, 500)}; see ${logFile}`);
    }
    const cliVerification = verifySame(file('cli'), file('baseline'), expected);
    cliRun = {
      processMs: r.processMs,
      exitCode: r.code,
      maxRssKb: Number(readFileSync(rssFile, 'utf8')),
      logBytes: statSync(logFile).size,
      journalBytes: existsSync(join(dir, 'cli.journal.jsonl')) ? statSync(join(dir, 'cli.journal.jsonl')).size : 0,
      verification: cliVerification,
    };
    log(
      `    cli      : ${(r.processMs / 1000).toFixed(2)} s (process), exit ${r.code}, peak RSS ${(cliRun.maxRssKb / 1024).toFixed(0)} MiB, journal ${(cliRun.journalBytes / 2 ** 20).toFixed(0)} MiB, verify: ${cliVerification.ok ? 'identical' : 'DIFFERENT'}`,
    );
    removeDb(file('cli'));
    for (const f of [rssFile, logFile, join(dir, 'cli.journal.jsonl')]) rmSync(f, { force: true });
    rmSync(join(dir, '.datafix'), { recursive: true, force: true });
  }
  removeDb(file('baseline'));
  return { runs, verification, cli: cliRun };
}
