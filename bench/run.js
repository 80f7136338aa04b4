#!/usr/bin/env node
/**
 * datafix's benchmark. `npm run bench` builds, then runs this:
 *
 *   node bench/run.js [--quick] [--only sqlite|dynamo|cold] [--rows N[,N]] [--rounds N] [--dir PATH]
 *                     [--no-tmpfs] [--no-cli] [--write-docs | --no-docs] [--json FILE] [--keep]
 *
 * Full mode: SQLite at 100k and 1M rows, DynamoDB with 1500 videos, and the CLI's cold start;
 * the result table replaces the marked section of docs/performance.md. --quick: 20k rows and
 * 300 videos, no 1M run, docs untouched unless --write-docs. See docs/performance.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDynamo } from './lib/dynamo-bench.js';
import { flushToDisk, fsTypeOf, machine, median, ROOT, removeDb, sleep } from './lib/proc.js';
import { renderMarkdown, summarize, writeMarkedSection } from './lib/report.js';
import { benchSqlite } from './lib/sqlite-bench.js';
import { generateVeo3Database } from './lib/sqlite-data.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    rows: { type: 'string' },
    dir: { type: 'string' },
    'no-tmpfs': { type: 'boolean', default: false },
    'no-cli': { type: 'boolean', default: false },
    'write-docs': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

const quick = opts.quick;
const LIVE = ['datafix', 'baseline'];
const DRY = ['datafix-dry', 'baseline-dry', 'baseline-dry-mapped'];
const firstRounds = Number(opts.rounds ?? (quick ? 2 : 3));
/**
 * The SQLite workloads, in order: { shape, rows, rounds, pairs }. The first is the primary one
 * (tmpfs repeat, CLI run). `light` rows show the engine's own per-record cost, `huge` rows
 * (5 MiB each) its memory when rows are large.
 */
const sqliteWorkloads = opts.rows
  ? opts.rows.split(',').map((r, i) => ({ shape: 'standard', rows: Number(r), rounds: i === 0 ? firstRounds : 2, pairs: [LIVE] }))
  : [
      { shape: 'standard', rows: quick ? 20_000 : 100_000, rounds: firstRounds, pairs: [LIVE, DRY] },
      ...(quick ? [] : [{ shape: 'standard', rows: 1_000_000, rounds: 2, pairs: [LIVE] }]),
      { shape: 'light', rows: quick ? 20_000 : 100_000, rounds: firstRounds, pairs: [LIVE, DRY] },
      { shape: 'huge', rows: quick ? 100 : 1000, rounds: 1, pairs: [LIVE] },
    ];
const config = {
  mode: quick ? 'quick' : opts.rows ? 'custom' : 'full',
  // Each side of a pair runs `rounds` times, alternating who goes first; the best wall counts.
  sqlite: sqliteWorkloads,
  videos: quick ? 300 : 1500,
  // datafix and the best case run this many times each (median counts); the seed's algorithm once.
  dynamoRuns: quick ? 3 : 5,
  latencyMs: 5,
  coldStartRuns: 10,
};
const want = (part) => !opts.only || opts.only === part;
const writeDocs = !opts['no-docs'] && (opts['write-docs'] || (!quick && !opts.only && !opts.rows));
const workDir = resolve(opts.dir ?? join(ROOT, 'bench', '.work'));
const log = (line) => process.stdout.write(`${line}\n`);

/** Wall time of `node ...args` from spawn to exit, output discarded (as close to a shell's view as Node gets). */
function timeNode(args) {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'ignore' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`);
  return ms;
}

/** Wall time of `npx datafix --version` run in the repository, as a user would type it. */
function timeNpx() {
  const npx = join(dirname(process.execPath), 'npx');
  const t = performance.now();
  const r = spawnSync(npx, ['--no-install', 'datafix', '--version'], { cwd: ROOT, stdio: 'ignore' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`npx datafix --version exited ${r.status}`);
  return ms;
}

async function coldStart(runs) {
  const bin = join(ROOT, 'bin', 'datafix.js');
  const help = [bin, '--help'];
  const version = [bin, '--version'];
  // Warm the OS file cache first; these are not counted.
  for (let i = 0; i < 2; i++) {
    timeNode(help);
    timeNode(['-e', '0']);
    timeNpx();
  }
  const helpMs = [];
  const nodeMs = [];
  const versionMs = [];
  const npxMs = [];
  for (let i = 0; i < runs; i++) {
    helpMs.push(timeNode(help));
    nodeMs.push(timeNode(['-e', '0']));
    versionMs.push(timeNode(version));
    npxMs.push(timeNpx());
  }
  return {
    runs,
    medianMs: median(helpMs),
    nodeMedianMs: median(nodeMs),
    versionMedianMs: median(versionMs),
    npxVersionMedianMs: median(npxMs),
    helpMs,
    nodeMs,
    versionMs,
    npxMs,
  };
}

function tmpfsDir() {
  if (opts['no-tmpfs']) return undefined;
  try {
    if (fsTypeOf('/dev/shm') !== 'tmpfs') return undefined;
    const dir = join('/dev/shm', `datafix-bench-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  } catch {
    return undefined;
  }
}

