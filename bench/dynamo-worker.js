/**
 * Runs one side of the DynamoDB comparison in its own process, so its peak RSS is its own.
 *
 *   node bench/dynamo-worker.js datafix|best|seed <endpoint> <table>
 *
 * Prints one JSON line: { side, wallMs, maxRssKb, counts }. wallMs covers the work (for datafix:
 * load + compile the spec, connect, DescribeTable check, run), not Node start-up or module loading.
 */
import { fileURLToPath } from 'node:url';

const [side, endpoint, table] = process.argv.slice(2);
if (!side || !endpoint || !table) {
  process.stderr.write('usage: node bench/dynamo-worker.js datafix|best|seed <endpoint> <table>\n');
  process.exit(2);
}
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const fixFile = fileURLToPath(new URL('../fixes/i2v-thumbnails.yaml', import.meta.url));
const region = 'us-east-1';

let counts;
let started;
let cpuStart;
if (side === 'datafix') {
  const { runSpecFile } = await import('../dist/index.js');
  // Load the SDK, datafix's DynamoDB adapter and the spec's validator before the clock starts,
  // as the seed side does with its static imports: module loading is left out of both sides.
  await import('@aws-sdk/client-dynamodb');
  await import('@aws-sdk/lib-dynamodb');
  await import('../dist/adapters/dynamodb/index.js');
  (await import('../dist/language/schema-validator.js')).schemaValidator('fix');
  started = performance.now();
  cpuStart = process.cpuUsage();
  const result = await runSpecFile(fixFile, {
    dryRun: false,
    compile: { env: { ...process.env, DYNAMODB_TABLE: table, LOCAL_AWS_ENDPOINT: endpoint, AWS_REGION: region } },
  });
  const s = result.summary;
  counts = { total: s.total, updated: s.updated, skipped: s.skipped, failed: s.failed, reasons: s.reasons, requests: result.requests };
} else if (side === 'best') {
  const { runBestCaseBackfill } = await import('./lib/i2v-best.js');
  started = performance.now();
  cpuStart = process.cpuUsage();
  const s = await runBestCaseBackfill({ table, endpoint, region, concurrency: Number(process.env.I2V_BACKFILL_CONCURRENCY ?? 10) });
  counts = { total: s.total, updated: s.updated, skipped: s.skipped, failed: s.errors, reasons: s.reasons };
} else if (side === 'seed') {
  const { runSeedBackfill } = await import('./lib/i2v-seed.js');
  started = performance.now();
  cpuStart = process.cpuUsage();
  const s = await runSeedBackfill({ table, endpoint, region, concurrency: Number(process.env.I2V_BACKFILL_CONCURRENCY ?? 10) });
  counts = { total: s.total, updated: s.updated, skipped: s.skipped, failed: s.errors, reasons: s.reasons };
} else {
  process.stderr.write(`unknown side ${side}\n`);
  process.exit(2);
}
const wallMs = performance.now() - started;
const cpu = process.cpuUsage(cpuStart);
process.stdout.write(
  `${JSON.stringify({ side, wallMs, cpuMs: (cpu.user + cpu.system) / 1000, maxRssKb: process.resourceUsage().maxRSS, counts })}\n`,
);
