/** examples/expire-stale-sessions.yaml end to end on the in-process DynamoDB server, checked against plain JS. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, type RawItem, scanRaw, show } from '../safety/support.js';
import { example, expectExampleTestsPass } from './support.js';

const tmp = useTempDirs();

describe('examples/expire-stale-sessions', () => {
  let dynamo: RunningDynalite;
  beforeAll(async () => {
    dynamo = await startDynalite();
  }, 30_000 * TIME_SCALE);
  afterAll(async () => {
    await dynamo?.stop();
  });

  it('passes its datafix test file', async () => {
    await expectExampleTestsPass('expire-stale-sessions', 2);
  });

  it('expires exactly the active sessions older than 720 h before the run', async () => {
    const table = 'sessions';
    await createMediaTable(dynamo.endpoint, table);
    const hour = 3_600_000;
    const runStart = Date.now();
    const ages = [1000, 721, 719, 24, 2000];
    const items: RawItem[] = Array.from({ length: 40 }, (_, i) => {
      const created = new Date(runStart - (ages[i % ages.length] as number) * hour).toISOString();
      return {
        PK: { S: `USER#${i}` },
        SK: { S: `SESSION#${i}` },
        entity: { S: i % 8 === 7 ? 'user' : 'session' },
        status: { S: i % 10 === 9 ? 'expired' : 'active' },
        ...(i % 13 === 12 ? {} : { createdAt: { S: created } }),
      };
    });
    await seedRawItems(dynamo.endpoint, table, items);
    const r = await runCli(['run', example('expire-stale-sessions.yaml'), '--json'], {
      cwd: tmp().path,
      env: dynamoEnv(table, dynamo.endpoint),
    });
    expect(r.code, show(r)).toBe(0);
    const runEnd = Date.now();

    // Expired: active sessions with createdAt more than 720 h before the run's time (which lies
    // between runStart and runEnd; no seeded age is within that window of the cut-off).
    const expired = items.filter((it) => {
      const created = it.createdAt?.S;
      if (it.entity?.S !== 'session' || it.status?.S !== 'active' || created === undefined) return false;
      const age = Date.parse(created);
      expect(Math.abs(age - (runStart - 720 * hour))).toBeGreaterThan(runEnd - runStart);
      return age < runStart - 720 * hour;
    });
    expect(expired.length).toBe(17);
    const after = await scanRaw(dynamo.endpoint, table);
    const expiredKeys = new Set(expired.map((it) => it.PK?.S));
    for (const item of after) {
      const before = items.find((it) => it.PK?.S === item.PK?.S) as RawItem;
      if (expiredKeys.has(item.PK?.S)) {
        expect(item.status).toEqual({ S: 'expired' });
        const at = Date.parse(item.expiredAt?.S ?? '');
        expect(at).toBeGreaterThanOrEqual(runStart - 1000);
        expect(at).toBeLessThanOrEqual(runEnd);
      } else {
        expect(item).toEqual(before);
      }
    }
  });
});
