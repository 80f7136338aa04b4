/**
 * The engine, end to end through the library on real SQLite files: what ends up in the rows is
 * the assertion. Templates, conditions, extraction, fill-only diffs, touch and overwrite.
 */

import { describe, expect, it } from 'vitest';
import { type Context, evaluate, MISSING, render } from '../../src/engine/context.js';
import { ExtractFailure, prepareExtract, runExtract } from '../../src/engine/extract.js';
import { ExactNumber } from '../../src/plan/values.js';
import { useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, query, type Row, rowsById, runYaml, sqliteTarget } from '../sqlite/fixtures.js';

const tmp = useTempDirs();
const NOW = new Date('2030-01-02T03:04:05.000Z');
const NOW_ISO = NOW.toISOString();
const OLD = '2020-01-01T00:00:00.000Z';

const sqlText = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);

function dbWith(schema: string, inserts: string[] = []): string {
  const path = tmp().file('engine.db');
  createDb(path, [schema, ...inserts].join(';\n'));
  return path;
}

describe('templates', () => {
  it('"{{ ref }}" alone keeps the type (a map stays a map, a number a number); text around it interpolates', async () => {
    const db = dbWith('CREATE TABLE items (id TEXT PRIMARY KEY, count INTEGER, json TEXT, n INTEGER, s TEXT, thumbs TEXT)', [
      `INSERT INTO items (id, count, json) VALUES ('a', 5, '{"thumbs":{"small":"s.jpg","large":"l.jpg"}}')`,
    ]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
        'extract:\n  thumbs: { from: row.json, parse: json, path: $.thumbs }\n' +
        'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    n: "{{ row.count }}"\n    s: "v{{ row.count }}"\n    thumbs: "{{ thumbs }}"\n',
      { now: NOW },
    );
    expect(run.summary).toMatchObject({ total: 1, updated: 1, failed: 0 });
    const [row] = query(db, 'SELECT n, typeof(n) AS nt, s, typeof(s) AS st, thumbs FROM items');
    expect(row).toMatchObject({ n: 5, nt: 'integer', s: 'v5', st: 'text' });
    // SQLite has no map type: the map is stored as its JSON text, which parses back to the same map.
    expect(JSON.parse(String(row?.thumbs))).toEqual({ small: 's.jpg', large: 'l.jpg' });
    // …and the proposed change shows the map itself, not "[object Object]".
    const change = run.records[0]?.changes?.find((c) => c.field === 'thumbs');
    expect(change?.after).toEqual({ small: 's.jpg', large: 'l.jpg' });
  });

  it('render: a missing reference (absent, null or "") is MISSING, never "undefined" or ""; objects with a missing part are MISSING', () => {
    const plan = compileYaml(
      `name: t\n${sqliteTarget('/x.db')}source: { as: row, table: items }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    a: "{{ row.gone }}"\n    b: "MEDIA#{{ row.gone }}"\n    c: { at: "{{ now }}", v: "{{ row.nil }}" }\n    d: [ "{{ row.id }}", 1 ]\n    e: "{{ row.empty }}"\n',
    );
    const ctx: Context = new Map<string, unknown>([
      ['now', NOW_ISO],
      ['row', { id: 'r1', nil: null, empty: '' }],
    ]);
    const rendered = Object.fromEntries(plan.update.set.map((f) => [f.field, render(f.template, ctx)]));
    expect(rendered.a).toBe(MISSING);
    expect(rendered.b).toBe(MISSING);
    expect(rendered.c).toBe(MISSING);
    expect(rendered.d).toEqual(['r1', 1]);
    // docs/spec.md, Templates: "missing (absent, null or the empty string)".
    expect(rendered.e).toBe(MISSING);
  });

  it('a field whose template is missing is left out of the write: an absent lookup leaves its columns untouched', async () => {
    const db = dbWith(
      'CREATE TABLE media (id TEXT PRIMARY KEY, url TEXT); CREATE TABLE videos (id TEXT PRIMARY KEY, media_id TEXT, url TEXT, label TEXT, checked TEXT, updated_at TEXT)',
      [
        "INSERT INTO media VALUES ('m1', 'https://cdn/m1.jpg'), ('m3', NULL)",
        `INSERT INTO videos VALUES ('v1', 'm1', NULL, NULL, NULL, '${OLD}')`,
        `INSERT INTO videos VALUES ('v2', 'm-missing', NULL, NULL, NULL, '${OLD}')`,
        `INSERT INTO videos VALUES ('v3', 'm3', NULL, NULL, NULL, '${OLD}')`,
        `INSERT INTO videos VALUES ('v4', NULL, NULL, NULL, NULL, '${OLD}')`,
      ],
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: video, table: videos }\n` +
        'lookups:\n  media: { table: media, get: { id: "{{ video.media_id }}" } }\n' +
        'update:\n  key: { id: "{{ video.id }}" }\n  set:\n    url: "{{ media.url }}"\n    label: "img {{ media.url }}"\n    checked: "yes"\n  touch: { updated_at: "{{ now }}" }\n',
      { now: NOW },
    );
    expect(run.summary).toMatchObject({ total: 4, updated: 4, skipped: 0, failed: 0 });
    const rows = rowsById(db, 'videos');
    expect(rows.get('v1')).toMatchObject({
      url: 'https://cdn/m1.jpg',
      label: 'img https://cdn/m1.jpg',
      checked: 'yes',
      updated_at: NOW_ISO,
    });
    for (const id of ['v2', 'v3', 'v4']) {
      // The missing fields stay NULL (not "undefined", not ""); the present one is written.
      expect(rows.get(id), id).toMatchObject({ url: null, label: null, checked: 'yes', updated_at: NOW_ISO });
    }
    // v4 has no media_id: its lookup key is missing, so no lookup is made for it.
    expect(run.requests.lookup).toBe(3);
    // The proposed change for v2 lists only the field that is written.
    expect(run.records.find((r) => r.key.id === 'v2')?.changes?.map((c) => c.field)).toEqual(['checked', 'updated_at']);
  });

  it('when every set field is missing the record is no_change and nothing (not even touch) is written', async () => {
    const db = dbWith(
      'CREATE TABLE media (id TEXT PRIMARY KEY, url TEXT); CREATE TABLE videos (id TEXT PRIMARY KEY, media_id TEXT, url TEXT, updated_at TEXT)',
      [`INSERT INTO videos VALUES ('v1', 'nope', NULL, '${OLD}')`],
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: video, table: videos }\n` +
        'lookups:\n  media: { table: media, get: { id: "{{ video.media_id }}" } }\n' +
        'update:\n  key: { id: "{{ video.id }}" }\n  set: { url: "{{ media.url }}" }\n  touch: { updated_at: "{{ now }}" }\n',
      { now: NOW },
    );
    expect(run.summary).toMatchObject({ updated: 0, skipped: 1, reasons: { no_change: 1 } });
    expect(rowsById(db, 'videos').get('v1')).toMatchObject({ url: null, updated_at: OLD });
  });

  it('a map interpolated into text fails that record with template_error; the run goes on', async () => {
    const db = dbWith('CREATE TABLE items (id TEXT PRIMARY KEY, json TEXT, note TEXT)', [
      `INSERT INTO items VALUES ('a', '{"v":{"deep":1}}', NULL), ('b', '{"v":"plain"}', NULL)`,
    ]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
        'extract:\n  v: { from: row.json, parse: json, path: $.v }\n' +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "value={{ v }}" }\n',
    );
    expect(run.outcomes.get('a')).toMatchObject({ outcome: 'failed', reason: 'template_error' });
    expect(run.outcomes.get('b')).toMatchObject({ outcome: 'updated' });
    expect(query(db, 'SELECT id, note FROM items ORDER BY id')).toEqual([
      { id: 'a', note: null },
      { id: 'b', note: 'value=plain' },
    ]);
    expect(run.summary).toMatchObject({ total: 2, updated: 1, failed: 1, reasons: { template_error: 1 } });
  });
});

describe('conditions', () => {
  // One plan holding every condition under test, as skip rules; evaluated against hand-made contexts.
  const rules: [string, string][] = [
    ['exists_v', '{ exists: row.v }'],
    ['missing_v', '{ missing: row.v }'],
    ['isnull_v', '{ isNull: row.v }'],
    ['notnull_v', '{ notNull: row.v }'],
    ['equals_null', '{ equals: { row.v: null } }'],
    ['equals_x', '{ equals: { row.v: x } }'],
    ['missing_both', '{ missing: [row.v, row.w] }'],
    ['exists_both', '{ exists: [row.v, row.w] }'],
    ['either_missing', '{ any: [ { missing: row.v }, { missing: row.w } ] }'],
    ['not_exists_v', '{ not: { exists: row.v } }'],
    ['all_x_and_w', '{ all: [ { equals: { row.v: x } }, { exists: row.w } ] }'],
  ];
  const plan = compileYaml(
    `name: t\n${sqliteTarget('/x.db')}source: { as: row, table: items }\nskip:\n${rules
      .map(([reason, when]) => `  - { reason: ${reason}, when: ${when} }`)
      .join('\n')}\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: 1 }\n`,
  );
  const truth = (row: Row): Record<string, boolean> => {
    const ctx: Context = new Map<string, unknown>([
      ['now', NOW_ISO],
      ['row', row],
    ]);
    return Object.fromEntries(plan.skip.map((s) => [s.reason, evaluate(s.when, ctx)]));
  };

  it.each([
    // value of v  exists  missing isNull notNull  (the table in docs/spec.md, Conditions)
    ['absent', {}, false, true, true, false],
    ['null', { v: null }, false, true, true, false],
    ['""', { v: '' }, false, true, false, true],
    ['"x"', { v: 'x' }, true, false, false, true],
    ['0', { v: 0 }, true, false, false, true],
    ['false', { v: false }, true, false, false, true],
  ] as [string, Row, boolean, boolean, boolean, boolean][])(
    'v %s: exists/missing/isNull/notNull as documented',
    (_n, row, exists, missing, isNull, notNull) => {
      expect(truth(row)).toMatchObject({
        exists_v: exists,
        missing_v: missing,
        isnull_v: isNull,
        notnull_v: notNull,
        not_exists_v: !exists,
      });
    },
  );

  it('equals: an expected null matches absent and null, but not ""', () => {
    expect(truth({}).equals_null).toBe(true);
    expect(truth({ v: null }).equals_null).toBe(true);
    expect(truth({ v: '' }).equals_null).toBe(false);
    expect(truth({ v: 'x' }).equals_null).toBe(false);
  });

  it('equals compares values exactly: "x" matches x, "X" and absent do not', () => {
    expect(truth({ v: 'x' }).equals_x).toBe(true);
    expect(truth({ v: 'X' }).equals_x).toBe(false);
    expect(truth({}).equals_x).toBe(false);
  });

  it('equals compares maps deeply and numbers by value', () => {
    const p = compileYaml(
      `name: t\n${sqliteTarget('/x.db')}source: { as: row, table: items }\nskip:\n  - { reason: r, when: { equals: { row.m: { a: [1, 2], b: { c: true } }, row.n: 3 } } }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { note: 1 }\n`,
    );
    const when = p.skip[0]?.when;
    if (!when) throw new Error('no rule');
    const ev = (row: Row) => evaluate(when, new Map<string, unknown>([['row', row]]));
    expect(ev({ m: { b: { c: true }, a: [1, 2] }, n: 3 })).toBe(true);
    expect(ev({ m: { b: { c: true }, a: [2, 1] }, n: 3 })).toBe(false);
    expect(ev({ m: { b: { c: true }, a: [1, 2] }, n: '3' })).toBe(false);
    expect(ev({ m: { b: { c: true }, a: [1, 2], extra: 1 }, n: 3 })).toBe(false);
  });

  it('a list under missing/exists means all of them; any/not/all combine', () => {
    expect(truth({ v: null, w: '' })).toMatchObject({ missing_both: true, either_missing: true, exists_both: false });
    expect(truth({ v: null, w: 'y' })).toMatchObject({ missing_both: false, either_missing: true, exists_both: false });
    expect(truth({ v: 'x', w: 'y' })).toMatchObject({ missing_both: false, either_missing: false, exists_both: true, all_x_and_w: true });
    expect(truth({ v: 'x', w: '' })).toMatchObject({ all_x_and_w: false });
  });

  it('the first matching rule gives the reason; rules see NULL and "" as stored in SQLite', async () => {
    const db = dbWith('CREATE TABLE items (id TEXT PRIMARY KEY, v TEXT, w TEXT, note TEXT)', [
      "INSERT INTO items VALUES ('null', NULL, 'w', NULL), ('empty', '', 'w', NULL), ('x', 'x', NULL, NULL), ('y', 'y', 'w', NULL)",
    ]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
        'skip:\n  - { reason: v_is_null, when: { isNull: row.v } }\n  - { reason: v_missing, when: { missing: row.v } }\n  - { reason: w_missing, when: { not: { exists: row.w } } }\n' +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.v }}" }\n',
    );
    expect(Object.fromEntries([...run.outcomes].map(([k, o]) => [k, o.reason ?? o.outcome]))).toEqual({
      null: 'v_is_null',
      empty: 'v_missing',
      x: 'w_missing',
      y: 'updated',
    });
    expect(run.summary.reasons).toEqual({ v_is_null: 1, v_missing: 1, w_missing: 1 });
    expect(query(db, 'SELECT id FROM items WHERE note IS NOT NULL')).toEqual([{ id: 'y' }]);
  });

  it('a skip rule on the source alone runs before the lookup: skipped rows cost no lookup', async () => {
    const inserts = Array.from({ length: 10 }, (_, i) => `INSERT INTO videos VALUES ('v${i}', 'm${i}', ${i < 6 ? "'has'" : 'NULL'})`);
    const db = dbWith(
      'CREATE TABLE media (id TEXT PRIMARY KEY, url TEXT); CREATE TABLE videos (id TEXT PRIMARY KEY, media_id TEXT, url TEXT)',
      ["INSERT INTO media VALUES ('m7', 'u7')", ...inserts],
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: video, table: videos }\n` +
        'lookups:\n  media: { table: media, get: { id: "{{ video.media_id }}" } }\n' +
        'skip:\n  - { reason: already_has_url, when: { exists: video.url } }\n  - { reason: no_media, when: { missing: media } }\n' +
        'update:\n  key: { id: "{{ video.id }}" }\n  set: { url: "{{ media.url }}" }\n',
    );
    expect(run.summary).toMatchObject({ total: 10, updated: 1, skipped: 9, reasons: { already_has_url: 6, no_media: 3 } });
    expect(run.requests.lookup).toBe(4);
    expect(query(db, "SELECT id, url FROM videos WHERE id = 'v7'")).toEqual([{ id: 'v7', url: 'u7' }]);
  });
});

