/**
 * The acceptance test of RELIABILITY.md: fixes/i2v-thumbnails.yaml run through the real CLI (the
 * default SDK retry settings: standard mode, 6 attempts) against dynalite behind a fault proxy
 * that throttles, answers 500/503, drops connections, loses acknowledgements of landed writes and
 * leaves BatchGetItem keys unprocessed. Faults are drawn from a seeded LCG so every run sees the
 * same pattern. Each run must end exactly as an independent oracle of the fix's rules says, with
 * `failed: 0` and exit 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, internalError, type ProxyOptions, startCountingProxy, throttled } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { expectOracleState, I2V_FIX, type Item, i2vDataset, lcg, oracleCounts, scanAll, serviceUnavailable } from './support.js';

const VIDEOS = 300;

describe('i2v fix through a faulty network (CLI, default retry settings)', () => {
  let dynamo: RunningDynalite;
  const tmp = useTempDirs({ scope: 'file' });
  const proxies: CountingProxy[] = [];
  let tables = 0;

  beforeAll(async () => {
    dynamo = await startDynalite();
  });
  afterAll(async () => {
    for (const p of proxies) await p.stop();
    await dynamo?.stop();
  });

  /** A fresh seeded table and a proxy with `fault` in front of it. */
  async function setup(fault: ProxyOptions['fault'], videos = VIDEOS): Promise<{ table: string; proxy: CountingProxy; before: Item[] }> {
    const table = `media-rel-${++tables}`;
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(dynamo.endpoint, table, i2vDataset(videos));
    const proxy = await startCountingProxy(dynamo.endpoint, { fault });
    proxies.push(proxy);
    return { table, proxy, before: await scanAll(dynamo.endpoint, table) };
  }

  async function runAndVerify(table: string, proxy: CountingProxy, before: Item[], extraEnv: Record<string, string> = {}) {
    const r = await runCli(['run', I2V_FIX, '--json'], {
      cwd: tmp().path,
      env: {
        DYNAMODB_TABLE: table,
        LOCAL_AWS_ENDPOINT: proxy.endpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: undefined,
        ...extraEnv,
      },
      timeoutMs: 120_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    const oracle = oracleCounts(before);
    expect(summary).toMatchObject({ dryRun: false, failed: 0, total: oracle.total, updated: oracle.updated, reasons: oracle.reasons });
    const after = await scanAll(dynamo.endpoint, table);
    expect(expectOracleState(before, after)).toBe(oracle.updated);
    return { r, summary, after };
  }

  it('20% throttled and 5% 500/503 on every operation: every item right, failed 0, exit 0, rerun a no-op', async () => {
    const rand = lcg(20240611);
    let faults = 0;
    const { table, proxy, before } = await setup(() => {
      const x = rand();
      if (x < 0.2) {
        faults++;
        return { respond: throttled() };
      }
      if (x < 0.225) {
        faults++;
        return { respond: internalError() };
      }
      if (x < 0.25) {
        faults++;
        return { respond: serviceUnavailable() };
      }
      return undefined;
    });
    const { after } = await runAndVerify(table, proxy, before);
    // 300 videos draw 55 faults from this seed; more than 40 shows the run met many, not a handful.
    expect(faults).toBeGreaterThan(40);
    // Nothing is left half-done: a rerun (without faults) finds nothing to change.
    const rerun = await runCli(['run', I2V_FIX, '--json'], {
      cwd: tmp().path,
      env: { DYNAMODB_TABLE: table, LOCAL_AWS_ENDPOINT: dynamo.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: undefined },
      timeoutMs: 120_000,
    });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout)).toMatchObject({ updated: 0, failed: 0 });
    expect(await scanAll(dynamo.endpoint, table)).toEqual(after);
  });

  it('connection resets on 5% of requests: retried, every item right', async () => {
    const rand = lcg(7);
    let resets = 0;
    const { table, proxy, before } = await setup((req) => {
      if (req.operation === 'DescribeTable') return undefined;
      if (rand() < 0.05) {
        resets++;
        return { reset: true };
      }
      return undefined;
    }, 300);
    await runAndVerify(table, proxy, before);
    expect(resets).toBeGreaterThan(5);
  });

  it('lost acknowledgement of a conditional write: the SDK retries into its own guard, counted as updated, item right', async () => {
    let lost = 0;
    const sent = new Map<string, number>();
    const { table, proxy, before } = await setup((req) => {
      if (req.operation !== 'UpdateItem') return undefined;
      const pk = /"MEDIA#v(\d+)"/.exec(req.body)?.[1];
      const n = (sent.get(pk ?? '') ?? 0) + 1;
      sent.set(pk ?? '', n);
      // The first send of every 5th video's write lands, then its answer is replaced by a 500:
      // the SDK resends it and meets its own guard. (Few enough that the SDK's retry quota — a
      // 500 costs 10 of its 500 tokens, and a retry ending in ConditionalCheckFailed refunds
      // nothing — does not run dry; when it does, see the requeue test below.)
      if (pk !== undefined && Number(pk) % 5 === 0 && n === 1) {
        return {
          afterForward: (real) => {
            if (real.status === 200) lost++;
            return internalError();
          },
        };
      }
      return undefined;
    }, 300);
    const { summary } = await runAndVerify(table, proxy, before);
    expect(lost).toBeGreaterThan(25);
    expect(summary.reasons.conflict).toBeUndefined();
  });

  // When every SDK attempt loses its answer, the engine requeues the record; its resend is a
  // first SDK attempt that meets our own earlier write's guard, and must still count as ours.
  it('lost acknowledgement on every SDK attempt, then an engine requeue: still counted as updated', async () => {
    let sends = 0;
    const { table, proxy, before } = await setup((req) => {
      if (req.operation !== 'UpdateItem' || !req.body.includes('"MEDIA#v0000"')) return undefined;
      return ++sends <= 6 ? { afterForward: () => internalError() } : undefined;
    }, 30);
    const { summary } = await runAndVerify(table, proxy, before);
    expect(summary.reasons.conflict).toBeUndefined();
  });

  it('BatchGetItem answers with half the found keys moved to UnprocessedKeys: all lookups still done', async () => {
    let moved = 0;
    const { table, proxy, before } = await setup((req) => {
      if (req.operation !== 'BatchGetItem' || req.nth % 3 === 0) return undefined;
      return {
        afterForward: (real) => {
          if (real.status !== 200) return real;
          const body = real.body as {
            Responses?: Record<string, Record<string, unknown>[]>;
            UnprocessedKeys?: Record<string, { Keys: Record<string, unknown>[] }>;
          };
          const responses = body.Responses ?? {};
          const unprocessed: Record<string, { Keys: Record<string, unknown>[] }> = {};
          for (const [t, items] of Object.entries(responses)) {
            const keep: Record<string, unknown>[] = [];
            const keys: Record<string, unknown>[] = [];
            items.forEach((item, i) => {
              if (i % 2 === 0) keys.push({ PK: item.PK, SK: item.SK });
              else keep.push(item);
            });
            responses[t] = keep;
            if (keys.length) unprocessed[t] = { Keys: keys };
            moved += keys.length;
          }
          return { status: 200, body: { ...body, Responses: responses, UnprocessedKeys: unprocessed } };
        },
      };
    }, 300);
    await runAndVerify(table, proxy, before);
    expect(moved).toBeGreaterThan(50);
    // The unprocessed keys were asked for again.
    expect(proxy.counts().BatchGetItem ?? 0).toBeGreaterThan(12);
  });

  it("the SDK's retry quota runs dry under concurrency 50 (first 400 UpdateItems throttled): requeued, not failed", async () => {
    const { table, proxy, before } = await setup(
      (req) => (req.operation === 'UpdateItem' && req.nth <= 400 ? { respond: throttled() } : undefined),
      300,
    );
    const { r } = await runAndVerify(table, proxy, before, { I2V_BACKFILL_CONCURRENCY: '50' });
    // The engine, not the SDK, carried the records through: they were requeued with backoff.
    expect(r.stderr).toMatch(/throttled: requeued \d+ write\(s\), concurrency now \d+/);
    expect(proxy.counts().UpdateItem).toBeGreaterThan(400);
  });
});
