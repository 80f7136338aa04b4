/**
 * Hostile data and secrets on DynamoDB, end to end through the CLI and the shipped i2v fix:
 * an item pushed over 400 KB fails on its own (`item_too_large`) while the others are fixed;
 * numbers beyond double precision, binary and sets are copied exactly; credentials loaded with
 * `--env prod` never appear in output, journal or state files, also when the run fails.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, getRawItem, type RunningDynalite, seedItems, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import { I2V_FIX, i2vDataset } from './support.js';

const tmp = useTempDirs({ scope: 'file' });
let dynamo: RunningDynalite;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo?.stop();
});

const env = (table: string, endpoint = dynamo.endpoint) => ({
  DYNAMODB_TABLE: table,
  LOCAL_AWS_ENDPOINT: endpoint,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: undefined,
});

const s = (v: string): AttributeValue => ({ S: v });
const video = (id: string, extra: Record<string, AttributeValue> = {}): Record<string, AttributeValue> => ({
  PK: s(`MEDIA#${id}`),
  SK: s('METADATA'),
  id: s(id),
  type: s('video'),
  updatedAt: s('2025-01-01T00:00:00.000Z'),
  GSI8PK: s('MEDIA_BY_TYPE_AND_CREATOR'),
  GSI8SK: s(`video#2025-01-01T00:00:00.000Z#${id}`),
  ...extra,
});
const job = (id: string): Record<string, AttributeValue> => ({ PK: s(`I2VJOB#${id}`), SK: s('METADATA'), mediaId: s(`i${id}`) });
const image = (id: string, extra: Record<string, AttributeValue>): Record<string, AttributeValue> => ({
  PK: s(`MEDIA#i${id}`),
  SK: s('METADATA'),
  id: s(`i${id}`),
  type: s('image'),
  ...extra,
});

describe('hostile data on DynamoDB', () => {
  it('a copy that would push an item over 400 KB fails that record (item_too_large); the others are fixed', async () => {
    const table = 'media-big';
    await createMediaTable(dynamo.endpoint, table);
    const bigMap: Record<string, AttributeValue> = {};
    for (let i = 0; i < 35; i++) bigMap[`size${i}`] = s('x'.repeat(10_000)); // ~350 KB
    const items = [
      video('v0'),
      job('v0'),
      image('v0', { thumbnailUrl: s('https://cdn.example.com/v0.jpg') }),
      video('v1', { blob: s('y'.repeat(100_000)) }), // ~100 KB of other data already
      job('v1'),
      image('v1', { thumbnailUrls: { M: bigMap } }),
      video('v2'),
      job('v2'),
      image('v2', { thumbnailUrl: s('https://cdn.example.com/v2.jpg') }),
    ];
    await seedRawItems(dynamo.endpoint, table, items);
    const beforeBig = await getRawItem(dynamo.endpoint, table, { PK: s('MEDIA#v1'), SK: s('METADATA') });

    const r = await runCli(['run', I2V_FIX, '--json'], { cwd: tmp().path, env: env(table) });
    expect(r.code, r.stderr).toBe(1);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ total: 3, updated: 2, failed: 1, reasons: { item_too_large: 1 } });
    expect(r.stderr).toContain('MEDIA#v1');
    expect(await getRawItem(dynamo.endpoint, table, { PK: s('MEDIA#v1'), SK: s('METADATA') })).toEqual(beforeBig);
    for (const id of ['v0', 'v2']) {
      const after = await getRawItem(dynamo.endpoint, table, { PK: s(`MEDIA#${id}`), SK: s('METADATA') });
      expect(after?.thumbnailUrl).toEqual(s(`https://cdn.example.com/${id}.jpg`));
    }
  });

  it('numbers beyond double precision, binary and sets are copied exactly', async () => {
    const table = 'media-exact';
    await createMediaTable(dynamo.endpoint, table);
    const exact: AttributeValue = {
      M: {
        big: { N: '12345678901234567890123456789.123456789' },
        tiny: { N: '0.000000000000000000000000000000000001' },
        neg: { N: '-9007199254740993' },
        bin: { B: new Uint8Array([0, 255, 1, 254, 128]) },
        ss: { SS: ['a', 'b', 'c'] },
        ns: { NS: ['1', '9007199254740993', '1.5'] },
        bs: { BS: [new Uint8Array([1, 2]), new Uint8Array([3])] },
        list: { L: [{ N: '18446744073709551617' }, { NULL: true }, { BOOL: false }] },
      },
    };
    await seedRawItems(dynamo.endpoint, table, [
      video('v0'),
      job('v0'),
      image('v0', { thumbnailUrls: exact, thumbnailUrl: { N: '99999999999999999999' } }),
    ]);
    const r = await runCli(['run', I2V_FIX, '--json'], { cwd: tmp().path, env: env(table) });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ updated: 1, failed: 0 });
    const after = await getRawItem(dynamo.endpoint, table, { PK: s('MEDIA#v0'), SK: s('METADATA') });
    expect(after?.thumbnailUrl).toEqual({ N: '99999999999999999999' });
    const norm = (v: AttributeValue | undefined) =>
      JSON.parse(JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? Buffer.from(x).toString('base64') : x)));
    const sortSets = (v: { M: Record<string, { SS?: string[]; NS?: string[]; BS?: string[] }> }) => {
      for (const a of Object.values(v.M)) for (const k of ['SS', 'NS', 'BS'] as const) a[k]?.sort();
      return v;
    };
    expect(sortSets(norm(after?.thumbnailUrls))).toEqual(sortSets(norm(exact)));
  });
});

/** Every file under `dir`, recursively, with its text. */
function allFiles(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: p, text: readFileSync(p, 'latin1') });
    }
  };
  walk(dir);
  return out;
}

