/**
 * examples/remove-legacy-avatar.yaml end to end on the in-process DynamoDB server: its own
 * `datafix test` cases pass, and a live run removes legacyAvatarUrl from exactly the migrated
 * profiles (computed here from the seeded items), leaving every other item as it was.
 */

import { fileURLToPath } from 'node:url';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, jsonSummary, type RawItem, scanRaw, show } from '../safety/support.js';

const FIX = fileURLToPath(new URL('../../examples/remove-legacy-avatar.yaml', import.meta.url));
const CASES = fileURLToPath(new URL('../../examples/remove-legacy-avatar.test.yaml', import.meta.url));
const tmp = useTempDirs();

let db: RunningDynalite;
beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await db?.stop();
});

describe('examples/remove-legacy-avatar.yaml', () => {
  it('passes its own datafix test cases', async () => {
    const r = await runCli(['test', CASES], { cwd: tmp().path });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('2 passed, 0 failed');
  });

  it('removes legacyAvatarUrl from exactly the migrated profiles; everything else stays as seeded', async () => {
    const table = 'profiles';
    await createMediaTable(db.endpoint, table);
    const seeded: Record<string, AttributeValue>[] = [];
    for (let i = 0; i < 120; i++) {
      const item: Record<string, AttributeValue> = { PK: { S: `USER#${i}` }, SK: { S: 'PROFILE' } };
      if (i % 3 !== 0) item.avatarUrl = { S: `https://cdn/new/${i}.png` };
      if (i % 4 !== 0) item.legacyAvatarUrl = i % 8 === 1 ? { NULL: true } : { S: `http://old/${i}.png` };
      seeded.push(item);
      seeded.push({ PK: { S: `USER#${i}` }, SK: { S: 'ORDER#1' }, legacyAvatarUrl: { S: 'not a profile' } });
    }
    await seedRawItems(db.endpoint, table, seeded);
    // Independently of datafix: a profile with avatarUrl and legacyAvatarUrl loses the latter and
    // gets updatedAt (the run's time); every other item stays exactly as seeded.
    const migrated = (item: Record<string, AttributeValue>) => item.SK?.S === 'PROFILE' && !!item.avatarUrl && !!item.legacyAvatarUrl;
    const keyOf = (x: RawItem) => `${x.PK?.S}|${x.SK?.S}`;
    const expected = new Map(
      seeded.map((item) => {
        const { legacyAvatarUrl: _removed, ...rest } = item;
        return [keyOf(item), migrated(item) ? rest : item];
      }),
    );
    const changed = new Set(seeded.filter(migrated).map(keyOf));

    const dir = tmp();
    const started = new Date().toISOString();
    const r = await runCli(['run', FIX, '--yes', '--json'], { cwd: dir.path, env: dynamoEnv(table, db.endpoint) });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ total: 120, updated: changed.size, failed: 0 });
    const after = await scanRaw(db.endpoint, table);
    expect(new Set(after.filter((x) => x.updatedAt).map(keyOf))).toEqual(changed);
    const stamps = new Set(after.flatMap((x) => (x.updatedAt?.S ? [x.updatedAt.S] : [])));
    expect(stamps.size).toBe(1);
    expect(([...stamps][0] as string) >= started).toBe(true);
    const withoutStamp = new Map(
      after.map((x) => {
        const { updatedAt: _stamp, ...rest } = x;
        return [keyOf(x), rest];
      }),
    );
    expect(withoutStamp).toEqual(expected);
  });
});