describe('extraction', () => {
  const schema = 'CREATE TABLE gens (id TEXT PRIMARY KEY, raw TEXT, mgid TEXT)';
  const spec = (db: string) =>
    `name: t\n${sqliteTarget(db)}source: { as: row, table: gens, where: { isNull: mgid } }\n` +
    'extract:\n  id:\n    from: row.raw\n    parse: json\n    first:\n      - $.operations[0].mediaGenerationId\n      - $.operations[0].operation.metadata.video.mediaGenerationId\n      - $.raw.operations[0].mediaGenerationId\n' +
    'skip:\n  - { reason: no_id, when: { missing: id } }\n' +
    'update:\n  key: { id: "{{ row.id }}" }\n  set: { mgid: "{{ id }}" }\n';
  const ins = (id: string, raw: string | null) => `INSERT INTO gens VALUES (${sqlText(id)}, ${sqlText(raw)}, NULL)`;

  it('the first path with a value that is not missing wins; "" and null fall through to the next path', async () => {
    const db = dbWith(schema, [
      ins(
        'top',
        JSON.stringify({ operations: [{ mediaGenerationId: 'T', operation: { metadata: { video: { mediaGenerationId: 'N' } } } }] }),
      ),
      ins(
        'empty-top',
        JSON.stringify({ operations: [{ mediaGenerationId: '', operation: { metadata: { video: { mediaGenerationId: 'N2' } } } }] }),
      ),
      ins(
        'null-top',
        JSON.stringify({ operations: [{ mediaGenerationId: null, operation: { metadata: { video: { mediaGenerationId: 'N3' } } } }] }),
      ),
      ins('wrapped', JSON.stringify({ raw: { operations: [{ mediaGenerationId: 'W' }] } })),
      ins('nothing', JSON.stringify({ operations: [{ status: 'FAILED' }] })),
      ins('all-empty', JSON.stringify({ operations: [{ mediaGenerationId: '' }], raw: { operations: [{ mediaGenerationId: '' }] } })),
      ins('not-object', '"just a string"'),
    ]);
    const run = await runYaml(spec(db));
    expect(Object.fromEntries(query(db, 'SELECT id, mgid FROM gens').map((r) => [r.id, r.mgid]))).toEqual({
      top: 'T',
      'empty-top': 'N2',
      'null-top': 'N3',
      wrapped: 'W',
      nothing: null,
      'all-empty': null,
      'not-object': null,
    });
    expect(run.summary).toMatchObject({ total: 7, updated: 4, skipped: 3, failed: 0, reasons: { no_id: 3 } });
  });

  it('invalid JSON fails that record with invalid_json (without echoing the data) and the run goes on', async () => {
    const db = dbWith(schema, [
      ins('a-good', JSON.stringify({ operations: [{ mediaGenerationId: 'A' }] })),
      ins('b-bad', '{"operations": [ {"mediaGenerationId": "SECRET-trunc'),
      ins('c-good', JSON.stringify({ operations: [{ mediaGenerationId: 'C' }] })),
    ]);
    const run = await runYaml(spec(db));
    const bad = run.outcomes.get('b-bad');
    expect(bad).toMatchObject({ outcome: 'failed', reason: 'invalid_json' });
    expect(bad?.message ?? '').not.toContain('SECRET');
    expect(run.summary).toMatchObject({ total: 3, updated: 2, failed: 1, reasons: { invalid_json: 1 } });
    expect(query(db, 'SELECT id, mgid FROM gens ORDER BY id').map((r) => r.mgid)).toEqual(['A', null, 'C']);
  });

  it('a filter that reaches the engine anyway is never evaluated: the record fails with extract_failed', () => {
    // Compilation refuses filters (compile.test.ts); this is the second line of defence, fed a
    // plan built by hand as a tampered or hand-written plan could be.
    const ex = prepareExtract({
      name: 'id',
      from: { root: 'row', path: ['raw'], text: 'row.raw' },
      parse: 'json',
      paths: ['$.operations[?(@.x)].mediaGenerationId'],
      needs: ['row'],
    });
    const ctx = new Map<string, unknown>([['row', { raw: JSON.stringify({ operations: [{ x: 1, mediaGenerationId: 'M' }] }) }]]);
    let thrown: unknown;
    try {
      runExtract(ex, ctx);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ExtractFailure);
    expect((thrown as ExtractFailure).reason).toBe('extract_failed');
  });

  it('a non-text value with parse: json is invalid_json', async () => {
    const db = tmp().file('x.db');
    createDb(db, "CREATE TABLE gens (id TEXT PRIMARY KEY, raw, mgid TEXT); INSERT INTO gens VALUES ('n', 42, NULL), ('b', x'7b7d', NULL)");
    const run = await runYaml(spec(db));
    expect(run.outcomes.get('n')).toMatchObject({ outcome: 'failed', reason: 'invalid_json' });
    expect(run.outcomes.get('b')).toMatchObject({ outcome: 'failed', reason: 'invalid_json' });
  });

  it('100000 levels of nesting are handled per record: unparsable, unmatched or too deep to search, never a crash', async () => {
    const N = 100_000;
    const db = dbWith('CREATE TABLE gens (id TEXT PRIMARY KEY, raw TEXT, out TEXT)', [
      ins('deep-open', '['.repeat(N)),
      ins('deep-closed', `${'['.repeat(N)}${']'.repeat(N)}`),
      ins('deep-inside', `{"operations":[{"mediaGenerationId":"X","pad":${'['.repeat(N)}${']'.repeat(N)}}]}`),
      ins('ok', '{"operations":[{"mediaGenerationId":"OK"}]}'),
    ]);
    const direct = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: gens }\n` +
        'extract:\n  id: { from: row.raw, parse: json, path: "$.operations[0].mediaGenerationId" }\n' +
        'skip:\n  - { reason: no_id, when: { missing: id } }\n' +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { out: "{{ id }}" }\n',
    );
    expect(direct.outcomes.get('deep-open')).toMatchObject({ outcome: 'failed', reason: 'invalid_json' });
    expect(direct.outcomes.get('deep-closed')).toMatchObject({ outcome: 'skipped', reason: 'no_id' });
    expect(direct.outcomes.get('deep-inside')).toMatchObject({ outcome: 'updated' });
    expect(direct.outcomes.get('ok')).toMatchObject({ outcome: 'updated' });
    expect(query(db, 'SELECT id, out FROM gens WHERE out IS NOT NULL ORDER BY id')).toEqual([
      { id: 'deep-inside', out: 'X' },
      { id: 'ok', out: 'OK' },
    ]);

    // Recursive descent through the deep value: that record fails, the others are still handled.
    const descent = await runYaml(
      `name: t2\n${sqliteTarget(db)}source: { as: row, table: gens, where: { isNull: out } }\n` +
        'extract:\n  id: { from: row.raw, parse: json, path: "$..mediaGenerationId" }\n' +
        'skip:\n  - { reason: no_id, when: { missing: id } }\n' +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { out: "{{ id }}" }\n',
    );
    expect(descent.summary.total).toBe(2);
    expect(descent.outcomes.get('deep-open')).toMatchObject({ outcome: 'failed', reason: 'invalid_json' });
    expect(descent.outcomes.get('deep-closed')).toEqual({
      outcome: 'failed',
      reason: 'extract_failed',
      message: 'id: the document nests too deeply to search with $..mediaGenerationId',
    });
  });

  it('a deeply nested extracted value that cannot be stored fails only its record in a live run', async () => {
    const N = 100_000;
    const db = dbWith('CREATE TABLE gens (id TEXT PRIMARY KEY, raw TEXT, out TEXT)', [
      ins('deep-value', `{"v":${'['.repeat(N)}${']'.repeat(N)}}`),
      ins('ok', '{"v":"fine"}'),
    ]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: gens }\n` +
        'extract:\n  v: { from: row.raw, parse: json, path: $.v }\n' +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { out: "{{ v }}" }\n',
    );
    expect(run.outcomes.get('ok')).toMatchObject({ outcome: 'updated' });
    expect(run.outcomes.get('deep-value')?.outcome).toBe('failed');
    expect(query(db, 'SELECT id, out FROM gens ORDER BY id')).toEqual([
      { id: 'deep-value', out: null },
      { id: 'ok', out: 'fine' },
    ]);
  });
});

