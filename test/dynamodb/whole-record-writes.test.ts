/**
 * remove, delete and create on the in-process DynamoDB server (dynalite): REMOVE guarded on the
 * value read, DeleteItem conditioned on every attribute of the before-image (too large a guard
 * fails the record, never an unguarded delete), PutItem only where no item has the key; through
 * the CLI with journal and undo, compared attribute by attribute with the items seeded here.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import type { Adapter, Item, WriteRequest } from '../../src/adapters/types.js';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, getRawItem, type RunningDynalite, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { internalError, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, jsonLines, jsonSummary, type RawItem, scanRaw, show } from '../safety/support.js';
import { target } from './fixtures.js';

const tmp = useTempDirs();
let db: RunningDynalite;
let adapter: Adapter;
let tables = 0;

beforeAll(async () => {
  db = await startDynalite();
});
afterAll(async () => {
  await adapter?.close();
  await db?.stop();
});

/** A fresh table seeded with `items` (low-level form), and an adapter on it. */
async function freshTable(items: Record<string, AttributeValue>[]): Promise<string> {
  const table = `whole-${++tables}`;
  await createMediaTable(db.endpoint, table);
  await seedRawItems(db.endpoint, table, items);
  await adapter?.close();
  adapter = await createDynamoAdapter(target(db.endpoint, table), { maxAttempts: 1 });
  return table;
}

const pk = (id: string) => ({ PK: { S: `USER#${id}` }, SK: { S: 'PROFILE' } });
const user = (id: string, extra: Record<string, AttributeValue> = {}): Record<string, AttributeValue> => ({
  ...pk(id),
  name: { S: `user ${id}` },
  ...extra,
});
const key = (id: string): Item => ({ PK: `USER#${id}`, SK: 'PROFILE' });
const raw = (table: string, id: string) => getRawItem(db.endpoint, table, pk(id));
/** Every attribute of a read item as a delete's guarded fields. */
const wholeRecord = (item: Item): WriteRequest['fields'] =>
  Object.entries(item).map(([name, before]) => ({ name, value: undefined, guard: 'unchanged' as const, before }));

const spec = (write: string) => `name: t
target:
  dynamodb:
    table: \${DYNAMODB_TABLE}
    region: us-east-1
    endpoint: \${LOCAL_AWS_ENDPOINT}
source:
  as: u
  scan: {}
${write}`;

