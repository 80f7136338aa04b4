/**
 * Throttling halves the write concurrency, and success wins it back one step at a time: measured
 * where it matters, as the number of UpdateItem requests DynamoDB (dynalite behind a counting
 * proxy) has in flight at once. The proxy answers the first two waves of writes with DynamoDB's
 * throttling error; the SDK is set to one attempt so each throttled answer reaches the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import { runFix } from '../../src/engine/run.js';
import { plan, scanSource, target } from '../dynamodb/fixtures.js';
import { createMediaTable, mediaItem, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy, throttled } from '../helpers/proxy.js';
import { scanAll } from './support.js';

const TABLE = 'media-throttle';
const PAGE = 16;
const CONCURRENCY = 8;

describe('throttled writes', () => {
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;

  beforeAll(async () => {
    dynamo = await startDynalite();
    await createMediaTable(dynamo.endpoint, TABLE);
    await seedItems(
      dynamo.endpoint,
      TABLE,
      Array.from({ length: 2 * PAGE }, (_, i) => mediaItem(`t${String(i).padStart(2, '0')}`, '2024-01-01T00:00:00Z')),
    );
    // Waves 1 and 2 of the first page (2 × 16 UpdateItems) are throttled; everything after lands.
    // Counted here, not by the proxy's `nth`: the test resets the proxy's counts at every wave.
    let updates = 0;
    proxy = await startCountingProxy(dynamo.endpoint, {
      latencyMs: 30,
      fault: (r) => (r.operation === 'UpdateItem' && ++updates <= 2 * PAGE ? { respond: throttled() } : undefined),
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  it('each throttled wave halves the writes in flight (8 → 4 → 2); each clean batch adds one back (→ 3)', async () => {
    const adapter = await createDynamoAdapter(target(proxy.endpoint, TABLE), { maxAttempts: 1, retryBaseMs: 1 });
    const peaks: number[] = [];
    const announced: number[] = [];
    const wave = () => {
      peaks.push(proxy.peakInFlight('UpdateItem'));
      proxy.reset();
    };
    proxy.reset();
    try {
      const summary = await runFix(plan(target(proxy.endpoint, TABLE), scanSource()), adapter, {
        dryRun: false,
        concurrency: CONCURRENCY,
        pageSize: PAGE,
        batchSize: PAGE,
        retryBaseMs: 1,
        onEvent: (e) => {
          if (e.type === 'throttled') {
            announced.push(e.concurrency);
            wave();
          } else if (e.type === 'page' && e.records > 0) wave();
        },
      });
      expect(summary).toMatchObject({ total: 2 * PAGE, updated: 2 * PAGE, skipped: 0, failed: 0 });
    } finally {
      await adapter.close();
    }
    // What the engine says it does (and the CLI prints as "concurrency now N")…
    expect(announced).toEqual([4, 2]);
    // …is what DynamoDB saw: wave 1 at 8, wave 2 at 4, the page's last wave at 2, the next page at 3.
    expect(peaks).toEqual([8, 4, 2, 3]);
    const items = await scanAll(dynamo.endpoint, TABLE);
    expect(items.map((i) => i.thumbnailUrl)).toEqual(Array.from({ length: 2 * PAGE }, () => 'x'));
  });
});