async function main() {
  const started = performance.now();
  const meta = { mode: config.mode, machine: machine(), diskFs: fsTypeOf(workDir), primaryRows: config.sqlite[0].rows };
  log(
    `datafix benchmark (${config.mode}) — ${meta.machine.cpu}, ${meta.machine.cores} cores, ${meta.machine.memoryGiB} GiB, Node ${meta.machine.node}`,
  );
  log(`work dir ${relative(process.cwd(), workDir) || '.'} (${meta.diskFs})`);
  mkdirSync(workDir, { recursive: true });
  const results = { config, meta, sqlite: [] };

  if (want('cold')) {
    log(`\n== datafix --help cold start (${config.coldStartRuns} runs)`);
    results.coldStart = await coldStart(config.coldStartRuns);
    const c = results.coldStart;
    log(`    --help median ${Math.round(c.medianMs)} ms (node -e 0: ${Math.round(c.nodeMedianMs)} ms)`);
    log(
      `    --version median: npx datafix ${Math.round(c.npxVersionMedianMs)} ms, node bin/datafix.js ${Math.round(c.versionMedianMs)} ms`,
    );
  }

  if (want('sqlite')) {
    const primary = config.sqlite[0];
    for (const w of config.sqlite) {
      const { rows, rounds, shape, pairs } = w;
      log(`\n== SQLite, ${rows.toLocaleString('en-US')} rows, ${shape} raw_response`);
      const source = join(workDir, `veo3-${shape}-${rows}.db`);
      removeDb(source);
      const t = performance.now();
      const expected = generateVeo3Database(source, rows, { shape });
      const generateMs = performance.now() - t;
      const fileMiB = Math.round(statSync(source).size / 2 ** 20);
      log(
        `    generated in ${(generateMs / 1000).toFixed(1)} s, ${fileMiB} MiB; expected ${JSON.stringify({ ...expected, byKind: undefined })}`,
      );
      try {
        // The CLI once, at the primary workload only: at 1M rows it would add another minute and a half.
        const cli = !opts['no-cli'] && w === primary;
        log(`  on ${meta.diskFs} (${rounds} rounds${cli ? ' + 1 CLI run' : ''})`);
        const disk = await benchSqlite({ source, expected, dir: workDir, rounds, cli, log, pairs });
        results.sqlite.push({ rows, shape, fs: 'disk', expected, generateMs, fileMiB, ...disk });
        const shm = w === primary ? tmpfsDir() : undefined;
        if (shm) {
          log(`  on tmpfs, no disk I/O: the engine's CPU cost alone (${rounds} rounds)`);
          try {
            const mem = await benchSqlite({ source, expected, dir: shm, rounds, cli: false, log, pairs: [LIVE] });
            results.sqlite.push({ rows, shape, fs: 'tmpfs', expected, generateMs, fileMiB, ...mem });
          } finally {
            rmSync(shm, { recursive: true, force: true });
          }
        }
      } finally {
        if (!opts.keep) removeDb(source);
      }
    }
  }

  if (want('dynamo')) {
    // Let the kernel finish writing back and discarding the SQLite files first.
    flushToDisk();
    await sleep(3000);
    log(`\n== DynamoDB, ${config.videos} videos, ${config.latencyMs} ms per request`);
    results.dynamo = await benchDynamo({ videos: config.videos, latencyMs: config.latencyMs, datafixRuns: config.dynamoRuns, log });
  }

  meta.totalMs = performance.now() - started;
  const summary = summarize(results);
  const markdown = renderMarkdown(summary, meta);
  log(`\n${markdown}`);
  log(`benchmark finished in ${(meta.totalMs / 1000).toFixed(0)} s`);
  if (writeDocs) {
    writeMarkedSection(join(ROOT, 'docs', 'performance.md'), markdown);
    log('updated docs/performance.md');
  }
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ results, summary }, null, 2)}\n`);
  if (!opts.keep) rmSync(workDir, { recursive: true, force: true });

  const unverified = summary.sqlite.some((r) => !r.verified) || (summary.dynamo && !summary.dynamo.verification.ok);
  if (unverified) {
    log('ERROR: the two sides of a comparison did not end with the same data; the numbers above compare different work');
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});