describe('delete and create in the adapter', () => {
  it('a delete whose before-image differs from the item in any attribute is a conflict, and the item stays', async () => {
    const table = await freshTable([user('a', { score: { N: '12345678901234567890.5' }, tags: { SS: ['x', 'y'] } })]);
    const [read] = (await adapter.lookup([{ key: key('a'), consistentRead: true }])) as Item[];
    const stale = { ...read, tags: new Set(['x']) } as Item;
    expect(await adapter.write([{ action: 'delete', key: key('a'), fields: wholeRecord(stale) }], { concurrency: 1 })).toEqual([
      { status: 'conflict' },
    ]);
    expect(await raw(table, 'a')).toBeDefined();
    // The exact before-image (a 20-digit number, a string set) deletes it.
    expect(await adapter.write([{ action: 'delete', key: key('a'), fields: wholeRecord(read as Item) }], { concurrency: 1 })).toEqual([
      { status: 'applied' },
    ]);
    expect(await raw(table, 'a')).toBeUndefined();
    expect(await adapter.write([{ action: 'delete', key: key('a'), fields: wholeRecord(read as Item) }], { concurrency: 1 })).toEqual([
      { status: 'not_found' },
    ]);
  });

  it('a delete whose guard would break the 4 KB expression limit fails the record (delete_guard_too_large); the item stays', async () => {
    const many: Record<string, AttributeValue> = {};
    for (let i = 0; i < 400; i++) many[`attribute_number_${i}`] = { S: `v${i}` };
    const table = await freshTable([user('wide', many)]);
    const [read] = (await adapter.lookup([{ key: key('wide'), consistentRead: true }])) as Item[];
    const [result] = await adapter.write([{ action: 'delete', key: key('wide'), fields: wholeRecord(read as Item) }], { concurrency: 1 });
    expect(result).toMatchObject({ status: 'failed', reason: 'delete_guard_too_large' });
    expect((result as { message: string }).message).toContain("over DynamoDB's 4096-byte expression limit; the item was not deleted");
    expect(Object.keys((await raw(table, 'wide')) ?? {})).toHaveLength(403);
  });

  it('a remove guarded on a value changed since the read is a conflict, and the new value stays', async () => {
    const table = await freshTable([user('r', { legacy: { S: 'theirs now' } })]);
    const remove: WriteRequest = { key: key('r'), fields: [{ name: 'legacy', value: undefined, guard: 'unchanged', before: 'as read' }] };
    expect(await adapter.write([remove], { concurrency: 1 })).toEqual([{ status: 'conflict' }]);
    expect((await raw(table, 'r'))?.legacy).toEqual({ S: 'theirs now' });
  });

  it('a create over an existing item is a conflict and leaves it as it was (never a replace)', async () => {
    const table = await freshTable([user('b')]);
    const create: WriteRequest = {
      action: 'create',
      key: key('b'),
      fields: [
        { name: 'PK', value: 'USER#b', guard: 'absent' },
        { name: 'SK', value: 'PROFILE', guard: 'absent' },
        { name: 'name', value: 'new', guard: 'absent' },
      ],
    };
    expect(await adapter.write([create], { concurrency: 1 })).toEqual([{ status: 'conflict' }]);
    expect(await raw(table, 'b')).toEqual(user('b'));
  });
});

describe('a saved plan of a DynamoDB delete', () => {
  it('an item that gained an attribute since the plan is drifted and kept whole; the others are deleted', async () => {
    const table = await freshTable([user('p1', { old: { BOOL: true } }), user('p2', { old: { BOOL: true } })]);
    const dir = tmp();
    const file = dir.write('delete.yaml', spec('delete:\n  key: { PK: "{{ u.PK }}", SK: "{{ u.SK }}" }\n'));
    const env = dynamoEnv(table, db.endpoint);
    const plan = dir.file('delete.plan.jsonl');
    const planned = await runCli(['plan', file, '--out', plan], { cwd: dir.path, env });
    expect(planned.code, show(planned)).toBe(0);
    const grown = { ...user('p2', { old: { BOOL: true } }), note: { S: 'added after the plan' } };
    await seedRawItems(db.endpoint, table, [grown]);
    const dry = await runCli(['apply', plan, '--dry-run', '--json'], { cwd: dir.path, env });
    expect(jsonSummary(dry)).toMatchObject({ applied: 1, drifted: 1 });
    const applied = await runCli(['apply', plan, '--yes', '--json'], { cwd: dir.path, env });
    expect(applied.code, show(applied)).toBe(1);
    expect(jsonSummary(applied)).toMatchObject({ applied: 1, drifted: 1 });
    expect(applied.stderr).toContain('(it gained note since the plan was made)');
    expect(await raw(table, 'p1')).toBeUndefined();
    expect(await raw(table, 'p2')).toEqual(grown);
  });
});

