/**
 * Every value SQLite can hold round-trips exactly through a live run with its journal, a saved
 * plan and `apply`, and `undo`: compared by storage class and bytes in the database, never through
 * datafix. A value datafix cannot keep exactly fails its record with a named reason before
 * anything of that record is written.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  AFFINITY_RAWS,
  affinityOracle,
  affinitySnapshot,
  createAffinityDb,
  createValuesDb,
  exactRows,
  SPEC,
  snapshot,
  VALUES,
} from './exact-values-data.js';
import { dynamoEnv, jsonSummary, pkOf, type RawItem, scanRaw, show } from './support.js';

const tmp = useTempDirs();

describe('SQLite values of every storage class', () => {
  it('survive run + undo, and plan + apply + undo, byte for byte; invalid UTF-8 text fails with value_not_exact', async () => {
    const dir = tmp();
    const template = dir.file('template.db');
    createValuesDb(template);
    const spec = dir.write('values.yaml', SPEC);
    const before = snapshot(template);
    // The row whose new value is NULL writes nothing (a missing value is never written).
    const nullRow = VALUES.indexOf('NULL'); // row nullRow replaces VALUES[nullRow - 1] with NULL
    const expectedUpdated = VALUES.length - 1;
    const copied = (rows: unknown[]) =>
      (rows as Record<string, unknown>[]).map((r) => (r.id === 100 || r.id === nullRow ? r : { ...r, t_v: r.t_v_new, x_v: r.x_v_new }));

    for (const mode of ['run', 'plan'] as const) {
      const db = dir.file(`${mode}.db`);
      copyFileSync(template, db);
      const env = { VALUES_DB: db };
      const journal = dir.file(`${mode}.journal.jsonl`);
      let result: Awaited<ReturnType<typeof runCli>>;
      if (mode === 'run') {
        result = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path, env });
        expect(result.code, show(result)).toBe(1);
        expect(jsonSummary(result)).toMatchObject({ total: VALUES.length + 1, updated: expectedUpdated, failed: 1 });
        expect(jsonSummary(result).reasons).toMatchObject({ value_not_exact: 1 });
      } else {
        const planFile = dir.file('values.plan.jsonl');
        const plan = await runCli(['plan', spec, '--out', planFile], { cwd: dir.path, env });
        expect(plan.code, show(plan)).toBe(0);
        result = await runCli(['apply', planFile, '--journal', journal, '--json'], { cwd: dir.path, env });
        expect(result.code, show(result)).toBe(1);
      }
      expect(snapshot(db), mode).toEqual(copied(before));

      const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
      expect(undo.code, show(undo)).toBe(0);
      expect(jsonSummary(undo)).toMatchObject({ restored: expectedUpdated, conflicts: 0, failed: 0 });
      expect(snapshot(db), mode).toEqual(before);
    }
  });
});

/**
 * DynamoDB attribute values of every type: S (empty, non-BMP), N at 38 digits and at both ends of
 * the range, B (empty and binary), SS, NS, BS, BOOL, NULL, and L/M holding sets and binary.
 */
const DYNAMO_VALUES: AttributeValue[] = [
  { S: '' },
  { S: 'smile 😀 and nul \u0000' },
  { N: '12345678901234567890123456789012345678' },
  { N: '1E-130' },
  { N: '-9.9999999999999999999999999999999999999E+125' },
  { N: '0.1' },
  { B: new Uint8Array([]) },
  { B: new Uint8Array([0, 255, 16]) },
  { SS: ['a', 'b', ''] },
  { NS: ['1', '-0.000000000000000000000000000000000001', '98765432109876543210987654321098765432'] },
  { BS: [new Uint8Array([1]), new Uint8Array([0, 255])] },
  { BOOL: true },
  { BOOL: false },
  { NULL: true },
  {
    L: [
      { SS: ['x'] },
      { NS: ['2', '12345678901234567890123456789012345678'] },
      { BS: [new Uint8Array([7])] },
      { B: new Uint8Array([9]) },
      { M: { deep: { L: [{ N: '1E+125' }] } } },
    ],
  },
  { M: { set: { SS: ['m'] }, bin: { B: new Uint8Array([1, 2]) }, n: { N: '-1E-130' }, empty: { M: {} }, list: { L: [] } } },
  // Maps shaped like the journal's and plan's own value tags: still maps after the round trip.
  { M: { $number: { S: '5' } } },
  { M: { $set: { L: [{ S: 'a' }] } } },
  { M: { $binary: { S: 'AAE=' } } },
  { M: { $absent: { BOOL: true } } },
  { M: { $absent: { BOOL: true }, other: { N: '1' } } },
  { M: { $map: { M: { $number: { S: '7' } } } } },
  { L: [{ M: { $number: { S: '9' } } }] },
];

