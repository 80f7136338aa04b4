/**
 * Compiling a spec into a plan: references, JSONPaths, names, identifiers, environment values and
 * the order of the per-page steps. Every refusal must name what is wrong, where.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatafixError, type Diagnostic } from '../../src/errors.js';
import { compileSpec } from '../../src/language/compile.js';
import type { EnvSource } from '../../src/language/env.js';
import { loadSpecText } from '../../src/language/load.js';
import type { FixPlan } from '../../src/plan/types.js';

interface Parts {
  target?: string;
  source?: string;
  lookups?: string;
  extract?: string;
  skip?: string;
  update?: string;
  run?: string;
}

/**
 * A SQLite spec assembled from sections. Line numbers: 1 name, 2-4 target, then source (5-7 by
 * default), then the optional sections in document order.
 */
function spec(p: Parts = {}): string {
  return [
    'name: t',
    p.target ?? 'target:\n  sqlite:\n    path: /data/app.db',
    p.source ?? 'source:\n  as: row\n  table: items',
    p.lookups,
    p.extract,
    p.skip,
    p.update ?? 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ row.src }}"',
    p.run,
  ]
    .filter((s) => s !== undefined)
    .join('\n')
    .concat('\n');
}

function compile(text: string, env: EnvSource = {}): FixPlan {
  return compileSpec(loadSpecText(text, 'fix.yaml'), { env });
}

function diags(text: string, env: EnvSource = {}): readonly Diagnostic[] {
  try {
    compile(text, env);
  } catch (err) {
    expect(err).toBeInstanceOf(DatafixError);
    expect((err as DatafixError).category).toBe('spec');
    return (err as DatafixError).diagnostics;
  }
  throw new Error('expected the spec to be refused, but it compiled');
}

function one(list: readonly Diagnostic[], code: string): Diagnostic {
  const found = list.filter((d) => d.code === code);
  expect(found, JSON.stringify(list, null, 2)).toHaveLength(1);
  return found[0] as Diagnostic;
}