describe('lost acknowledgements of deletes and creates', () => {
  it('a delete or create that landed but whose answer was lost (the SDK retried into its own guard) counts as applied', async () => {
    const table = await freshTable([user('lost-delete')]);
    let lose: string | undefined;
    const proxy = await startCountingProxy(db.endpoint, {
      fault: (r) => {
        if ((r.operation === 'DeleteItem' || r.operation === 'PutItem') && lose && r.body.includes(lose)) {
          lose = undefined;
          return { afterForward: () => internalError() };
        }
        return undefined;
      },
    });
    const flaky = await createDynamoAdapter(target(proxy.endpoint, table), { maxAttempts: 2, retryBaseMs: 1 });
    try {
      const [read] = (await flaky.lookup([{ key: key('lost-delete'), consistentRead: true }])) as Item[];
      lose = 'USER#lost-delete';
      expect(
        await flaky.write([{ action: 'delete', key: key('lost-delete'), fields: wholeRecord(read as Item) }], { concurrency: 1 }),
      ).toEqual([{ status: 'applied' }]);
      expect(await raw(table, 'lost-delete')).toBeUndefined();
      lose = 'USER#lost-create';
      const fields = [
        { name: 'PK', value: 'USER#lost-create', guard: 'absent' as const },
        { name: 'SK', value: 'PROFILE', guard: 'absent' as const },
        { name: 'name', value: 'created', guard: 'absent' as const },
      ];
      expect(await flaky.write([{ action: 'create', key: key('lost-create'), fields }], { concurrency: 1 })).toEqual([
        { status: 'applied' },
      ]);
      expect(await raw(table, 'lost-create')).toEqual({ ...pk('lost-create'), name: { S: 'created' } });
      // Each was sent twice: the first landed, its answer replaced by a 500.
      expect(proxy.counts().DeleteItem).toBe(2);
      expect(proxy.counts().PutItem).toBe(2);
    } finally {
      await flaky.close();
      await proxy.stop();
    }
  });
});

