/**
 * Runs one side of the SQLite comparison in its own process, so its peak RSS is its own.
 *
 *   node bench/sqlite-worker.js datafix|baseline <db-file>
 *
 * Prints one JSON line: { side, wallMs, maxRssKb, counts }. wallMs covers the work only (open the
 * database → last commit → close; for datafix, load + compile the spec too), not Node's start-up
 * or module loading, which both sides pay alike and the CLI measurement covers separately.
 */
import { fileURLToPath } from 'node:url';

const [side, dbPath] = process.argv.slice(2);
if (!side || !dbPath) {
  process.stderr.write('usage: node bench/sqlite-worker.js datafix|baseline <db-file>\n');
  process.exit(2);
}
const fixFile = fileURLToPath(new URL('../fixes/sync-media-generation-ids.yaml', import.meta.url));

let counts;
let started;
let cpuStart;
if (side === 'datafix') {
  const { runSpecFile } = await import('../dist/index.js');
  // datafix loads better-sqlite3 lazily; load it before the clock starts, as the other side does.
  await import('better-sqlite3');
  started = performance.now();
  cpuStart = process.cpuUsage();
  const result = await runSpecFile(fixFile, { dryRun: false, compile: { env: { ...process.env, VEO3_DB_PATH: dbPath } } });
  const s = result.summary;
  counts = { total: s.total, updated: s.updated, skipped: s.skipped, failed: s.failed, reasons: s.reasons };
} else if (side === 'baseline') {
  const { runBaseline } = await import('./lib/sqlite-baseline.js');
  started = performance.now();
  cpuStart = process.cpuUsage();
  counts = runBaseline(dbPath);
} else {
  process.stderr.write(`unknown side ${side}\n`);
  process.exit(2);
}
const wallMs = performance.now() - started;
const cpu = process.cpuUsage(cpuStart);
process.stdout.write(
  `${JSON.stringify({ side, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, userMs: cpu.user / 1000, sysMs: cpu.system / 1000, maxRssKb: process.resourceUsage().maxRSS, counts })}\n`,
);
