/**
 * Comparisons (`lt` … `type`) on DynamoDB: the same condition run by the server as a scan
 * `filter` and by datafix as a skip rule over the same items selects the same items, and those are
 * the items written down here by hand from DynamoDB's rules: values of different types never
 * compare; strings order by UTF-8 bytes; numbers exactly (38 digits, never through a double);
 * begins_with on strings only; contains is a substring, a set member or a list element; a
 * missing attribute satisfies nothing.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { RecordEvent } from '../../src/engine/events.js';
import { runFix } from '../../src/engine/run.js';
import { compileSpec } from '../../src/language/compile.js';
import { loadSpecText } from '../../src/language/load.js';
import { createMediaTable, type RunningDynalite, seedRawItems, startDynalite } from '../helpers/dynalite.js';

const TABLE = 'cmp';
let db: RunningDynalite;

// Item n has PK `ITEM#n` and the attribute `v` below (item 7 has none).
const V: Record<number, AttributeValue | undefined> = {
  1: { N: '9' },
  2: { N: '10' },
  3: { S: '10' },
  4: { S: 'USER#abc' },
  5: { S: 'user#def' },
  6: { NULL: true },
  7: undefined,
  8: { N: '12345678901234567890123456789012345678' },
  9: { N: '9007199254740991.4' },
  10: { N: '0.10000000000000000000000000000000000001' },
  11: { SS: ['a', 'b'] },
  12: { NS: ['1', '2'] },
  13: { L: [{ S: 'a' }, { N: '1' }, { BOOL: true }] },
  14: { M: { a: { S: 'x' } } },
  15: { BOOL: true },
  16: { S: '' },
  17: { B: new Uint8Array([1, 2]) },
  18: { S: 'Äpfel' },
};
const IDS = Object.keys(V).map(Number);

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, TABLE);
  await seedRawItems(
    db.endpoint,
    TABLE,
    IDS.map((n) => {
      const v = V[n];
      return { PK: { S: `ITEM#${n}` }, SK: { S: 'A' }, ...(v ? { v } : {}) };
    }),
  );
}, 60_000);

afterAll(async () => {
  await db?.stop();
});

/** The ids of the items a spec's dry run reports with `pick`. */
async function run(yaml: string, pick: (r: RecordEvent) => boolean): Promise<number[]> {
  const plan = compileSpec(loadSpecText(yaml, 'spec.yaml'), { env: {} });
  if (plan.target.backend !== 'dynamodb') throw new Error('a DynamoDB spec');
  const adapter = await createDynamoAdapter(plan.target);
  const records: RecordEvent[] = [];
  try {
    await adapter.check(plan);
    await runFix(plan, adapter, { dryRun: true, onEvent: (e) => void (e.type === 'record' && records.push(e)) });
  } finally {
    await adapter.close();
  }
  return records
    .filter(pick)
    .map((r) => Number(String(r.key.PK).slice('ITEM#'.length)))
    .sort((a, b) => a - b);
}

function prefixed(cond: unknown, prefix: string): unknown {
  if (Array.isArray(cond)) return cond.map((c) => prefixed(c, prefix));
  const [op, arg] = Object.entries(cond as object)[0] as [string, unknown];
  if (op === 'all' || op === 'any' || op === 'not') return { [op]: prefixed(arg, prefix) };
  return { [op]: Object.fromEntries(Object.entries(arg as object).map(([k, v]) => [`${prefix}${k}`, v])) };
}

async function selectedBy(cond: unknown): Promise<{ filter: number[]; skip: number[] }> {
  const head = `name: cmp\ntarget:\n  dynamodb: { table: ${TABLE}, region: us-east-1, endpoint: "${db.endpoint}" }\n`;
  const update = 'update:\n  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }\n  set: { mark: x }\n';
  const filter = await run(`${head}source:\n  as: item\n  scan:\n    filter: ${JSON.stringify(cond)}\n${update}`, () => true);
  const skip = await run(
    `${head}source:\n  as: item\n  scan: {}\nskip:\n  - reason: hit\n    when: ${JSON.stringify(prefixed(cond, 'item.'))}\n${update}`,
    (r) => r.reason === 'hit',
  );
  return { filter, skip };
}

const except = (...ids: number[]) => IDS.filter((n) => !ids.includes(n));

/**
 * Each case: the condition, the items DynamoDB's rules select, and where the test server
 * (dynalite) is known to differ from DynamoDB, what it selects instead.
 */
const CASES: [string, unknown, number[], number[]?][] = [
  ['gt a number: numbers only, exactly', { gt: { v: 9 } }, [2, 8, 9]],
  ['lt a number', { lt: { v: 10 } }, [1, 10]],
  // 9007199254740991.4 is above 9007199254740991 (as a double it would be equal).
  ['gt beyond double precision', { gt: { v: 9007199254740991 } }, [8, 9]],
  // 0.1000…01 (38 digits) is above 0.1 (as a double it would be equal).
  ['gt 0.1, 38 digits', { gt: { v: 0.1 } }, [1, 2, 8, 9, 10]],
  ['lte', { lte: { v: 9 } }, [1, 10]],
  // Strings by UTF-8 bytes: capitals before lowercase, 'Ä' (C3 84) after both.
  ['gte a string', { gte: { v: 'USER#' } }, [4, 5, 18]],
  ['lt a string: the empty string too', { lt: { v: 'a' } }, [3, 4, 16]],
  ['between numbers', { between: { v: [9, 10] } }, [1, 2]],
  ['between strings', { between: { v: ['U', 'v'] } }, [4, 5]],
  ['beginsWith', { beginsWith: { v: 'USER#' } }, [4]],
  ['contains a substring, a set member, a list element', { contains: { v: 'a' } }, [4, 11, 13]],
  ['contains a number: number set and list', { contains: { v: 1 } }, [12, 13]],
  ['in: one type each', { in: { v: [9, '10'] } }, [1, 3]],
  // The empty string is a string (S) to DynamoDB; dynalite's attribute_type misses it (it tests
  // the value for truth), so its filter leaves item 16 out.
  ['type string', { type: { v: 'string' } }, [3, 4, 5, 16, 18], [3, 4, 5, 18]],
  ['type number', { type: { v: 'number' } }, [1, 2, 8, 9, 10]],
  ['type null: present NULL only', { type: { v: 'null' } }, [6]],
  ['type map', { type: { v: 'map' } }, [14]],
  ['type list', { type: { v: 'list' } }, [13]],
  ['type boolean', { type: { v: 'boolean' } }, [15]],
  ['type stringSet', { type: { v: 'stringSet' } }, [11]],
  ['type numberSet', { type: { v: 'numberSet' } }, [12]],
  ['type binary', { type: { v: 'binary' } }, [17]],
  // A test that is false (other type, missing) is true under `not`.
  ['not gt', { not: { gt: { v: 9 } } }, except(2, 8, 9)],
  ['not type null: missing too', { not: { type: { v: 'null' } } }, except(6)],
  ['any', { any: [{ beginsWith: { v: 'user#' } }, { lt: { v: 0.5 } }] }, [5, 10]],
];

describe('comparisons on DynamoDB mean what DynamoDB means, in filters and in skip rules alike', () => {
  it.each(CASES)('%s', async (_name, cond, expected, onTestServer) => {
    const got = await selectedBy(cond);
    expect(got.filter).toEqual(onTestServer ?? expected);
    expect(got.skip).toEqual(expected);
  });
});