describe('DynamoDB through the CLI', () => {
  it('update.remove: REMOVEs the attribute where present (a NULL one too), absent is no_change; undo restores each exactly', async () => {
    const items = [
      user('s', { legacy: { S: 'old' } }),
      user('n', { legacy: { NULL: true } }),
      user('m', { legacy: { M: { deep: { N: '1.50' } } } }),
      user('none'),
    ];
    const table = await freshTable(items);
    const before = await scanRaw(db.endpoint, table);
    const dir = tmp();
    const file = dir.write('remove.yaml', spec('update:\n  key: { PK: "{{ u.PK }}", SK: "{{ u.SK }}" }\n  remove: [legacy]\n'));
    const env = dynamoEnv(table, db.endpoint);
    const dry = await runCli(['run', file, '--dry-run'], { cwd: dir.path, env });
    expect(dry.code, show(dry)).toBe(0);
    expect(dry.stdout).toContain('legacy: "old" → (absent) (remove)');
    expect(dry.stdout).toContain('legacy: null → (absent) (remove)');
    const r = await runCli(['run', file, '--yes', '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ total: 4, updated: 3, skipped: 1, reasons: { no_change: 1 } });
    const after = await scanRaw(db.endpoint, table);
    expect(after.filter((i) => 'legacy' in i)).toEqual([]);
    expect(after).toHaveLength(4);
    const journal = /journal (\S+\.journal\.jsonl) \(undo with/.exec(r.stderr)?.[1] as string;
    expect(jsonLines(journal)[0]).toMatchObject({ format: 5 });
    const undo = await runCli(['undo', journal, '--yes', '--json'], { cwd: dir.path, env });
    expect(undo.code, show(undo)).toBe(0);
    const sorted = (xs: RawItem[]) => [...xs].sort((a, b) => JSON.stringify(a.PK).localeCompare(JSON.stringify(b.PK)));
    expect(sorted(await scanRaw(db.endpoint, table))).toEqual(sorted(before));
  });

  it('delete: deletes the items a skip rule does not keep; undo puts each back attribute for attribute', async () => {
    const items = [
      user('keep', { active: { BOOL: true } }),
      user('gone1', { active: { BOOL: false }, n: { N: '99999999999999999999999999999999999999' }, bin: { B: new Uint8Array([0, 255]) } }),
      user('gone2', { active: { BOOL: false }, list: { L: [{ S: 'a' }, { NULL: true }] } }),
    ];
    const table = await freshTable(items);
    const before = await scanRaw(db.endpoint, table);
    const dir = tmp();
    const file = dir.write(
      'delete.yaml',
      spec('skip:\n  - { reason: active, when: { equals: { u.active: true } } }\ndelete:\n  key: { PK: "{{ u.PK }}", SK: "{{ u.SK }}" }\n'),
    );
    const env = dynamoEnv(table, db.endpoint);
    const r = await runCli(['run', file, '--yes', '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ total: 3, updated: 2, skipped: 1, reasons: { active: 1 } });
    expect((await scanRaw(db.endpoint, table)).map((i) => i.PK)).toEqual([{ S: 'USER#keep' }]);
    const journal = /journal (\S+\.journal\.jsonl) \(undo with/.exec(r.stderr)?.[1] as string;
    const undo = await runCli(['undo', journal, '--yes', '--json'], { cwd: dir.path, env });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: 2, conflicts: 0 });
    const sorted = (xs: RawItem[]) => [...xs].sort((a, b) => JSON.stringify(a.PK).localeCompare(JSON.stringify(b.PK)));
    expect(sorted(await scanRaw(db.endpoint, table))).toEqual(sorted(before));
  });

  it('create: one item per source item where absent (an existing one is `exists`, kept as it was); undo deletes what it created, unless it changed since', async () => {
    const theirs = { PK: { S: 'STATS#USER#b' }, SK: { S: 'PROFILE' }, hits: { N: '5' } };
    const table = await freshTable([user('a'), user('b'), user('c'), theirs]);
    const dir = tmp();
    const file = dir.write(
      'create.yaml',
      spec('create:\n  key: { PK: "STATS#{{ u.PK }}", SK: PROFILE }\n  set: { hits: 0, owner: "{{ u.PK }}" }\n').replace(
        '  scan: {}',
        '  scan: { filter: { exists: name } }',
      ),
    );
    const env = dynamoEnv(table, db.endpoint);
    const r = await runCli(['run', file, '--yes', '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(0);
    expect(jsonSummary(r)).toMatchObject({ total: 3, updated: 2, skipped: 1, reasons: { exists: 1 } });
    expect(await getRawItem(db.endpoint, table, { PK: { S: 'STATS#USER#a' }, SK: { S: 'PROFILE' } })).toEqual({
      PK: { S: 'STATS#USER#a' },
      SK: { S: 'PROFILE' },
      hits: { N: '0' },
      owner: { S: 'USER#a' },
    });
    expect(await getRawItem(db.endpoint, table, { PK: { S: 'STATS#USER#b' }, SK: { S: 'PROFILE' } })).toEqual(theirs);
    const again = await runCli(['run', file, '--yes', '--json'], { cwd: dir.path, env });
    expect(jsonSummary(again)).toMatchObject({ updated: 0, skipped: 3, reasons: { exists: 3 } });
    // Someone adds an attribute to one created item: undo keeps that item, and deletes the other.
    await seedRawItems(db.endpoint, table, [
      { PK: { S: 'STATS#USER#c' }, SK: { S: 'PROFILE' }, hits: { N: '0' }, owner: { S: 'USER#c' }, note: { S: 'added later' } },
    ]);
    const journal = /journal (\S+\.journal\.jsonl) \(undo with/.exec(r.stderr)?.[1] as string;
    const undo = await runCli(['undo', journal, '--yes', '--json'], { cwd: dir.path, env });
    expect(undo.code, show(undo)).toBe(1);
    expect(jsonSummary(undo)).toMatchObject({ restored: 1, conflicts: 1 });
    expect(undo.stderr).toContain('changed since the run created it (it gained note); it was left alone');
    expect((await scanRaw(db.endpoint, table)).map((i) => i.PK?.S).sort()).toEqual([
      'STATS#USER#b',
      'STATS#USER#c',
      'USER#a',
      'USER#b',
      'USER#c',
    ]);
  });
});