describe('fill-only, touch and overwrite', () => {
  const schema = 'CREATE TABLE items (id TEXT PRIMARY KEY, src TEXT, note TEXT, updated_at TEXT)';

  it('fill-only: a target that already holds a value is no_change, and neither it nor touch is written', async () => {
    const db = dbWith(schema, [
      `INSERT INTO items VALUES ('empty', 'new', NULL, '${OLD}')`,
      `INSERT INTO items VALUES ('held', 'new', 'theirs', '${OLD}')`,
      `INSERT INTO items VALUES ('blank', 'new', '', '${OLD}')`,
    ]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.src }}" }\n  touch: { updated_at: "{{ now }}" }\n',
      { now: NOW },
    );
    const rows = rowsById(db, 'items');
    expect(rows.get('empty')).toMatchObject({ note: 'new', updated_at: NOW_ISO });
    expect(rows.get('held')).toMatchObject({ note: 'theirs', updated_at: OLD });
    // "" is a value, not NULL: fill-only leaves it.
    expect(rows.get('blank')).toMatchObject({ note: '', updated_at: OLD });
    expect(run.summary).toMatchObject({ total: 3, updated: 1, skipped: 2, reasons: { no_change: 2 } });
    const change = run.records.find((r) => r.key.id === 'empty')?.changes;
    expect(change).toEqual([
      { field: 'note', before: null, after: 'new', guard: 'absent' },
      { field: 'updated_at', before: OLD, after: NOW_ISO, guard: 'unchanged', touch: true },
    ]);
  });

  it('overwrite: true replaces a different value and is no_change when the value is already equal', async () => {
    const db = dbWith(schema, [
      `INSERT INTO items VALUES ('differs', 'new', 'old', '${OLD}')`,
      `INSERT INTO items VALUES ('equal', 'same', 'same', '${OLD}')`,
      `INSERT INTO items VALUES ('null', 'new', NULL, '${OLD}')`,
    ]);
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.src }}" }\n  touch: { updated_at: "{{ now }}" }\n  overwrite: true\n',
      { now: NOW },
    );
    const rows = rowsById(db, 'items');
    expect(rows.get('differs')).toMatchObject({ note: 'new', updated_at: NOW_ISO });
    expect(rows.get('equal')).toMatchObject({ note: 'same', updated_at: OLD });
    expect(rows.get('null')).toMatchObject({ note: 'new', updated_at: NOW_ISO });
    expect(run.summary).toMatchObject({ updated: 2, skipped: 1, reasons: { no_change: 1 } });
    expect(run.records.find((r) => r.key.id === 'differs')?.changes?.[0]).toEqual({
      field: 'note',
      before: 'old',
      after: 'new',
      guard: 'unchanged',
    });
  });

  // With overwrite, "already equal" compares the value as the backend stores it (a map as JSON
  // text, true as 1) with the rendered value; otherwise the rerun of a finished fix would rewrite
  // map and boolean fields, and bump touch, every time.
  it('overwrite: a map or boolean already stored is no_change on the rerun', async () => {
    const db = dbWith('CREATE TABLE items (id TEXT PRIMARY KEY, src TEXT, thumbs TEXT, flag INTEGER, updated_at TEXT)', [
      `INSERT INTO items VALUES ('a', '{"thumbs":{"small":"s.jpg"},"flag":true}', NULL, NULL, '${OLD}')`,
    ]);
    const yaml =
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
      'extract:\n  thumbs: { from: row.src, parse: json, path: $.thumbs }\n  flag: { from: row.src, parse: json, path: $.flag }\n' +
      'update:\n  key: { id: "{{ row.id }}" }\n  set: { thumbs: "{{ thumbs }}", flag: "{{ flag }}" }\n  touch: { updated_at: "{{ now }}" }\n  overwrite: true\n';
    const first = await runYaml(yaml, { now: NOW });
    expect(first.summary.updated).toBe(1);
    const afterFirst = query(db, 'SELECT * FROM items');
    const rerun = await runYaml(yaml, { now: new Date('2031-01-01T00:00:00.000Z') });
    expect(rerun.summary).toMatchObject({ updated: 0, skipped: 1, reasons: { no_change: 1 } });
    expect(query(db, 'SELECT * FROM items')).toEqual(afterFirst);
  });

  it('overwrite: [b] replaces b only; a stays fill-only', async () => {
    const db = dbWith('CREATE TABLE items (id TEXT PRIMARY KEY, a TEXT, b TEXT)', ["INSERT INTO items VALUES ('r', 'keep-a', 'old-b')"]);
    await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { a: "new-a", b: "new-b" }\n  overwrite: [b]\n',
    );
    expect(query(db, 'SELECT a, b FROM items')).toEqual([{ a: 'keep-a', b: 'new-b' }]);
  });

  it('now is one timestamp for the whole run, across pages and batches', async () => {
    const inserts = Array.from(
      { length: 25 },
      (_, i) => `INSERT INTO items VALUES ('r${String(i).padStart(2, '0')}', 's', NULL, '${OLD}')`,
    );
    const db = dbWith(schema, inserts);
    await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items, pageSize: 4 }\n` +
        'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.src }}" }\n  touch: { updated_at: "{{ now }}" }\nrun: { batchSize: 3 }\n',
    );
    const stamps = query(db, 'SELECT DISTINCT updated_at AS u FROM items');
    expect(stamps).toHaveLength(1);
    expect(stamps[0]?.u).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('a dry run reports the same outcomes as the live run and writes nothing', async () => {
    const db = dbWith(schema, [
      `INSERT INTO items VALUES ('a', 'x', NULL, '${OLD}')`,
      `INSERT INTO items VALUES ('b', 'x', 'held', '${OLD}')`,
      `INSERT INTO items VALUES ('c', NULL, NULL, '${OLD}')`,
    ]);
    const yaml =
      `name: t\n${sqliteTarget(db)}source: { as: row, table: items }\n` +
      'skip:\n  - { reason: no_src, when: { missing: row.src } }\n' +
      'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.src }}" }\n  touch: { updated_at: "{{ now }}" }\n';
    const before = query(db, 'SELECT * FROM items ORDER BY id');
    const dry = await runYaml(yaml, { dryRun: true, now: NOW });
    expect(query(db, 'SELECT * FROM items ORDER BY id')).toEqual(before);
    expect(dry.requests.update ?? 0).toBe(0);
    const live = await runYaml(yaml, { now: NOW });
    const { durationMs: _d1, ...drySummary } = dry.summary;
    const { durationMs: _d2, ...liveSummary } = live.summary;
    expect({ ...drySummary, dryRun: false }).toEqual(liveSummary);
    expect(dry.records.map((r) => [r.key.id, r.outcome, r.reason, r.changes])).toEqual(
      live.records.map((r) => [r.key.id, r.outcome, r.reason, r.changes]),
    );
  });
});

describe('extraction fast path', () => {
  // Expected matches are written out by hand from the JSONPath rules (first match that is not
  // absent, null or ""), so neither the fast path nor jsonpath-plus is its own yardstick.
  const docs = {
    top: { operations: [{ mediaGenerationId: 'A', operation: { metadata: { video: { mediaGenerationId: 'B' } } } }] },
    raw: { raw: { operations: [{ operation: { metadata: { video: { mediaGenerationId: 'C' } } } }] } },
    empty: { operations: [] },
    objectIndex: { operations: { 0: { mediaGenerationId: 'object-not-array' } } },
    dotted: { 'a.b': { 'x y': [null, 0, false, ''] } },
    list: [{ k: 1 }, { k: 2 }],
    odd: {
      'cd[DataLayer]': 'L-1',
      '*': 'star',
      'a,b': 'comma',
      "it's": 'apostrophe',
      '@type': 'json-ld',
      $oid: 'mongo',
      '?(x)': 'not a filter',
      other: 'not this one',
      tail: [1, 2, 3],
    },
  };
  type DocName = keyof typeof docs;
  const FAST = true;
  const cases: [path: string, fast: boolean, found: Partial<Record<DocName, unknown>>][] = [
    // [0] selects an array element only; on an object it selects nothing (RFC 9535, 2.3.3).
    ['$.operations[0].mediaGenerationId', FAST, { top: 'A' }],
    ['$.operations[0].operation.metadata.video.mediaGenerationId', FAST, { top: 'B' }],
    ['$.raw.operations[0].operation.metadata.video.mediaGenerationId', FAST, { raw: 'C' }],
    ["$['operations'][0]['mediaGenerationId']", FAST, { top: 'A' }],
    ["$.operations['0'].mediaGenerationId", FAST, { objectIndex: 'object-not-array' }],
    ['$[1].k', FAST, { list: 2 }],
    ['$.missing.deeper', FAST, {}],
    // Quoted names are read literally, whatever they hold.
    ["$['a.b']['x y'][1]", FAST, { dotted: 0 }],
    ["$['a.b']['x y'][2]", FAST, { dotted: false }],
    ["$['a.b']['x y'][0]", FAST, {}], // null is missing
    ["$['a.b']['x y'][3]", FAST, {}], // "" is missing
    ["$['a.b']['x y'][9]", FAST, {}],
    ["$['cd[DataLayer]']", FAST, { odd: 'L-1' }],
    ["$['*']", FAST, { odd: 'star' }], // the key "*", not any property
    ["$['a,b']", FAST, { odd: 'comma' }],
    ['$["it\'s"]', FAST, { odd: 'apostrophe' }],
    ['$[*].k', FAST, { list: 1 }], // every element, in order: the first not missing
    ["$['@type']", FAST, { odd: 'json-ld' }],
    ["$['$oid']", FAST, { odd: 'mongo' }],
    ["$['?(x)']", FAST, { odd: 'not a filter' }],
    // `..` and slices go through jsonpath-plus.
    ['$.tail[-1:]', !FAST, { odd: 3 }],
  ];

  it.each(cases)('%s (fast path: %s) finds exactly the hand-written value in every document', (path, fast, found) => {
    const ex = prepareExtract({ name: 'v', from: { root: 'row', path: ['doc'], text: 'row.doc' }, paths: [path], needs: ['row'] });
    expect(ex.walks[0] !== undefined, 'takes the fast path').toBe(fast);
    for (const [name, doc] of Object.entries(docs) as [DocName, unknown][]) {
      expect(runExtract(ex, new Map<string, unknown>([['row', { doc }]])), `${path} on ${name}`).toEqual(found[name]);
    }
  });

  it('a path with .. is left to jsonpath-plus', () => {
    const wildcard = prepareExtract({
      name: 'v',
      from: { root: 'row', path: ['doc'], text: 'row.doc' },
      paths: ['$..mediaGenerationId'],
      needs: ['row'],
    });
    expect(wildcard.walks[0]).toBeUndefined();
    expect(runExtract(wildcard, new Map<string, unknown>([['row', { doc: docs.raw }]]))).toBe('C');
  });
});

describe('parse: json reads numbers exactly where the value found holds one', () => {
  const extract = (text: string, path: string) =>
    runExtract(
      prepareExtract({ name: 'v', from: { root: 'row', path: ['doc'], text: 'row.doc' }, paths: [path], parse: 'json', needs: ['row'] }),
      new Map<string, unknown>([['row', { doc: text }]]),
    );
  const failure = (text: string, path: string) => {
    try {
      extract(text, path);
    } catch (err) {
      return { reason: (err as ExtractFailure).reason, message: (err as Error).message };
    }
    throw new Error('expected an extract failure');
  };
  const BIG = '{"id":"gen-1","seq":1091482500479000001,"meta":{"n":1234567890123456789012,"k":"x"}}';

  it('a string found beside a 19-digit number is that string; the number found is its exact digits', () => {
    expect(extract(BIG, '$.id')).toBe('gen-1');
    expect(extract(BIG, '$.seq')).toEqual(new ExactNumber('1091482500479000001'));
    expect(extract(BIG, '$.meta')).toEqual({ n: new ExactNumber('1234567890123456789012'), k: 'x' });
  });

  it('a key held twice gives its last value, as JSON.parse does, unless the exact reading is needed: then invalid_json', () => {
    const dup = '{"id":"first","id":"second","seq":1091482500479000001,"n":{"a":1,"a":2}}';
    expect(extract(dup, '$.id')).toBe('second');
    // The value found holds a number and the text one a double cannot hold: lossless-json reads
    // it and refuses the duplicate key.
    expect(failure(dup, '$.n')).toEqual({ reason: 'invalid_json', message: 'row.doc is not valid JSON' });
    // Without such a number anywhere, JSON.parse alone reads it: the last value.
    expect(extract('{"n":{"a":1,"a":2}}', '$.n')).toEqual({ a: 2 });
  });

  it('a search ($..) finds values, never the digits inside an exact number', () => {
    expect(extract('{"id":12345678901234567890,"x":{"value":3}}', '$..value')).toBe(3);
    expect(extract('{"id":12345678901234567890,"x":{"value":12345678901234567891}}', '$..value')).toEqual(
      new ExactNumber('12345678901234567891'),
    );
  });

  it('text that is not JSON fails with invalid_json whatever it holds', () => {
    expect(failure('{"id":"gen-1","seq":1091482500479000001', '$.id')).toEqual({
      reason: 'invalid_json',
      message: 'row.doc is not valid JSON',
    });
    expect(failure('{"id":"unterminated', '$.id')).toEqual({ reason: 'invalid_json', message: 'row.doc is not valid JSON' });
  });
});

describe('conditions compare as the target stores values', () => {
  it('SQLite: a skip rule on `true` matches a stored 1, as the source where does (1 updated, 1 skipped archived)', async () => {
    const db = dbWith('CREATE TABLE users (id INTEGER PRIMARY KEY, email_verified INTEGER, archived INTEGER, plan TEXT)', [
      'INSERT INTO users VALUES (1, 1, 0, NULL)',
      'INSERT INTO users VALUES (2, 1, 1, NULL)',
      'INSERT INTO users VALUES (3, 0, 0, NULL)',
    ]);
    const yaml =
      `name: t\n${sqliteTarget(db)}source: { as: row, table: users, where: { equals: { email_verified: true } } }\n` +
      'skip:\n  - { reason: archived, when: { equals: { row.archived: true } } }\n  - { reason: never, when: { equals: { row.archived: false, row.email_verified: false } } }\n' +
      'update:\n  table: users\n  key: { id: "{{ row.id }}" }\n  set: { plan: free }\n';
    const dry = await runYaml(yaml, { dryRun: true, now: NOW });
    const live = await runYaml(yaml, { now: NOW });
    for (const run of [dry, live]) expect(run.summary).toMatchObject({ total: 2, updated: 1, skipped: 1, reasons: { archived: 1 } });
    expect(query(db, 'SELECT id, plan FROM users ORDER BY id')).toEqual([
      { id: 1, plan: 'free' },
      { id: 2, plan: null },
      { id: 3, plan: null },
    ]);
  });
});

describe('lookups find what the same lookup alone would find', () => {
  it('SQLite: keys "1" and 1 in an untyped column are different keys, whatever the order or page size', async () => {
    for (const pageSize of [1, 10]) {
      for (const order of ['text first', 'integer first']) {
        const rows = order === 'text first' ? [`(1, '1', NULL)`, '(2, 1, NULL)'] : ['(1, 1, NULL)', `(2, '1', NULL)`];
        const db = dbWith(
          'CREATE TABLE customers (id PRIMARY KEY, country TEXT); CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id, country TEXT)',
          ["INSERT INTO customers VALUES (1, 'SE')", `INSERT INTO orders VALUES ${rows.join(', ')}`],
        );
        const run = await runYaml(
          `name: t\n${sqliteTarget(db)}source: { as: ord, table: orders, pageSize: ${pageSize} }\n` +
            'lookups:\n  customer: { table: customers, get: { id: "{{ ord.customer_id }}" } }\n' +
            'skip:\n  - { reason: no_customer, when: { missing: customer } }\n' +
            'update:\n  table: orders\n  key: { id: "{{ ord.id }}" }\n  set: { country: "{{ customer.country }}" }\n',
          { now: NOW },
        );
        // SQLite itself: the integer 1 matches the customer whose id is the integer 1; the text '1' does not.
        const expected = query(db, 'SELECT o.id, c.country FROM orders o LEFT JOIN customers c ON c.id = o.customer_id ORDER BY o.id');
        expect(query(db, 'SELECT id, country FROM orders ORDER BY id'), `${order}, pages of ${pageSize}`).toEqual(expected);
        expect(run.summary, `${order}, pages of ${pageSize}`).toMatchObject({ updated: 1, skipped: 1, reasons: { no_customer: 1 } });
      }
    }
  });
});

describe('two source records that update one target record', () => {
  it.each([1, 10])(
    'the first in source order updates it; the other is skipped as duplicate_target, dry run and live run alike (pages of %i)',
    async (pageSize) => {
      const db = dbWith(
        'CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, ship_country TEXT); CREATE TABLE users (id INTEGER PRIMARY KEY, country TEXT)',
        ["INSERT INTO orders VALUES (1, 7, 'NL'), (2, 7, 'BE'), (3, 8, 'FR')", 'INSERT INTO users VALUES (7, NULL), (8, NULL)'],
      );
      const yaml =
        `name: t\n${sqliteTarget(db)}source: { as: ord, table: orders, pageSize: ${pageSize} }\n` +
        'update:\n  table: users\n  key: { id: "{{ ord.user_id }}" }\n  set: { country: "{{ ord.ship_country }}" }\n';
      const dry = await runYaml(yaml, { dryRun: true, now: NOW });
      const live = await runYaml(yaml, { now: NOW });
      for (const run of [dry, live]) {
        expect(run.summary).toMatchObject({ total: 3, updated: 2, skipped: 1, failed: 0, reasons: { duplicate_target: 1 } });
      }
      expect(query(db, 'SELECT id, country FROM users ORDER BY id')).toEqual([
        { id: 7, country: 'NL' },
        { id: 8, country: 'FR' },
      ]);
    },
  );
});

describe('a skip rule agrees with where on the same data', () => {
  it('SQLite: 200 against a TEXT column holding "200" matches in both, as SQLite compares', async () => {
    const db = dbWith('CREATE TABLE calls (id INTEGER PRIMARY KEY, status_code TEXT, note TEXT)', [
      "INSERT INTO calls VALUES (1, '200', NULL), (2, '404', NULL), (3, '200', NULL)",
    ]);
    const where = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: calls, where: { equals: { status_code: 200 } } }\n` +
        'update:\n  table: calls\n  key: { id: "{{ row.id }}" }\n  set: { note: ok }\n',
      { dryRun: true, now: NOW },
    );
    const skip = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: calls }\n` +
        'skip:\n  - { reason: ok_status, when: { equals: { row.status_code: 200 } } }\n' +
        'update:\n  table: calls\n  key: { id: "{{ row.id }}" }\n  set: { note: ok }\n',
      { dryRun: true, now: NOW },
    );
    // SQLite's own answer: the rows `status_code = 200` selects.
    const [{ n }] = query(db, 'SELECT count(*) AS n FROM calls WHERE status_code = 200') as [{ n: number }];
    expect(n).toBe(2);
    expect(where.summary.total).toBe(n);
    expect(skip.summary.reasons).toEqual({ ok_status: n });
  });
});

describe("a skip rule compares text by the column's collation, as where does", () => {
  const schema = 'CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE, code TEXT COLLATE RTRIM, name TEXT, note TEXT)';
  const rows = [
    "INSERT INTO users VALUES (1, 'a@x.io', 'AB', 'Ann', NULL), (2, 'A@X.IO', 'AB  ', 'ANN', NULL), (3, 'b@x.io', 'ab', 'ann ', NULL)",
  ];
  it.each([
    ['email', 'A@x.io', 'NOCASE: any ASCII case'],
    ['code', 'AB', 'RTRIM: trailing spaces ignored'],
    ['name', 'Ann', 'BINARY: exactly'],
  ])('%s = %s (%s): where, a skip rule and SQLite select the same rows', async (column, value) => {
    const db = dbWith(schema, rows);
    const where = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: users, where: { equals: { ${column}: "${value}" } } }\n` +
        'update:\n  table: users\n  key: { id: "{{ row.id }}" }\n  set: { note: hit }\n',
      { dryRun: true, now: NOW },
    );
    const skip = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: users }\n` +
        `skip:\n  - { reason: hit, when: { equals: { row.${column}: "${value}" } } }\n` +
        'update:\n  table: users\n  key: { id: "{{ row.id }}" }\n  set: { note: miss }\n',
      { now: NOW },
    );
    // SQLite's own answer, by id.
    const selected = (query(db, `SELECT id FROM users WHERE ${column} = ? ORDER BY id`, [value]) as { id: number }[]).map((r) => r.id);
    const skipped = (query(db, 'SELECT id FROM users WHERE note IS NULL ORDER BY id') as { id: number }[]).map((r) => r.id);
    expect(selected.length).toBe(column === 'name' ? 1 : 2);
    expect(where.summary.total).toBe(selected.length);
    expect(skipped).toEqual(selected);
    expect(skip.summary).toMatchObject({ updated: 3 - selected.length, reasons: { hit: selected.length } });
  });

  it('a lookup column compares by its affinity and collation too', async () => {
    const db = dbWith(
      'CREATE TABLE customers (id INTEGER PRIMARY KEY, dial TEXT, tier TEXT COLLATE NOCASE); CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, note TEXT)',
      ["INSERT INTO customers VALUES (1, '46', 'GOLD'), (2, '47', 'silver')", 'INSERT INTO orders VALUES (10, 1, NULL), (11, 2, NULL)'],
    );
    const run = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: ord, table: orders }\n` +
        'lookups:\n  cust: { table: customers, get: { id: "{{ ord.customer_id }}" } }\n' +
        'skip:\n  - { reason: sweden_gold, when: { equals: { cust.dial: 46, cust.tier: gold } } }\n' +
        'update:\n  table: orders\n  key: { id: "{{ ord.id }}" }\n  set: { note: done }\n',
      { now: NOW },
    );
    // SQLite: dial = 46 and tier = 'gold' select customer 1 only.
    expect(query(db, "SELECT id FROM customers WHERE dial = 46 AND tier = 'gold'")).toEqual([{ id: 1 }]);
    expect(run.summary).toMatchObject({ updated: 1, skipped: 1, reasons: { sweden_gold: 1 } });
    expect(query(db, 'SELECT id, note FROM orders ORDER BY id')).toEqual([
      { id: 10, note: null },
      { id: 11, note: 'done' },
    ]);
  });

  it('spaces are not empty under RTRIM: exists and missing agree in where and in skip rules', async () => {
    const db = dbWith('CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT COLLATE RTRIM, note TEXT)', [
      "INSERT INTO t VALUES (1, '   ', NULL), (2, '', NULL), (3, NULL, NULL), (4, 'x', NULL)",
    ]);
    const where = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: t, where: { missing: code } }\n` +
        'update:\n  table: t\n  key: { id: "{{ row.id }}" }\n  set: { note: n }\n',
      { dryRun: true, now: NOW },
    );
    const skip = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: row, table: t }\n` +
        'skip:\n  - { reason: no_code, when: { missing: row.code } }\n' +
        'update:\n  table: t\n  key: { id: "{{ row.id }}" }\n  set: { note: has_code }\n',
      { now: NOW },
    );
    expect(where.summary.total).toBe(2);
    expect(skip.summary).toMatchObject({ updated: 2, reasons: { no_code: 2 } });
    expect(query(db, 'SELECT id, note FROM t ORDER BY id')).toEqual([
      { id: 1, note: 'has_code' },
      { id: 2, note: null },
      { id: 3, note: null },
      { id: 4, note: 'has_code' },
    ]);
  });
});

