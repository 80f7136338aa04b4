/**
 * Runs one side of the SQLite comparison in its own process, so its peak RSS is its own.
 *
 *   node bench/sqlite-worker.js datafix|datafix-dry|baseline|baseline-dry|baseline-dry-mapped <db-file>
 *
 * - `datafix`: a live run as the CLI makes it, with the target lock, the journal (before-images
 *   for undo) and checkpoints, through the library (`runPlanSafely`); its `.datafix/` goes next
 *   to the database file;
 * - `datafix-dry`: a dry run (read-only, nothing written, no journal);
 * - `baseline` / `baseline-dry`: the hand-written script, writing or only reading and computing;
 * - `baseline-dry-mapped`: the reading script with the memory map datafix's read-only connection
 *   uses (`PRAGMA mmap_size`), for reference: what the same I/O setting gives the script.
 *
 * Prints one JSON line: { side, wallMs, cpuMs, maxRssKb, counts, journalBytes }. wallMs covers
 * the work only (open the database → last commit → close; for datafix, load + compile the spec
 * too), not Node's start-up or module loading, which both sides pay alike and the CLI
 * measurement covers separately.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const SIDES = ['datafix', 'datafix-dry', 'baseline', 'baseline-dry', 'baseline-dry-mapped'];
const [side, dbPath] = process.argv.slice(2);
if (!SIDES.includes(side) || !dbPath) {
  process.stderr.write(`usage: node bench/sqlite-worker.js ${SIDES.join('|')} <db-file>\n`);
  process.exit(2);
}
const fixFile = fileURLToPath(new URL('../fixes/sync-media-generation-ids.yaml', import.meta.url));

let counts;
let journalBytes = 0;
let started;
let cpuStart;
if (side.startsWith('datafix')) {
  const { loadPlan, runSpecFile } = await import('../dist/index.js');
  const { runPlanSafely } = await import('../dist/safety/session.js');
  // datafix loads better-sqlite3, its SQLite adapter and the spec's standalone validator lazily
  // (for the CLI's start-up); load them before the clock starts, as the other side loads its
  // modules: module loading is left out of both sides.
  await import('better-sqlite3');
  await import('../dist/adapters/sqlite/index.js');
  (await import('../dist/language/schema-validator.js')).schemaValidator('fix');
  const compile = { env: { ...process.env, VEO3_DB_PATH: dbPath } };
  started = performance.now();
  cpuStart = process.cpuUsage();
  const result =
    side === 'datafix-dry'
      ? await runSpecFile(fixFile, { dryRun: true, compile })
      : await runPlanSafely(loadPlan(fixFile, compile), { dryRun: false, cwd: dirname(dbPath), specFile: fixFile });
  const s = result.summary;
  counts = { total: s.total, updated: s.updated, skipped: s.skipped, failed: s.failed, reasons: s.reasons };
  if (result.journal && existsSync(result.journal)) journalBytes = statSync(result.journal).size;
} else {
  const { runBaseline } = await import('./lib/sqlite-baseline.js');
  started = performance.now();
  cpuStart = process.cpuUsage();
  counts = runBaseline(dbPath, { write: side === 'baseline', mapped: side === 'baseline-dry-mapped' });
}
const wallMs = performance.now() - started;
const cpu = process.cpuUsage(cpuStart);
process.stdout.write(
  `${JSON.stringify({ side, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, userMs: cpu.user / 1000, sysMs: cpu.system / 1000, maxRssKb: process.resourceUsage().maxRSS, counts, journalBytes })}\n`,
);
