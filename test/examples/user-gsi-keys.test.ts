/** examples/user-gsi-keys.yaml end to end on the in-process DynamoDB server, checked against plain JS. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, type RawItem, scanRaw, show } from '../safety/support.js';
import { example, expectExampleTestsPass, lowerAscii, upperAscii } from './support.js';

const tmp = useTempDirs();

describe('examples/user-gsi-keys', () => {
  let dynamo: RunningDynalite;
  beforeAll(async () => {
    dynamo = await startDynalite();
  }, 30_000 * TIME_SCALE);
  afterAll(async () => {
    await dynamo?.stop();
  });

  it('passes its datafix test file', async () => {
    await expectExampleTestsPass('user-gsi-keys', 2);
  });

  it('builds GSI1PK and GSI1SK from each user item, fill-only', async () => {
    const table = 'users';
    await createMediaTable(dynamo.endpoint, table);
    const orgs = [' Acme Corp ', 'GLOBEX', 'initech', undefined];
    const last = ['Lovelace', 'hopper', undefined];
    const items: RawItem[] = Array.from({ length: 36 }, (_, i) => {
      const org = orgs[i % orgs.length];
      const lastName = last[i % last.length];
      return {
        PK: { S: `USER#u${i}` },
        SK: { S: i % 9 === 8 ? 'META' : 'PROFILE' },
        entity: { S: i % 9 === 8 ? 'org' : 'user' },
        userId: { S: `u${i}` },
        ...(org !== undefined ? { org: { S: org } } : {}),
        ...(lastName !== undefined ? { lastName: { S: lastName } } : {}),
        ...(i % 7 === 6 ? { GSI1PK: { S: 'ORG#kept' } } : {}),
      };
    });
    await seedRawItems(dynamo.endpoint, table, items);
    const r = await runCli(['run', example('user-gsi-keys.yaml'), '--json'], { cwd: tmp().path, env: dynamoEnv(table, dynamo.endpoint) });
    expect(r.code, show(r)).toBe(0);

    const expected = items.map((it) => {
      if (it.entity?.S !== 'user' || it.org === undefined) return it;
      const out: RawItem = { ...it };
      out.GSI1PK ??= { S: `ORG#${lowerAscii((it.org.S as string).trim())}` };
      if (it.lastName !== undefined) out.GSI1SK = { S: `USER#${upperAscii(it.lastName.S as string)}#${it.userId?.S}` };
      return out;
    });
    const byPk = (list: RawItem[]) => [...list].sort((a, b) => String(a.PK?.S).localeCompare(String(b.PK?.S)));
    expect(byPk(await scanRaw(dynamo.endpoint, table))).toEqual(byPk(expected));
  });
});