describe('secrets from --env prod never leak', () => {
  const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz';
  const TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLEsessionTOKENzzABCDEF0123456789';
  const KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
  let table: string;

  beforeAll(async () => {
    table = 'media-secrets';
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(dynamo.endpoint, table, i2vDataset(30));
  });

  const cases: { name: string; env: () => Record<string, string>; code: number }[] = [
    { name: 'a successful live run', env: () => ({ DYNAMODB_TABLE: table, LOCAL_AWS_ENDPOINT: dynamo.endpoint }), code: 0 },
    { name: 'an unreachable endpoint', env: () => ({ DYNAMODB_TABLE: table, LOCAL_AWS_ENDPOINT: 'http://127.0.0.1:9' }), code: 2 },
    { name: 'a missing table', env: () => ({ DYNAMODB_TABLE: 'no-such-table', LOCAL_AWS_ENDPOINT: dynamo.endpoint }), code: 2 },
  ];
  for (const c of cases) {
    it(`${c.name}: not in stdout, stderr, journal or state files`, async () => {
      const dir = tmp();
      const lines = {
        ...c.env(),
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: KEY_ID,
        AWS_SECRET_ACCESS_KEY: SECRET,
        AWS_SESSION_TOKEN: TOKEN,
      };
      dir.write(
        '.env.prod',
        `${Object.entries(lines)
          .map(([k, v]) => `${k}=${v}`)
          .join('\n')}\n`,
      );
      const r = await runCli(['run', I2V_FIX, '--env', 'prod', '--json'], {
        cwd: dir.path,
        env: {
          DYNAMODB_TABLE: undefined,
          LOCAL_AWS_ENDPOINT: undefined,
          AWS_ACCESS_KEY_ID: undefined,
          AWS_SECRET_ACCESS_KEY: undefined,
          AWS_SESSION_TOKEN: undefined,
          AWS_PROFILE: undefined,
        },
      });
      expect(r.code, r.stderr).toBe(c.code);
      const files = allFiles(dir.path).filter((f) => !f.path.endsWith('.env.prod'));
      // A journal only where the run started writing; a run refused before that leaves none.
      expect(files.some((f) => f.path.endsWith('.journal.jsonl'))).toBe(c.code === 0);
      for (const secret of [SECRET, TOKEN, KEY_ID, 'bPxRfiCY', 'sessionTOKEN']) {
        expect(r.stdout, 'stdout').not.toContain(secret);
        expect(r.stderr, 'stderr').not.toContain(secret);
        for (const f of files) expect(f.text, f.path).not.toContain(secret);
      }
    });
  }
});