describe('DynamoDB values of every type', () => {
  let dynamo: RunningDynalite;
  beforeAll(async () => {
    dynamo = await startDynalite();
  }, 30_000 * TIME_SCALE);
  afterAll(async () => {
    await dynamo?.stop();
  });

  const spec = `name: exact-dynamo-values
target:
  dynamodb: { table: "\${DYNAMODB_TABLE}", region: us-east-1, endpoint: "\${LOCAL_AWS_ENDPOINT}" }
source:
  as: item
  scan: {}
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set:
    v: "{{ item.v_new }}"
  overwrite: true
  touch: { touchedAt: "{{ now }}" }
`;

  it('survive run + undo, and plan + apply + undo, byte for byte', async () => {
    const dir = tmp();
    const file = dir.write('values.yaml', spec);
    // Item i replaces value i with value i + 1; values that are "missing" as a template result
    // (the empty string, NULL) are never written, so those items are left alone.
    const items: RawItem[] = DYNAMO_VALUES.map((v, i) => ({
      PK: { S: `V#${String(i).padStart(2, '0')}` },
      SK: { S: 'METADATA' },
      v,
      v_new: DYNAMO_VALUES[(i + 1) % DYNAMO_VALUES.length] as AttributeValue,
    }));
    const unwritten = items.filter((it) => it.v_new?.S === '' || it.v_new?.NULL === true).map(pkOf);
    expect(unwritten.length).toBe(2);

    for (const mode of ['run', 'plan'] as const) {
      const table = `exact-${mode}`;
      await createMediaTable(dynamo.endpoint, table);
      await seedRawItems(dynamo.endpoint, table, items);
      const before = await scanRaw(dynamo.endpoint, table);
      const env = dynamoEnv(table, dynamo.endpoint);
      const journal = dir.file(`${mode}.journal.jsonl`);
      if (mode === 'run') {
        const run = await runCli(['run', file, '--journal', journal, '--json'], { cwd: dir.path, env });
        expect(run.code, show(run)).toBe(0);
        expect(jsonSummary(run)).toMatchObject({ total: items.length, updated: items.length - unwritten.length, failed: 0 });
      } else {
        const planFile = dir.file('dynamo.plan.jsonl');
        const plan = await runCli(['plan', file, '--out', planFile], { cwd: dir.path, env });
        expect(plan.code, show(plan)).toBe(0);
        const apply = await runCli(['apply', planFile, '--journal', journal, '--json'], { cwd: dir.path, env });
        expect(apply.code, show(apply)).toBe(0);
      }
      const after = await scanRaw(dynamo.endpoint, table);
      after.forEach((item, i) => {
        const was = before[i] as RawItem;
        if (unwritten.includes(pkOf(item))) expect(item, pkOf(item)).toEqual(was);
        else expect(item.v, `${mode} ${pkOf(item)}`).toEqual(was.v_new);
      });

      const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
      expect(undo.code, show(undo)).toBe(0);
      expect(jsonSummary(undo)).toMatchObject({ restored: items.length - unwritten.length, conflicts: 0, failed: 0 });
      expect(await scanRaw(dynamo.endpoint, table), mode).toEqual(before);
    }
  });
});