describe('duplicate targets when the update key is a lookup record or comes from a journal', () => {
  it('two orders finding one user through a lookup: the first updates it, the second is duplicate_target, dry and live alike', async () => {
    const db = dbWith(
      'CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id TEXT); CREATE TABLE users (id TEXT PRIMARY KEY, last_order INTEGER)',
      ["INSERT INTO orders VALUES (1, 'u1'), (2, 'u1'), (3, 'u2')", "INSERT INTO users VALUES ('u1', NULL), ('u2', 7)"],
    );
    const yaml =
      `name: t\n${sqliteTarget(db)}source: { as: ord, table: orders }\n` +
      'lookups:\n  user: { table: users, get: { id: "{{ ord.user_id }}" } }\n' +
      'update:\n  table: users\n  key: { id: "{{ user.id }}" }\n  set: { last_order: "{{ ord.id }}" }\n  overwrite: true\n';
    const dry = await runYaml(yaml, { dryRun: true, now: NOW });
    const live = await runYaml(yaml, { now: NOW });
    for (const run of [dry, live])
      expect(run.summary).toMatchObject({ total: 3, updated: 2, skipped: 1, failed: 0, reasons: { duplicate_target: 1 } });
    expect(query(db, 'SELECT id, last_order FROM users ORDER BY id')).toEqual([
      { id: 'u1', last_order: 1 },
      { id: 'u2', last_order: 3 },
    ]);
    const again = await runYaml(yaml, { now: NOW });
    expect(again.summary).toMatchObject({ updated: 0, skipped: 3, reasons: { no_change: 2, duplicate_target: 1 } });
    expect(query(db, 'SELECT id, last_order FROM users ORDER BY id')).toEqual([
      { id: 'u1', last_order: 1 },
      { id: 'u2', last_order: 3 },
    ]);
  });

  it.each([
    ['NOCASE', 'A@X.IO', 'a@x.io'],
    ['RTRIM', 'a@x.io  ', 'a@x.io'],
  ])(
    'a target a resumed run already updated is recognised under %s, however its journal spells the key',
    async (collation, journaled, stored) => {
      const db = dbWith(
        `CREATE TABLE events (id INTEGER PRIMARY KEY, email TEXT); CREATE TABLE users (email TEXT COLLATE ${collation} PRIMARY KEY, last INTEGER)`,
        [`INSERT INTO events VALUES (5, '${stored}')`, `INSERT INTO users VALUES ('${stored}', 1)`],
      );
      const run = await runYaml(
        `name: t\n${sqliteTarget(db)}source: { as: ev, table: events }\n` +
          'update:\n  table: users\n  key: { email: "{{ ev.email }}" }\n  set: { last: "{{ ev.id }}" }\n  overwrite: true\n',
        { now: NOW, updatedTargets: [{ email: journaled }] },
      );
      expect(run.summary).toMatchObject({ updated: 0, skipped: 1, reasons: { duplicate_target: 1 } });
      expect(query(db, 'SELECT last FROM users')).toEqual([{ last: 1 }]);
    },
  );
});