/** The line number (1-based) of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`${needle} not in spec`);
  return i + 1;
}

describe('the base spec', () => {
  it('compiles, with the documented defaults', () => {
    const plan = compile(spec());
    expect(plan.target).toEqual({ backend: 'sqlite', path: '/data/app.db', busyTimeoutMs: 5000 });
    expect(plan.run).toEqual({ concurrency: 10, batchSize: 1000, pageSize: 1000 });
    expect(plan.update.table).toBe('items');
    expect(plan.update.set).toEqual([expect.objectContaining({ field: 'note', overwrite: false })]);
  });
});

describe('references', () => {
  it('an undefined root in an update template is DF201 naming it, at the field', () => {
    const text = spec({ update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "MEDIA#{{ job.mediaId }}"' });
    const d = one(diags(text), 'DF201');
    expect(d.message).toContain('`job`');
    expect(d.message).toContain('known names: now, row');
    expect(d).toMatchObject({ path: '/update/set/note', line: lineOf(text, 'note:'), col: 11 });
  });

  it('an undefined root in a skip condition is DF201 naming it', () => {
    const text = spec({ skip: 'skip:\n  - reason: gone\n    when: { missing: ghost.value }' });
    const d = one(diags(text), 'DF201');
    expect(d.message).toContain('`ghost`');
    expect(d).toMatchObject({ path: '/skip/0/when/missing', line: lineOf(text, 'ghost.value') });
  });

  it('an undefined root deep inside all/any/not is still found', () => {
    const text = spec({
      skip: 'skip:\n  - reason: r\n    when: { all: [ { exists: row.a }, { not: { any: [ { equals: { nobody.x: 1 } } ] } } ] }',
    });
    expect(one(diags(text), 'DF201').message).toContain('`nobody`');
  });

  it('`now` has no fields', () => {
    const text = spec({ update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ now.year }}"' });
    expect(one(diags(text), 'DF201').message).toContain('now');
  });

  it('a lookup using a lookup declared after it is DF202, telling which to move', () => {
    const text = spec({
      lookups:
        'lookups:\n  job:\n    table: jobs\n    get: { id: "{{ media.jobId }}" }\n  media:\n    table: media\n    get: { id: "{{ row.mediaId }}" }',
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ job.note }}"',
    });
    const d = one(diags(text), 'DF202');
    expect(d.message).toContain('`job` uses lookup `media`, which is declared after it');
    expect(d).toMatchObject({ path: '/lookups/job/get/id', line: lineOf(text, 'media.jobId') });
  });

  it('the same two lookups in dependency order compile, and run in that order', () => {
    const text = spec({
      lookups:
        'lookups:\n  media:\n    table: media\n    get: { id: "{{ row.mediaId }}" }\n  job:\n    table: jobs\n    get: { id: "{{ media.jobId }}" }',
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ job.note }}"',
    });
    expect(compile(text).steps).toEqual([
      { kind: 'lookup', name: 'media' },
      { kind: 'lookup', name: 'job' },
    ]);
  });

  it('a lookup using itself is DF202', () => {
    const text = spec({
      lookups: 'lookups:\n  job:\n    table: jobs\n    get: { id: "{{ job.id }}" }',
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ job.note }}"',
    });
    expect(one(diags(text), 'DF202').message).toContain('cannot use itself');
  });

  it.each([
    ['__proto__', '"{{ row.__proto__ }}"'],
    ['constructor', '"{{ row.constructor.name }}"'],
    ['prototype', '"{{ row.prototype }}"'],
    ['__proto__ in brackets', `'{{ row["__proto__"].x }}'`],
  ])('the reference segment %s is refused in a template', (_name, tpl) => {
    const text = spec({ update: `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: ${tpl}` });
    const list = diags(text);
    expect(list.some((d) => d.path === '/update/set/note' && /is not allowed/.test(d.message))).toBe(true);
  });

  it('the reference segment constructor is refused in a condition and in extract.from', () => {
    const cond = spec({ skip: 'skip:\n  - reason: r\n    when: { exists: row.constructor }' });
    expect(diags(cond).some((d) => d.path?.startsWith('/skip/0/when') && d.message.includes('constructor'))).toBe(true);
    const from = spec({
      extract: 'extract:\n  e:\n    from: row.__proto__\n    path: $.a',
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ e }}"',
    });
    expect(diags(from).some((d) => d.path === '/extract/e/from' && d.message.includes('__proto__'))).toBe(true);
  });

  it('a bracketed segment with a dot is one segment', () => {
    const text = spec({ update: `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: '{{ row["a.b"].c }}'` });
    const plan = compile(text);
    const t = plan.update.set[0]?.template;
    expect(t).toEqual({ kind: 'ref', ref: { root: 'row', path: ['a.b', 'c'], text: 'row["a.b"].c' } });
  });

  it('unbalanced {{ }} is refused', () => {
    const text = spec({ update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "a {{ row.x } b"' });
    expect(diags(text).some((d) => d.path === '/update/set/note')).toBe(true);
  });
});

describe('JSONPath', () => {
  const withPath = (path: string) =>
    spec({
      extract: `extract:\n  e:\n    from: row.json\n    parse: json\n    path: ${JSON.stringify(path)}`,
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ e }}"',
    });

  it.each([
    ['a filter', '$.a[?(@.x)]'],
    ['a filter with a script', '$..book[?(@.price < 10)]'],
    ['a script', '$.a[(@.length-1)]'],
    ['a bare filter', '$.a[?@.x]'],
  ])('%s (%s) is refused with DF204 at the path', (_what, path) => {
    const text = withPath(path);
    const d = one(diags(text), 'DF204');
    expect(d.message).toContain(path);
    expect(d).toMatchObject({ path: '/extract/e/path', line: lineOf(text, 'path: "$') });
  });

  // Mismatched quotes must not hide a filter from the check: jsonpath-plus would still read
  // `?(@.x)` as a filter segment.
  it.each([[`$["a'][?(@.x)]['b"]`], [`$['a"][(@.length-1)]["b']`]])(
    'a filter hidden between mismatched quotes (%s) is refused with DF204',
    (path) => {
      const d = one(diags(withPath(path)), 'DF204');
      expect(d.path).toBe('/extract/e/path');
    },
  );

  it('a filter in the second entry of `first` is reported at that entry', () => {
    const text = spec({
      extract: 'extract:\n  e:\n    from: row.json\n    first:\n      - $.a\n      - $..[?(@.x)]',
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ e }}"',
    });
    const d = one(diags(text), 'DF204');
    expect(d).toMatchObject({ path: '/extract/e/first/1', line: lineOf(text, '$..[?') });
  });

  it('a JSONPath without a leading $ is DF203', () => {
    const d = one(diags(withPath('operations[0].id')), 'DF203');
    expect(d.message).toContain('must start with $');
  });

  it('prototype segments in a JSONPath are refused', () => {
    expect(one(diags(withPath('$.__proto__.polluted')), 'DF203').message).toContain('__proto__');
    expect(one(diags(withPath("$['constructor']")), 'DF203').message).toContain('constructor');
  });

  it('parentheses inside a quoted name are plain text, not a script', () => {
    expect(() => compile(withPath("$['size (px)']"))).not.toThrow();
  });

  it('an index counted from the end is DF203, with the slice to write instead', () => {
    const d = one(diags(withPath('$.list[-1]')), 'DF203');
    expect(d.message).toContain('[-1] counts from the end, which is not supported; for the last element write [-1:]');
  });

  it('a name jsonpath-plus would split, next to .. or a slice, is DF203; alone it compiles and is read literally', () => {
    for (const p of ["$..['a,b']", "$['cd[DataLayer]'][0:2]", "$..['*']"]) {
      expect(one(diags(withPath(p)), 'DF203').message, p).toContain('can be read as written only in a path of names, [n] and [*]');
    }
    for (const p of ["$['cd[DataLayer]']", "$['*']", "$['a,b']", '$["it\'s"]', "$['@type']", "$['$oid']", "$['?(x)']", "$['(x)']"]) {
      expect(() => compile(withPath(p)), p).not.toThrow();
    }
    expect(one(diags(withPath('$.@type')), 'DF203').message).toContain("not supported unquoted; write ['@type']");
  });

  it('navigation paths compile: names, indexes, wildcards, recursive descent', () => {
    for (const p of ['$.operations[0].mediaGenerationId', "$['a.b'][*]", '$..mediaGenerationId', '$.a[0:2]']) {
      expect(() => compile(withPath(p)), p).not.toThrow();
    }
  });
});

describe('names and reasons', () => {
  it('a reserved reason is refused', () => {
    const text = spec({ skip: 'skip:\n  - reason: no_change\n    when: { exists: row.x }' });
    const list = diags(text);
    expect(list.some((d) => d.path?.startsWith('/skip/0/reason') && d.line === lineOf(text, 'no_change'))).toBe(true);
  });

  // Every reason the engine or an adapter reports, the per-record limits' reasons included.
  it.each([
    'conflict',
    'not_found',
    'invalid_json',
    'write_failed',
    'key_invalid',
    'key_too_large',
    'number_out_of_range',
    'value_invalid',
    'value_not_exact',
  ])('the reserved reason %s is refused', (reason) => {
    expect(diags(spec({ skip: `skip:\n  - reason: ${reason}\n    when: { exists: row.x }` })).map((d) => d.code)).toEqual(['DF210']);
  });

  it('a reason used twice is refused at the second rule', () => {
    const text = spec({ skip: 'skip:\n  - reason: dup\n    when: { exists: row.x }\n  - reason: dup\n    when: { exists: row.y }' });
    const d = one(diags(text), 'DF210');
    expect(d.message).toContain('`dup`');
    expect(d.path).toBe('/skip/1/reason');
    expect(d.line).toBe(lineOf(text, 'when: { exists: row.x }') + 1);
  });

  it('an unused lookup is DF212 at its name', () => {
    const text = spec({ lookups: 'lookups:\n  job:\n    table: jobs\n    get: { id: "{{ row.jobId }}" }' });
    const d = one(diags(text), 'DF212');
    expect(d.message).toContain('`job` is never used');
    expect(d).toMatchObject({ path: '/lookups/job', line: lineOf(text, '  job:'), col: 3 });
  });

  it('an unused extract is DF212', () => {
    const text = spec({ extract: 'extract:\n  unused:\n    from: row.json\n    path: $.a' });
    expect(one(diags(text), 'DF212').message).toContain('`unused`');
  });

  it('a lookup used only by a skip rule counts as used', () => {
    const text = spec({
      lookups: 'lookups:\n  job:\n    table: jobs\n    get: { id: "{{ row.jobId }}" }',
      skip: 'skip:\n  - reason: no_job\n    when: { missing: job }',
    });
    expect(() => compile(text)).not.toThrow();
  });

  it('overwrite naming a field that is not under set is DF211', () => {
    const text = spec({ update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ row.src }}"\n  overwrite: [note, other]' });
    const d = one(diags(text), 'DF211');
    expect(d.message).toContain('`other`');
    expect(d.path).toBe('/update/overwrite/1');
  });

  it('overwrite: [field] makes only that field an overwrite', () => {
    const text = spec({
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    a: "{{ row.a }}"\n    b: "{{ row.b }}"\n  overwrite: [b]',
    });
    expect(compile(text).update.set.map((f) => [f.field, f.overwrite])).toEqual([
      ['a', false],
      ['b', true],
    ]);
  });

  it('a field under both set and touch, or a key field under set, is refused', () => {
    expect(
      diags(spec({ update: 'update:\n  key: { id: "{{ row.id }}" }\n  set: { a: 1 }\n  touch: { a: "{{ now }}" }' })).map((d) => [
        d.code,
        d.message,
      ]),
    ).toEqual([['DF213', '/update/touch/a: `a` is under both set and touch; keep it in one']]);
    expect(diags(spec({ update: 'update:\n  key: { id: "{{ row.id }}" }\n  set: { id: 1 }' })).map((d) => [d.code, d.message])).toEqual([
      ['DF213', '/update/set/id: `id` is part of the key and cannot be written'],
    ]);
  });
});

describe('SQLite identifiers and readers', () => {
  it('a SQLite source with `query` is DF205', () => {
    const text = spec({ source: 'source:\n  as: row\n  query: { key: { PK: x } }' });
    const d = diags(text).find((x) => x.code === 'DF205');
    expect(d?.message).toMatch(/table/);
  });

  it('a SQLite source with `scan` is refused', () => {
    expect(diags(spec({ source: 'source:\n  as: row\n  scan: {}' })).map((d) => d.code)).toEqual(['DF205']);
  });

  it('a SQLite lookup without a table is DF205', () => {
    const text = spec({
      lookups: 'lookups:\n  job:\n    get: { id: "{{ row.jobId }}" }',
      update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ job.note }}"',
    });
    expect(one(diags(text), 'DF205').message).toContain('needs `table`');
  });

  const injection = 'x; DROP TABLE items';

  const q = JSON.stringify(injection);
  it.each([
    ['a where column', { source: `source:\n  as: row\n  table: items\n  where: { isNull: ${q} }` }, '/source/where'],
    ['a where equals column', { source: `source:\n  as: row\n  table: items\n  where: { equals: { ${q}: 1 } }` }, '/source/where'],
    ['a set column', { update: `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    ${q}: 1` }, '/update/set/'],
    ['a touch column', { update: `update:\n  key: { id: "{{ row.id }}" }\n  set: { note: 1 }\n  touch:\n    ${q}: 1` }, '/update/touch/'],
    ['a key column', { update: `update:\n  key: { ${q}: "{{ row.id }}" }\n  set: { note: 1 }` }, '/update/key/'],
    [
      'a lookup key column',
      {
        lookups: `lookups:\n  job:\n    table: jobs\n    get: { ${q}: "{{ row.jobId }}" }`,
        update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ job.note }}"',
      },
      '/lookups/job/get/',
    ],
    ['a source table', { source: `source:\n  as: row\n  table: ${q}` }, '/source/table'],
    ['an update table', { update: `update:\n  table: ${q}\n  key: { id: "{{ row.id }}" }\n  set: { note: 1 }` }, '/update/table'],
  ] as [string, Parts, string][])('%s that is not a plain name is refused there', (_what, parts, where) => {
    const text = spec(parts);
    const list = diags(text);
    const hit = list.find((d) => d.path?.startsWith(where));
    expect(hit, JSON.stringify(list)).toBeDefined();
    expect(hit?.line).toBe(lineOf(text, injection));
  });

  it('a where reference with a path (row.note) is refused: where takes bare column names', () => {
    const text = spec({ source: 'source:\n  as: row\n  table: items\n  where: { isNull: row.note }' });
    expect(one(diags(text), 'DF205').message).toContain('`row.note` is not a column name');
  });

  it('a where with all/any/not over plain names compiles', () => {
    const text = spec({
      source:
        'source:\n  as: row\n  table: items\n  where: { all: [ { notNull: a }, { not: { any: [ { equals: { b: 1 } }, { missing: c } ] } } ] }',
    });
    const plan = compile(text);
    expect(plan.source).toMatchObject({ kind: 'table', table: 'items', where: { op: 'all' } });
  });
});

describe('environment variables', () => {
  const target = (path: string, extra = '') => `target:\n  sqlite:\n    path: ${path}${extra}`;

  it('a missing ${VAR} is DF301 naming VAR at the target line', () => {
    const text = spec({ target: target('${APP_DB_PATH}') });
    const d = one(diags(text, {}), 'DF301');
    expect(d.message).toContain('APP_DB_PATH');
    expect(d).toMatchObject({ path: '/target/sqlite/path', line: 4 });
  });

  it('an empty ${VAR} (`VAR=`) is DF301 saying it is empty, not that it is not set', () => {
    const text = spec({ target: target('${APP_DB_PATH}') });
    const d = one(diags(text, { APP_DB_PATH: '' }), 'DF301');
    expect(d.message).toBe(
      '/target/sqlite/path: environment variable APP_DB_PATH is set but empty; give it a value (`APP_DB_PATH=` with nothing after it counts as no value), or a default with ${APP_DB_PATH:-value}',
    );
    expect(d).toMatchObject({ path: '/target/sqlite/path', line: 4 });
    expect(one(diags(text, {}), 'DF301').message).toContain('APP_DB_PATH is not set');
  });

  it('a variable that is set is used', () => {
    expect(compile(spec({ target: target('${APP_DB_PATH}') }), { APP_DB_PATH: '/srv/app.db' }).target).toMatchObject({
      path: '/srv/app.db',
    });
  });

  it('${VAR:-default} uses the default when VAR is unset or empty, as in the shell', () => {
    const text = spec({ target: target('${APP_DB_PATH:-/var/default.db}') });
    expect(compile(text, {}).target).toMatchObject({ path: '/var/default.db' });
    expect(compile(text, { APP_DB_PATH: '' }).target).toMatchObject({ path: '/var/default.db' });
    expect(compile(text, { APP_DB_PATH: '/srv/set.db' }).target).toMatchObject({ path: '/srv/set.db' });
  });

  it('text around references is kept', () => {
    expect(compile(spec({ target: target('/srv/${TENANT}/app.db') }), { TENANT: 'acme' }).target).toMatchObject({
      path: '/srv/acme/app.db',
    });
  });

  it('a leading ~/ means the home directory, also when it comes from a default', () => {
    expect(compile(spec({ target: target('~/data/app.db') })).target).toMatchObject({ path: join(homedir(), 'data/app.db') });
    expect(compile(spec({ target: target('${NOPE:-~/.config/x/app.db}') })).target).toMatchObject({
      path: join(homedir(), '.config/x/app.db'),
    });
  });

  it('a relative path is made absolute', () => {
    const plan = compile(spec({ target: target('rel/app.db') }));
    expect(plan.target).toMatchObject({ path: join(process.cwd(), 'rel/app.db') });
  });

  it('run.concurrency: ${X} with X=abc is DF302 at run.concurrency', () => {
    const text = spec({ run: 'run:\n  concurrency: ${X}' });
    const d = one(diags(text, { X: 'abc' }), 'DF302');
    expect(d.path).toBe('/run/concurrency');
    expect(d.line).toBe(lineOf(text, 'concurrency:'));
    expect(d.message).toContain('abc');
  });

  it('run settings from the environment become numbers; 0 is refused for batchSize', () => {
    const text = spec({ run: 'run:\n  concurrency: "${C:-7}"\n  batchSize: "${B}"\n  limit: "${L}"' });
    expect(compile(text, { B: '50', L: '25' }).run).toEqual({ concurrency: 7, batchSize: 50, pageSize: 1000, limit: 25 });
    expect(one(diags(text, { B: '0', L: '1' }), 'DF302').path).toBe('/run/batchSize');
  });

  it('busyTimeoutMs from the environment; 0 is allowed, -1 is not', () => {
    const text = spec({ target: target('/data/app.db', '\n    busyTimeoutMs: "${BUSY}"') });
    expect(compile(text, { BUSY: '200' }).target).toMatchObject({ busyTimeoutMs: 200 });
    expect(compile(text, { BUSY: '0' }).target).toMatchObject({ busyTimeoutMs: 0 });
    expect(one(diags(text, { BUSY: '-1' }), 'DF302').path).toBe('/target/sqlite/busyTimeoutMs');
  });

  it('${…} outside target and run is ordinary text', () => {
    const text = spec({ update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "${NOT_ENV}"' });
    expect(compile(text, {}).update.set[0]?.template).toEqual({ kind: 'literal', value: '${NOT_ENV}' });
  });

  it('skipEnv compiles without the variables (validate)', () => {
    const text = spec({ target: target('${APP_DB_PATH}') });
    expect(() => compileSpec(loadSpecText(text, 'fix.yaml'), { env: {}, skipEnv: true })).not.toThrow();
  });
});

describe('step order', () => {
  const text = spec({
    lookups:
      'lookups:\n  job:\n    table: jobs\n    get: { id: "{{ row.jobId }}" }\n  media:\n    table: media\n    get: { id: "{{ job.mediaId }}" }',
    extract: 'extract:\n  meta:\n    from: media.json\n    parse: json\n    path: $.thumb',
    skip: [
      'skip:',
      '  - reason: already_done', // reads only the source
      '    when: { exists: row.thumb }',
      '  - reason: no_job',
      '    when: { missing: job }',
      '  - reason: no_thumb',
      '    when: { missing: meta }',
    ].join('\n'),
    update: 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    thumb: "{{ meta }}"\n  touch:\n    updated_at: "{{ now }}"',
  });

  it('a skip rule that reads only the source runs before any lookup; each lookup just before the rule that needs it', () => {
    expect(compile(text).steps).toEqual([
      { kind: 'skip', index: 0 },
      { kind: 'lookup', name: 'job' },
      { kind: 'skip', index: 1 },
      { kind: 'lookup', name: 'media' },
      { kind: 'extract', name: 'meta' },
      { kind: 'skip', index: 2 },
    ]);
  });

  it('an update keyed by a different table fetches the target after the rules', () => {
    const other = spec({ update: 'update:\n  table: other\n  key: { id: "{{ row.id }}" }\n  set:\n    note: "{{ row.src }}"' });
    const plan = compile(other);
    expect(plan.update.before).toEqual({ kind: 'fetch' });
    expect(plan.steps.at(-1)).toEqual({ kind: 'fetchTarget' });
  });

  it('an update keyed by the source row reuses the row read as the before-image', () => {
    expect(compile(spec()).update.before).toEqual({ kind: 'context', root: 'row' });
  });
});

describe('condition and query-key values are compared as written, so what would be misread is refused', () => {
  const dynamoTarget = 'target:\n  dynamodb: { table: media, region: us-east-1 }';
  it.each([
    [
      'a template in a where value',
      spec({ source: 'source:\n  as: row\n  table: items\n  where: { equals: { expiresAt: "{{ now }}" } }' }),
      '{{ now }}',
      'templates are not rendered',
    ],
    [
      'an environment reference in a where value',
      spec({ source: 'source:\n  as: row\n  table: items\n  where: { equals: { region: "${REGION}" } }' }),
      '${REGION}',
      'is expanded only in the target',
    ],
    [
      'a template inside a map compared deeply',
      spec({ source: 'source:\n  as: row\n  table: items\n  where: { equals: { meta: { at: [x, "{{ now }}"] } } }' }),
      'meta: {',
      'templates are not rendered',
    ],
    [
      'a template in a skip rule value',
      spec({ skip: 'skip:\n  - reason: same\n    when: { equals: { row.a: "{{ row.b }}" } }' }),
      '{{ row.b }}',
      'templates are not rendered',
    ],
    [
      'a template in a query sort-key condition',
      spec({
        target: dynamoTarget,
        source: 'source:\n  as: v\n  query:\n    key: { PK: x, SK: { lt: "{{ now }}" } }',
        update: 'update:\n  key: { PK: "{{ v.PK }}", SK: "{{ v.SK }}" }\n  set: { a: 1 }',
      }),
      'SK: { lt',
      'templates are not rendered',
    ],
    [
      'an environment reference in a query partition key',
      spec({
        target: dynamoTarget,
        source: 'source:\n  as: v\n  query:\n    key: { PK: "${TENANT}" }',
        update: 'update:\n  key: { PK: "{{ v.PK }}", SK: "{{ v.SK }}" }\n  set: { a: 1 }',
      }),
      'PK: "${TENANT}"',
      'is expanded only in the target',
    ],
  ])('%s: DF214 at its line', (_what, text, needle, words) => {
    const d = one(diags(text), 'DF214');
    expect(d.message).toContain(words);
    expect(d.line).toBe(lineOf(text, needle));
  });

  it('plain values still compile, maps compared deeply included', () => {
    expect(() =>
      compile(spec({ source: 'source:\n  as: row\n  table: items\n  where: { equals: { status: done, n: 5, tags: [a, b] } }' })),
    ).not.toThrow();
    expect(() =>
      compile(spec({ skip: 'skip:\n  - reason: same\n    when: { equals: { row.m: { a: [1, 2], b: "{ not a template }" } } }' })),
    ).not.toThrow();
  });
});

describe('null in update values', () => {
  it.each([
    ['set', 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    note: null', 'note: null'],
    ['touch', 'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n  touch:\n    seen: null', 'seen: null'],
  ])('a literal null under %s is DF215 at its line: datafix writes no NULL', (_section, update, needle) => {
    const text = spec({ update });
    const d = one(diags(text), 'DF215');
    expect(d.message).toContain('would write NULL; datafix does not write NULL or remove fields');
    expect(d.line).toBe(lineOf(text, needle));
  });
});