describe('numbers in JSON text keep every digit', () => {
  const extractSpec = (target: string, update: string) =>
    `name: json-ids
target:
${target}
source:
  as: r
  ${update.includes('table:') ? 'table: t' : 'scan: {}'}
extract:
  x: { from: r.raw, parse: json, first: ["$.data.id"] }
update:
${update}
  set: { ext: "{{ x }}" }
`;

  it('SQLite: a 19-digit id is written exactly; one beyond 64 bits fails alone with value_not_exact', async () => {
    const dir = tmp();
    const db = dir.file('ids.db');
    const w = new Database(db);
    w.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, raw TEXT, ext)');
    const ins = w.prepare('INSERT INTO t (id, raw) VALUES (?, ?)');
    ins.run(1, '{"data":{"id":1091482500479000001}}');
    ins.run(2, '{"data":{"id":1234567890123456789012345}}');
    ins.run(3, '{"data":{"id":-9223372036854775808,"more":[1e400]}}');
    ins.run(4, '{"data":{"id":0.30000000000000004}}');
    w.close();
    const spec = dir.write('ids.yaml', extractSpec(`  sqlite: { path: "${db}" }`, '  table: t\n  key: { id: "{{ r.id }}" }'));
    const live = await runCli(['run', spec, '--json'], { cwd: dir.path });
    expect(live.code, show(live)).toBe(1);
    expect(jsonSummary(live)).toMatchObject({ total: 4, updated: 3, failed: 1, reasons: { value_not_exact: 1 } });
    expect(live.stderr).toContain('ext: 1234567890123456789012345 is beyond what SQLite stores exactly');
    expect(exactRows(db, 'SELECT id, ext, typeof(ext) AS type FROM t ORDER BY id')).toEqual([
      { id: 1n, ext: 1091482500479000001n, type: 'integer' },
      { id: 2n, ext: null, type: 'null' },
      { id: 3n, ext: -9223372036854775808n, type: 'integer' },
      { id: 4n, ext: 0.30000000000000004, type: 'real' },
    ]);
  });

  it('SQLite: a live run pages and checkpoints primary keys beyond 2^53 (snowflake ids) and updates every row', async () => {
    const dir = tmp();
    const db = dir.file('snow.db');
    const w = new Database(db);
    w.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)');
    const ins = w.prepare('INSERT INTO t (id) VALUES (?)');
    const ids = [0n, 1n, 2n, 3n, 4n].map((i) => 4611686018427387904n + i);
    for (const id of ids) ins.run(id);
    w.close();
    const spec = dir.write(
      'snow.yaml',
      `name: snow\ntarget:\n  sqlite: { path: "${db}" }\nsource: { as: r, table: t, pageSize: 2 }\nupdate:\n  key: { id: "{{ r.id }}" }\n  set: { note: x }\n`,
    );
    const live = await runCli(['run', spec, '--json'], { cwd: dir.path });
    expect(live.code, show(live)).toBe(0);
    expect(jsonSummary(live)).toMatchObject({ total: 5, updated: 5, failed: 0 });
    expect(exactRows(db, 'SELECT id, note FROM t ORDER BY id')).toEqual(ids.map((id) => ({ id, note: 'x' })));
  });

  it('DynamoDB: a 19-digit id is written as that number, not the nearest double', async () => {
    const dynamo = await startDynalite();
    try {
      const dir = tmp();
      const table = 'json-ids';
      await createMediaTable(dynamo.endpoint, table);
      await seedRawItems(dynamo.endpoint, table, [
        { PK: { S: 'J#1' }, SK: { S: 'METADATA' }, raw: { S: '{"data":{"id":1091482500479000001}}' } },
        { PK: { S: 'J#2' }, SK: { S: 'METADATA' }, raw: { S: '{"data":{"id":-12345678901234567890123456789012345678}}' } },
      ]);
      const spec = dir.write(
        'ids.yaml',
        extractSpec(
          '  dynamodb: { table: "${DYNAMODB_TABLE}", region: us-east-1, endpoint: "${LOCAL_AWS_ENDPOINT}" }',
          '  key: { PK: "{{ r.PK }}", SK: "{{ r.SK }}" }',
        ),
      );
      const live = await runCli(['run', spec, '--json'], { cwd: dir.path, env: dynamoEnv(table, dynamo.endpoint) });
      expect(live.code, show(live)).toBe(0);
      const items = await scanRaw(dynamo.endpoint, table);
      expect(items.map((i) => i.ext)).toEqual([{ N: '1091482500479000001' }, { N: '-12345678901234567890123456789012345678' }]);
    } finally {
      await dynamo.stop();
    }
  });
});

describe("SQLite's type affinity", () => {
  it('a value goes into each column as SQLite stores it there: the dry run shows it, the live run writes it, undo restores every row', async () => {
    const dir = tmp();
    const db = dir.file('affinity.db');
    const oracle = dir.file('oracle.db');
    createAffinityDb(db);
    const raws = AFFINITY_RAWS;
    affinityOracle(db, oracle);
    const spec = dir.write(
      'affinity.yaml',
      `name: affinity
target:
  sqlite: { path: "${db}" }
source: { as: row, table: t }
extract:
  v: { from: row.raw, parse: json, path: "$.v" }
update:
  table: t
  key: { id: "{{ row.id }}" }
  set: { txt: "{{ v }}", num: "{{ v }}", r: "{{ v }}", nu: "{{ v }}", b: "{{ v }}" }
`,
    );
    const snapshotOf = affinitySnapshot;
    const before = snapshotOf(db);
    const dry = await runCli(['run', spec, '--dry-run'], { cwd: dir.path });
    expect(dry.code, show(dry)).toBe(0);
    // The dry run shows what will be stored: the number 12345 as TEXT "12345" in txt.
    expect(dry.stdout).toContain('txt: null → "12345"');
    const journal = dir.file('affinity.journal.jsonl');
    const live = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path });
    expect(live.code, show(live)).toBe(0);
    expect(snapshotOf(db)).toEqual(snapshotOf(oracle));
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: raws.length, conflicts: 0, failed: 0 });
    expect(snapshotOf(db)).toEqual(before);
  });
});

