/**
 * fixes/i2v-thumbnails.yaml end to end through the CLI, against dynalite on loopback behind a
 * counting proxy: what a user checks is the table afterwards, the JSON summary, the exit code and
 * how many requests the run cost.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { expectedFor, type Item, i2vDataset, scanAll } from '../helpers/i2v-oracle.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';

const FIX = fileURLToPath(new URL('../../fixes/i2v-thumbnails.yaml', import.meta.url));
const VIDEOS = 250; // two query pages of 200, the second partial

const dataset = () => i2vDataset(VIDEOS);
const expected = expectedFor;

const keyOf = (i: Item) => String(i.PK);

describe('fixes/i2v-thumbnails.yaml on a DynamoDB-compatible server', () => {
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  const table = 'media-e2e';
  let seeded: Item[];
  const tmp = useTempDirs({ scope: 'file' });

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startCountingProxy(dynamo.endpoint);
    await createMediaTable(dynamo.endpoint, table);
    seeded = dataset();
    await seedItems(dynamo.endpoint, table, seeded);
  });
  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  const env = () => ({ DYNAMODB_TABLE: table, LOCAL_AWS_ENDPOINT: proxy.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: undefined });

  it('dry run writes nothing and predicts the live run; the live run follows the rules; the rerun is a no-op', async () => {
    const before = await scanAll(dynamo.endpoint, table);
    const byKey = new Map(before.map((i) => [keyOf(i), i]));
    const videos = before.filter((i) => i.type === 'video');
    expect(videos).toHaveLength(VIDEOS);

    proxy.reset();
    const dry = await runCli(['run', FIX, '--dry-run', '--json'], { env: env() });
    expect(dry.code, dry.stderr).toBe(0);
    const dryCounts = proxy.counts();
    expect(dryCounts.UpdateItem ?? 0).toBe(0);
    expect(dryCounts.PutItem ?? 0).toBe(0);
    expect(dryCounts.BatchWriteItem ?? 0).toBe(0);
    expect(await scanAll(dynamo.endpoint, table)).toEqual(before);
    const drySummary = JSON.parse(dry.stdout);

    // The oracle's counts.
    const reasons: Record<string, number> = {};
    let toUpdate = 0;
    for (const v of videos) {
      const e = expected(v, byKey);
      if ('reason' in e) reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
      else toUpdate++;
    }
    expect(drySummary).toEqual({
      fix: 'i2v-thumbnails',
      dryRun: true,
      total: VIDEOS,
      updated: toUpdate,
      skipped: VIDEOS - toUpdate,
      failed: 0,
      reasons,
      durationMs: expect.any(Number),
    });
    // The dry run names each proposed change field by field.
    expect(dry.stderr).toMatch(
      /~ PK=MEDIA#v0000 SK=METADATA would update\n {4}thumbnailUrl: \(absent\) → "https:\/\/cdn\.example\.com\/iv0000\/t\.jpg"/,
    );

    proxy.reset();
    const started = Date.now();
    const live = await runCli(['run', FIX, '--json'], { env: env() });
    expect(live.code, live.stderr).toBe(0);
    const liveSummary = JSON.parse(live.stdout);
    expect({ ...liveSummary, durationMs: 0 }).toEqual({ ...drySummary, dryRun: false, durationMs: 0 });

    // Lookups are batched: requests ≤ updated videos + 10% of videos + a few pages.
    const liveCounts = proxy.counts();
    const totalRequests = Object.values(liveCounts).reduce((a, b) => a + b, 0);
    expect(liveCounts.UpdateItem).toBe(toUpdate);
    expect(totalRequests).toBeLessThanOrEqual(toUpdate + VIDEOS * 0.1 + 6);

    const after = await scanAll(dynamo.endpoint, table);
    expect(after).toHaveLength(before.length);
    const runTimes = new Set<string>();
    for (const item of after) {
      const old = byKey.get(keyOf(item)) as Item;
      const e = item.type === 'video' ? expected(old, byKey) : { reason: 'not a video' };
      if ('reason' in e) {
        expect(item, `${keyOf(item)} (${e.reason}) must be untouched`).toEqual(old);
        continue;
      }
      const { updatedAt, ...rest } = item;
      const { updatedAt: oldUpdatedAt, ...oldRest } = old;
      expect(rest, keyOf(item)).toEqual({ ...oldRest, ...e.fill });
      expect(updatedAt).not.toBe(oldUpdatedAt);
      runTimes.add(String(updatedAt));
    }
    // One timestamp per run, taken when the run started.
    expect(runTimes.size).toBe(1);
    const stamp = Date.parse([...runTimes][0] as string);
    expect(Math.abs(stamp - started)).toBeLessThan(30_000 * TIME_SCALE);

    const rerun = await runCli(['run', FIX, '--json'], { env: env() });
    expect(rerun.code).toBe(0);
    expect(JSON.parse(rerun.stdout).updated).toBe(0);
    expect(await scanAll(dynamo.endpoint, table)).toEqual(after);
  });

  it('--env prod loads .env.prod from the working directory, overrides nothing and prints no secret', async () => {
    const dir = tmp();
    const secret = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
    dir.write(
      '.env.prod',
      `DYNAMODB_TABLE=${table}\nLOCAL_AWS_ENDPOINT=${proxy.endpoint}\nAWS_REGION=eu-west-1\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=${secret}\nI2V_BACKFILL_CONCURRENCY=notanumber\n`,
    );
    // A variable already set wins over the file: concurrency 3 is valid, the file's is not.
    const r = await runCli(['run', FIX, '--env', 'prod', '--dry-run', '--json'], {
      cwd: dir.path,
      env: { DYNAMODB_TABLE: undefined, LOCAL_AWS_ENDPOINT: undefined, AWS_SECRET_ACCESS_KEY: undefined, I2V_BACKFILL_CONCURRENCY: '3' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).total).toBe(VIDEOS);
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(r.stdout + r.stderr).not.toContain('AKIAEXAMPLE');

    const missing = await runCli(['run', FIX, '--env', 'staging', '--dry-run'], { cwd: dir.path });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('.env.staging');
  });

  it('a missing DYNAMODB_TABLE is a clear error naming the variable and the spec line', async () => {
    const r = await runCli(['run', FIX, '--dry-run'], { env: { ...env(), DYNAMODB_TABLE: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/i2v-thumbnails\.yaml:\d+:\d+ DF301 .*DYNAMODB_TABLE is not set/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unreachable endpoint exits 2 with a message naming it', async () => {
    const r = await runCli(['run', FIX, '--dry-run'], { env: { ...env(), LOCAL_AWS_ENDPOINT: 'http://127.0.0.1:9' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('127.0.0.1:9');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a scan-based fix split across processes with --segment/--total-segments', () => {
  let dynamo: RunningDynalite;
  const table = 'segments-e2e';
  const tmp = useTempDirs({ scope: 'file' });
  const N = 500;

  beforeAll(async () => {
    dynamo = await startDynalite();
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(
      dynamo.endpoint,
      table,
      Array.from({ length: N }, (_, i) => ({ PK: `ITEM#${i}`, SK: 'METADATA', n: i })),
    );
  });
  afterAll(async () => {
    await dynamo?.stop();
  });

  it('handles every item exactly once', async () => {
    const dir = tmp();
    const spec = dir.write(
      'mark.yaml',
      `name: mark-items
target:
  dynamodb: { table: "\${TABLE}", endpoint: "\${ENDPOINT}" }
source:
  as: item
  scan: { pageSize: 37 }
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set: { copyOfN: "{{ item.n }}" }
  touch: { markedAt: "{{ now }}" }
`,
    );
    const env = { TABLE: table, ENDPOINT: dynamo.endpoint };
    const runs = await Promise.all(
      [0, 1, 2].map((i) => runCli(['run', spec, '--segment', String(i), '--total-segments', '3', '--json'], { env })),
    );
    const summaries = runs.map((r) => {
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    });
    expect(summaries.reduce((a, s) => a + s.total, 0)).toBe(N);
    expect(summaries.reduce((a, s) => a + s.updated, 0)).toBe(N);
    expect(summaries.every((s) => s.total > 0)).toBe(true);
    const items = await scanAll(dynamo.endpoint, table);
    expect(items.filter((i) => i.copyOfN === i.n)).toHaveLength(N);

    const bad = await runCli(['run', spec, '--segment', '3', '--total-segments', '3'], { env });
    expect(bad.code).toBe(2);
  });
});
