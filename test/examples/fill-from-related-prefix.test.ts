/**
 * examples/fill-from-related-prefix.yaml end to end on the in-process DynamoDB server, through the
 * built CLI: its `datafix test` cases pass; the scan's `beginsWith` filter hands datafix only the
 * USER# profiles; and the table afterwards holds what plain JS computes from the seeded items.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type Item, scanAll } from '../helpers/i2v-oracle.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();
const FIX = `${REPO_ROOT}examples/fill-from-related-prefix.yaml`;
const TABLE = 'app';
let dynamo: RunningDynalite;

const ORGS: Item[] = [
  { PK: 'ORG#o1', SK: 'METADATA', name: 'Acme' },
  { PK: 'ORG#o2', SK: 'METADATA', name: '' },
  { PK: 'ORG#o3', SK: 'METADATA' },
  { PK: 'ORG#o4', SK: 'METADATA', name: 'Globex' },
];
const ORG_IDS = ['o1', 'o2', 'o3', 'o4', 'ghost', '', undefined];
const USERS: Item[] = Array.from({ length: 28 }, (_, i) => {
  const orgId = ORG_IDS[i % ORG_IDS.length];
  return {
    PK: `USER#u${i}`,
    SK: 'PROFILE',
    ...(orgId !== undefined ? { orgId } : {}),
    ...(i % 4 === 3 ? { orgName: 'Kept' } : {}),
  };
});
// Items the filter leaves out: a user's other items, another prefix's case, organisations.
const OTHERS: Item[] = [
  { PK: 'USER#u1', SK: 'ORDER#1', orgId: 'o1' },
  { PK: 'user#lower', SK: 'PROFILE', orgId: 'o1' },
  { PK: 'TEAM#t1', SK: 'PROFILE', orgId: 'o1' },
];
const key = (i: Item) => `${i.PK} ${i.SK}`;
const sorted = (items: Item[]) => [...items].sort((a, b) => (key(a) < key(b) ? -1 : 1));

beforeAll(async () => {
  dynamo = await startDynalite();
  await createMediaTable(dynamo.endpoint, TABLE);
  await seedItems(dynamo.endpoint, TABLE, [...ORGS, ...USERS, ...OTHERS]);
}, 60_000);

afterAll(async () => {
  await dynamo?.stop();
});

describe('example: fill a field from a related record, scanning one key prefix (DynamoDB)', () => {
  it('passes its own datafix test cases', async () => {
    const r = await runCli(['test', `${REPO_ROOT}examples/fill-from-related-prefix.test.yaml`], { cwd: tmp().path });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^3 passed, 0 failed$/m);
  });

  it('fills orgName on USER# profiles only, skips those without orgId and fails unknown organisations', async () => {
    // Computed from the seeded items alone.
    const orgName = new Map(ORGS.map((o) => [String(o.PK).slice('ORG#'.length), o.name as string | undefined]));
    const noOrgId = USERS.filter((u) => u.orgId === undefined || u.orgId === '');
    const unknown = USERS.filter((u) => !noOrgId.includes(u) && !orgName.get(String(u.orgId)));
    const filled = USERS.filter((u) => !noOrgId.includes(u) && !unknown.includes(u) && u.orgName === undefined);
    const expected = sorted([
      ...ORGS,
      ...OTHERS,
      ...USERS.map((u) => (filled.includes(u) ? { ...u, orgName: orgName.get(String(u.orgId)) } : u)),
    ]);
    expect([noOrgId.length, unknown.length, filled.length].every((n) => n > 0)).toBe(true);

    const env = { APP_TABLE: TABLE, APP_DYNAMODB_ENDPOINT: dynamo.endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: undefined };
    const r = await runCli(['run', FIX, '--json'], { cwd: tmp().path, env });
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1) as string)).toMatchObject({
      // Only the USER# profiles reached datafix: DynamoDB applied the filter.
      total: USERS.length,
      updated: filled.length,
      skipped: USERS.length - filled.length - unknown.length,
      failed: unknown.length,
      reasons: {
        no_org_id: noOrgId.length,
        org_not_found: unknown.length,
        no_change: USERS.length - filled.length - unknown.length - noOrgId.length,
      },
    });
    expect(sorted(await scanAll(dynamo.endpoint, TABLE))).toEqual(expected);
  });
});