describe('a skip rule compares numbers as SQLite does, by value after the column affinity', () => {
  it.each([
    ['REAL', '"9007199254740993"'],
    ['REAL', '"9007199254740992"'],
    ['REAL', '9007199254740991'],
    ['REAL', '5'],
    ['REAL', '"5"'],
    ['INTEGER', '"5.0"'],
    ['NUMERIC', '"5e0"'],
    ['TEXT', '5'],
    ['', '"5"'],
  ])('a %s column compared with %s: where, a skip rule and SQLite select the same rows', async (type, literal) => {
    const db = dbWith(`CREATE TABLE t (id INTEGER PRIMARY KEY, r ${type}, note TEXT)`, [
      "INSERT INTO t (id, r) VALUES (1, 9007199254740992.0), (2, 9007199254740993), (3, 5), (4, 5.0), (5, '5'), (6, '5.0')",
    ]);
    const where = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: x, table: t, where: { equals: { r: ${literal} } } }\nupdate:\n  key: { id: "{{ x.id }}" }\n  set: { note: y }\n`,
      { dryRun: true, now: NOW },
    );
    const skip = await runYaml(
      `name: t\n${sqliteTarget(db)}source: { as: x, table: t }\nskip:\n  - { reason: hit, when: { equals: { x.r: ${literal} } } }\nupdate:\n  key: { id: "{{ x.id }}" }\n  set: { note: y }\n`,
      { dryRun: true, now: NOW },
    );
    // SQLite's own answer: the same literal, bound as text or as an integer.
    const bound = literal.startsWith('"') ? literal.slice(1, -1) : BigInt(literal);
    const sqlite = (query(db, 'SELECT id FROM t WHERE r = ? ORDER BY id', [bound]) as { id: number }[]).map((r) => r.id);
    expect(where.records.map((r) => r.key.id)).toEqual(sqlite);
    expect(skip.records.filter((r) => r.reason === 'hit').map((r) => r.key.id)).toEqual(sqlite);
  });
});

describe('duplicate targets by identity, and across reruns', () => {
  it.each([1, 10])('keys 1, "1" and 1.0 name one INTEGER key; the first wins, reruns keep it (pages of %i)', async (pageSize) => {
    const db = dbWith(
      'CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id, n INTEGER); CREATE TABLE users (id INTEGER PRIMARY KEY, last_order INTEGER)',
      ["INSERT INTO orders VALUES (10, 1, 10), (11, '1', 11), (12, 1.0, 12)", 'INSERT INTO users VALUES (1, NULL)'],
    );
    const yaml =
      `name: t\n${sqliteTarget(db)}source: { as: ord, table: orders, pageSize: ${pageSize} }\n` +
      'update:\n  table: users\n  key: { id: "{{ ord.user_id }}" }\n  set: { last_order: "{{ ord.n }}" }\n  overwrite: true\n';
    const dry = await runYaml(yaml, { dryRun: true, now: NOW });
    const live = await runYaml(yaml, { now: NOW });
    for (const run of [dry, live]) expect(run.summary).toMatchObject({ updated: 1, skipped: 2, reasons: { duplicate_target: 2 } });
    expect(query(db, 'SELECT last_order FROM users')).toEqual([{ last_order: 10 }]);
    // A rerun: the first record finds its own value (no_change) and still holds the target.
    const again = await runYaml(yaml, { now: NOW });
    expect(again.summary).toMatchObject({ updated: 0, skipped: 3, reasons: { no_change: 1, duplicate_target: 2 } });
    expect(query(db, 'SELECT last_order FROM users')).toEqual([{ last_order: 10 }]);
  });

  it('keys that differ only in case under a NOCASE key name one record', async () => {
    const db = dbWith(
      'CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, n INTEGER); CREATE TABLE users (email TEXT COLLATE NOCASE PRIMARY KEY, last_order INTEGER)',
      ["INSERT INTO orders VALUES (10, 'a@x.io', 10), (11, 'A@X.IO', 11), (12, 'A@x.io', 12)", "INSERT INTO users VALUES ('a@x.io', NULL)"],
    );
    const yaml =
      `name: t\n${sqliteTarget(db)}source: { as: ord, table: orders, pageSize: 1 }\n` +
      'update:\n  table: users\n  key: { email: "{{ ord.email }}" }\n  set: { last_order: "{{ ord.n }}" }\n  overwrite: true\n';
    const live = await runYaml(yaml, { now: NOW });
    expect(live.summary).toMatchObject({ updated: 1, skipped: 2, reasons: { duplicate_target: 2 } });
    expect(query(db, 'SELECT last_order FROM users')).toEqual([{ last_order: 10 }]);
  });
});