describe('a key SQLite cannot address', () => {
  it('a TEXT key that is not valid UTF-8 fails its record with value_not_exact (exit 1), not skipped as deleted', async () => {
    const dir = tmp();
    const db = dir.file('keys.db');
    const w = new Database(db);
    w.exec(
      "CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT, w TEXT); INSERT INTO t VALUES (CAST(x'61ff62' AS TEXT), 'x', NULL), ('ok', 'y', NULL)",
    );
    w.close();
    const spec = dir.write(
      'keys.yaml',
      `name: keys\ntarget:\n  sqlite: { path: "${db}" }\nsource: { as: row, table: t }\nupdate:\n  table: t\n  key: { id: "{{ row.id }}" }\n  set: { w: "{{ row.v }}" }\n`,
    );
    const r = await runCli(['run', spec, '--json'], { cwd: dir.path });
    expect(r.code, show(r)).toBe(1);
    expect(jsonSummary(r)).toMatchObject({ updated: 1, skipped: 0, failed: 1, reasons: { value_not_exact: 1 } });
    expect(r.stderr).toContain(
      "its stored text is not valid in the database's encoding (it reads back with U+FFFD), so SQLite cannot address the row by it",
    );
    expect(exactRows(db, 'SELECT hex(id) AS id, w FROM t ORDER BY id')).toEqual([
      { id: '61FF62', w: null },
      { id: '6F6B', w: 'y' },
    ]);
  });
});

describe('STRICT tables and numbers a double holds by chance', () => {
  it('an ANY column of a STRICT table keeps text as text; 1e20 from JSON fails alike in a run and in plan + apply', async () => {
    const dir = tmp();
    const db = dir.file('strict.db');
    const w = new Database(db);
    w.exec('CREATE TABLE s (id INTEGER PRIMARY KEY, raw TEXT, a ANY, t TEXT) STRICT');
    w.prepare('INSERT INTO s (id, raw) VALUES (?, ?)').run(1, '{"v":"007","big":100000000000000000000}');
    w.close();
    const spec = dir.write(
      'strict.yaml',
      `name: strict\ntarget:\n  sqlite: { path: "${db}" }\nsource: { as: row, table: s }\nextract:\n  v: { from: row.raw, parse: json, path: "$.v" }\nupdate:\n  table: s\n  key: { id: "{{ row.id }}" }\n  set: { a: "{{ v }}" }\n`,
    );
    const r = await runCli(['run', spec, '--json'], { cwd: dir.path });
    expect(r.code, show(r)).toBe(0);
    const read = () => exactRows(db, 'SELECT a, typeof(a) AS ta, t, typeof(t) AS tt FROM s')[0];
    expect(read()).toEqual({ a: '007', ta: 'text', t: null, tt: 'null' });
    // 1e20 is beyond a 64-bit INTEGER: the run fails the record, and so does apply of its plan.
    const bigSpec = dir.write(
      'big.yaml',
      readFileSync(spec, 'utf8').replace('$.v" }', '$.big" }').replace('set: { a: "{{ v }}" }', 'set: { t: "{{ v }}" }'),
    );
    const run = await runCli(['run', bigSpec, '--json'], { cwd: dir.path });
    expect(jsonSummary(run)).toMatchObject({ failed: 1, reasons: { value_not_exact: 1 } });
    const plan = dir.file('big.plan.jsonl');
    expect((await runCli(['plan', bigSpec, '--out', plan], { cwd: dir.path })).code).toBe(0);
    const applied = await runCli(['apply', plan, '--json'], { cwd: dir.path });
    expect(applied.code, show(applied)).toBe(1);
    expect(jsonSummary(applied)).toMatchObject({ applied: 0, failed: 1 });
    expect(read()).toEqual({ a: '007', ta: 'text', t: null, tt: 'null' });
  });
});
