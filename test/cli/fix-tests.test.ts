/** `datafix test`: the shipped fixes pass their own cases, and a broken expectation fails with a diff. */
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { startCli, waitFor } from '../safety/support.js';

const tmp = useTempDirs();

function copyFix(dir: string, name: string): string {
  copyFileSync(join(REPO_ROOT, 'fixes', `${name}.yaml`), join(dir, `${name}.yaml`));
  const test = join(dir, `${name}.test.yaml`);
  copyFileSync(join(REPO_ROOT, 'fixes', `${name}.test.yaml`), test);
  return test;
}

describe('datafix test', () => {
  it('passes every case of the shipped fixes', async () => {
    const r = await runCli(['test', 'fixes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Every case the shipped test files hold, counted from their YAML.
    const cases = readdirSync(join(REPO_ROOT, 'fixes'))
      .filter((f) => f.endsWith('.test.yaml'))
      .map((f) => (parse(readFileSync(join(REPO_ROOT, 'fixes', f), 'utf8')) as { cases: unknown[] }).cases.length)
      .reduce((a, b) => a + b, 0);
    expect(r.stdout).toMatch(new RegExp(`^${cases} passed, 0 failed$`, 'm'));
    expect(r.stdout).not.toContain('✗');
  });

  it('fails a broken expectation on SQLite with a readable diff, exit 1', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'sync-media-generation-ids');
    writeFileSync(test, readFileSync(test, 'utf8').replace('media_generation_id: MG-A1,', 'media_generation_id: MG-WRONG,'));
    const r = await runCli(['test', dir.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ direct shape, top-level mediaGenerationId is copied');
    expect(r.stdout).toContain('veo3_video_generations id=a1: media_generation_id: expected "MG-WRONG", got "MG-A1"');
    expect(r.stdout).toMatch(/^\d+ passed, 1 failed$/m);
  });

  it('fails a case whose given table the fix never reads (a typo), on SQLite as on DynamoDB', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'sync-media-generation-ids');
    const text = readFileSync(test, 'utf8');
    // The first case's table misspelled: the fix would read an empty table and the case pass.
    writeFileSync(test, text.replace('    given:\n      veo3_video_generations:', '    given:\n      veo3_video_generationz:'));
    const r = await runCli(['test', dir.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'DF510 given.veo3_video_generationz: the fix reads or writes no such table (it uses veo3_video_generations)',
    );
    expect(r.stdout).toMatch(/^\d+ passed, 1 failed$/m);
  });

  it('tells NULL from absent: null expects a NULL, { $absent: true } a field that is not there', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'i2v-thumbnails');
    const text = readFileSync(test, 'utf8');
    expect(text).toContain('thumbnailUrls: { $absent: true }');
    writeFileSync(test, text.replace('thumbnailUrls: { $absent: true }', 'thumbnailUrls: null'));
    const r = await runCli(['test', dir.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('PK=MEDIA#p1 SK=METADATA: thumbnailUrls: expected null, got (absent)');
    expect(r.stdout).toMatch(/^\d+ passed, 1 failed$/m);
  });

  it('fails a broken expectation on DynamoDB, and catches a write the case did not expect', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'i2v-thumbnails');
    // Claim the partial-fill video keeps no thumbnailUrls, and stop listing the fully copied one.
    const text = readFileSync(test, 'utf8')
      .replace(
        'thumbnailUrl: "https://own/v2.jpg", thumbnailUrls: { small: "https://cdn/i2-s.jpg" }',
        'thumbnailUrl: "https://own/v2.jpg", thumbnailUrls: null',
      )
      .replace(
        'summary: { total: 1, updated: 1, skipped: 0, failed: 0, reasons: {} }\n      records:',
        'summary: { total: 1, updated: 1, skipped: 0, failed: 0, reasons: {} }\n      unlisted:',
      );
    writeFileSync(test, text.replace('      unlisted:', '      records: {}\n      unlisted:'));
    const r = await runCli(['test', test]);
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    // `unlisted` is not a key of the test format: the file is refused with its line.
    expect(r.stderr).toMatch(/i2v-thumbnails\.test\.yaml:\d+:\d+ DF5\d\d .*unknown key `unlisted`/);

    writeFileSync(test, text.replace(/\n {6}unlisted:\n(?: {8}.*\n)+/, '\n'));
    const r2 = await runCli(['test', test]);
    expect(r2.code, r2.stdout + r2.stderr).toBe(1);
    expect(r2.stdout).toContain('target PK=MEDIA#v2 SK=METADATA: thumbnailUrls: expected null, got {"small":"https://cdn/i2-s.jpg"}');
    expect(r2.stdout).toMatch(
      /target PK=MEDIA#v1 SK=METADATA: .*thumbnailUrl: \(absent\) → "https:\/\/cdn\/i1\.jpg".*\(changed, but not listed under expect\.records\)/,
    );
  });
});

/** Typed tables for the orders fix, as a test file declares them. */
const TYPED_ORDERS = `tables:
  customers: { columns: { id: INTEGER, country: TEXT, tier: TEXT }, primaryKey: [id] }
  orders: { columns: { id: INTEGER, customer_id: INTEGER, country: TEXT }, primaryKey: [id] }
`;

describe('datafix test on declared tables', () => {
  const ordersFix = `name: orders-country
target:
  sqlite: { path: app.db }
source: { as: ord, table: orders, pageSize: 1 }
lookups:
  cust: { table: customers, get: { id: "{{ ord.customer_id }}" } }
skip:
  - { reason: no_customer, when: { missing: cust } }
  - { reason: vip, when: { equals: { cust.tier: vip } } }
update:
  table: orders
  key: { id: "{{ ord.id }}" }
  set: { country: "{{ cust.country }}" }
`;

  it('column types and collations are those declared, so a case gets what the real database does', async () => {
    const dir = tmp();
    dir.write('orders-country.yaml', ordersFix);
    // The same records on three layouts; each expectation is what SQLite does on that layout.
    dir.write(
      'orders-country.test.yaml',
      `tables:
  customers:
    columns: { id: INTEGER, country: TEXT, tier: { type: TEXT, collate: NOCASE } }
    primaryKey: [id]
  orders:
    columns: { id: INTEGER, customer_id: null, country: TEXT }
    primaryKey: [id]
cases:
  - name: an INTEGER customer id finds the text "1" and the integer 1; NOCASE makes VIP a vip
    given:
      customers: [{ id: 1, country: SE, tier: basic }, { id: 2, country: NO, tier: VIP }]
      orders: [{ id: 1, customer_id: "1" }, { id: 2, customer_id: 1 }, { id: 3, customer_id: 2 }]
    expect:
      summary: { updated: 2, skipped: 1, reasons: { vip: 1 } }
      records:
        orders: [{ id: 1, country: SE }, { id: 2, country: SE }]
  - name: an untyped customer id is only the integer 1, and a BINARY tier is case-exact
    tables:
      customers:
        columns: { id: null, country: TEXT, tier: TEXT }
        primaryKey: [id]
    given:
      customers: [{ id: 1, country: SE, tier: basic }, { id: 2, country: NO, tier: VIP }]
      orders: [{ id: 1, customer_id: "1" }, { id: 2, customer_id: 1 }, { id: 3, customer_id: 2 }]
    expect:
      summary: { updated: 2, skipped: 1, reasons: { no_customer: 1 } }
      outcomes: [{ key: { id: 1 }, outcome: skipped, reason: no_customer }]
      records:
        orders: [{ id: 2, country: SE }, { id: 3, country: "NO" }]
`,
    );
    const r = await runCli(['test', dir.path]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^2 passed, 0 failed$/m);
  });

  it('declarations that do not fit the fix are refused before any case runs (exit 2), each once at its line', async () => {
    const dir = tmp();
    dir.write('orders-country.yaml', ordersFix);
    const test = dir.write(
      'orders-country.test.yaml',
      `tables:
  custmers:
    columns: { id: INTEGER, country: TEXT, tier: { type: TEXT, collate: nocsae } }
    primaryKey: [id]
  orders:
    columns: { id: INTEGER, customer_id: "INTEGER); DROP TABLE x; --", country: TEXT }
    primaryKey: [idd]
    partitionKey: id
cases:
  - name: one
    given:
      orders: [{ id: 1, customer_id: 1 }]
    expect: {}
  - name: two
    given:
      orders: [{ id: 2, customer_id: 1 }]
    expect: {}
`,
    );
    const r = await runCli(['test', test]);
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith(test));
    expect(lines).toEqual([
      `${test}:3:5 DF513 tables: the fix uses table \`customers\`, which the test does not declare; \`custmers\` is declared but the fix does not use it: a misspelling? Declare every table the fix uses, or none (datafix then infers them)`,
      `${test}:3:73 DF514 tables.custmers.columns.tier.collate: \`nocsae\` is not one of SQLite's collations (BINARY, NOCASE, RTRIM)`,
      `${test}:8:19 DF514 tables.orders.partitionKey: a DynamoDB key; a SQLite table declares \`columns\` and \`primaryKey\``,
      `${test}:6:42 DF514 tables.orders.columns.customer_id: \`INTEGER); DROP TABLE x; --\` is not a type name; write one as CREATE TABLE does (TEXT, INTEGER, VARCHAR(255)), or null for none. Keys go under primaryKey and unique, a collation under collate`,
      `${test}:7:17 DF514 tables.orders.primaryKey: \`idd\` is not a declared column of \`orders\``,
    ]);
    expect(r.stdout).not.toContain('✗');
  });

  it('records that break a declared table fail their case with file:line:col: an unknown column, a value STRICT refuses', async () => {
    const dir = tmp();
    dir.write('orders-country.yaml', ordersFix);
    const test = dir.write(
      'orders-country.test.yaml',
      `tables:
  customers: { columns: { id: INTEGER, country: TEXT, tier: TEXT }, primaryKey: [id] }
  orders:
    columns: { id: INTEGER, customer_id: INTEGER, country: TEXT }
    primaryKey: [id]
    strict: true
cases:
  - name: a column the table lacks
    given:
      orders: [{ id: 1, customer_id: 1, colour: red }]
    expect: {}
  - name: text in a STRICT INTEGER column
    given:
      orders: [{ id: 1, customer_id: one }]
    expect: {}
  - name: one key twice
    given:
      customers: [{ id: 1, country: SE }, { id: 1, country: NO }]
    expect: {}
`,
    );
    const r = await runCli(['test', test]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `${test}:10:49 DF515 given.orders[0]: the declared table has no column \`colour\` (it has id, customer_id, country)`,
    );
    expect(r.stdout).toContain(
      `${test}:14:16 DF515 given.orders[0]: SQLite refused the record: cannot store TEXT value in INTEGER column orders.customer_id`,
    );
    expect(r.stdout).toContain(`${test}:18:43 DF515 given.customers[1]: SQLite refused the record: UNIQUE constraint failed: customers.id`);
    expect(r.stdout).toMatch(/^0 passed, 3 failed$/m);
  });

  it('without declarations, every column the fix reads exists, also one only a skip rule reads', async () => {
    const dir = tmp();
    dir.write(
      'orders-country.yaml',
      ordersFix.replace(
        '  - { reason: vip, when: { equals: { cust.tier: vip } } }\n',
        '  - { reason: vip, when: { equals: { cust.tier: vip } } }\n  - { reason: held, when: { exists: ord.hold } }\n',
      ),
    );
    dir.write(
      'orders-country.test.yaml',
      `cases:
  - name: no record gives hold or tier, and none is skipped for them
    given:
      customers: [{ id: 1, country: SE }]
      orders: [{ id: 1, customer_id: 1 }]
    expect:
      summary: { updated: 1, skipped: 0 }
      records:
        orders: [{ id: 1, country: SE }]
`,
    );
    const r = await runCli(['test', dir.path]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^1 passed, 0 failed$/m);
  });

  it('an index the fix queries must be declared: inferred tables never make one up, and a declared table without it fails as production would', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'i2v-thumbnails');
    const text = readFileSync(test, 'utf8');
    const declaration = '      GSI8: { partitionKey: GSI8PK, sortKey: GSI8SK }\n';
    expect(text).toContain(declaration);

    writeFileSync(test, text.replace(/^tables:\n(?: {2}.*\n)+/m, ''));
    const inferred = await runCli(['test', test]);
    expect(inferred.code).toBe(1);
    expect(inferred.stdout).toMatch(
      /i2v-thumbnails\.test\.yaml:\d+:\d+ DF512 the fix reads index `GSI8`: declare the tables' keys and indexes under `tables`/,
    );
    expect(inferred.stdout).toMatch(/^0 passed, \d+ failed$/m);

    writeFileSync(test, text.replace(declaration, '      GSI9: { partitionKey: GSI8PK, sortKey: GSI8SK }\n'));
    const wrong = await runCli(['test', test]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(
      /i2v-thumbnails\.yaml:\d+:\d+ DF402 table `target` has no index `GSI8` \(its indexes: `GSI9`\).*\(in a fix test: declare it under `tables`\)/,
    );
    expect(wrong.stdout).toMatch(/^0 passed, \d+ failed$/m);
  });

  it('DynamoDB records must fit the declared keys: a key of the wrong type or a key given twice fails the case', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'i2v-thumbnails');
    const text = readFileSync(test, 'utf8');
    writeFileSync(test, text.replace('    sortKey: SK\n', '    sortKey: { name: SK, type: N }\n'));
    const typed = await runCli(['test', test]);
    expect(typed.code).toBe(1);
    expect(typed.stdout).toMatch(
      /i2v-thumbnails\.test\.yaml:\d+:\d+ DF515 given\.target\[0\]: key attribute `SK` must be a number \(type N\), but it is "METADATA"/,
    );

    const first = '        - { PK: I2VJOB#v1, SK: METADATA, jobId: v1, mediaId: i1 }\n';
    expect(text).toContain(first);
    writeFileSync(test, text.replace(first, `${first}        - { PK: I2VJOB#v1, SK: METADATA, jobId: v1, mediaId: other }\n`));
    const twice = await runCli(['test', test]);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toContain('DF515 given.target[2]: the same key as given.target[1]; DynamoDB would keep only one');
    expect(twice.stdout).toMatch(/^\d+ passed, 1 failed$/m);
  });

  it('declarations SQLite would read as something else are refused at their line, and no case leaves a temporary directory', async () => {
    const dir = tmp();
    const scratch = tmp();
    dir.write('orders-country.yaml', ordersFix);
    const test = dir.write(
      'orders-country.test.yaml',
      `tables:
  customers:
    columns: { id: INTEGER PRIMARY KEY, ID: TEXT, country: "TEXT COLLATE nosuch", tier: "GENERATED ALWAYS AS (5)" }
    primaryKey: [id]
  orders:
    columns: { id: INTEGER, customer_id: "VARCHAR(10)", country: TEXT }
    primaryKey: [id]
    strict: true
    indexes: { customers: [customer_id], sqlite_x: [country] }
cases:
  - name: one
    given:
      orders: [{ id: 1, customer_id: "1" }]
    expect: {}
`,
    );
    const r = await runCli(['test', test], { env: { TMPDIR: scratch.path } });
    expect(r.code).toBe(2);
    const text = r.stderr;
    expect(text).toContain(`${test}:3:20 DF514 tables.customers.columns.id: \`INTEGER PRIMARY KEY\` is not a type name`);
    expect(text).toContain(
      `${test}:3:45 DF514 tables.customers.columns.ID: the same column as \`id\` (SQLite compares names without case)`,
    );
    expect(text).toContain(`${test}:3:60 DF514 tables.customers.columns.country: \`TEXT COLLATE nosuch\` is not a type name`);
    expect(text).toContain('DF514 tables.customers.columns.tier: `GENERATED ALWAYS AS (5)` is not a type name');
    expect(text).toContain(
      'DF514 tables.orders.columns.customer_id: a STRICT table takes only INT, INTEGER, REAL, TEXT, BLOB, ANY, not `VARCHAR(10)`',
    );
    expect(text).toContain("DF514 tables.orders.indexes.sqlite_x: names beginning with sqlite_ are SQLite's own");
    expect(text).toContain('DF514 tables.orders.indexes.customers: the name `customers` is already taken by tables.customers');
    expect(readdirSync(scratch.path)).toEqual([]);

    // A case SQLite refuses while it is set up leaves nothing behind either.
    dir.write(
      'orders-country.test.yaml',
      `${TYPED_ORDERS}cases:
  - name: one key twice
    given:
      orders: [{ id: 1, customer_id: 1 }, { id: 1, customer_id: 2 }]
    expect: {}
`,
    );
    const twice = await runCli(['test', test], { env: { TMPDIR: scratch.path } });
    expect(twice.code).toBe(1);
    expect(twice.stdout).toContain('DF515 given.orders[1]: SQLite refused the record: UNIQUE constraint failed: orders.id');
    expect(readdirSync(scratch.path)).toEqual([]);
  });

  it('expectations are compared as exactly as the data: big integers, numbers in JSON text, booleans as SQLite stores them, column names', async () => {
    const dir = tmp();
    dir.write(
      'copy.yaml',
      `name: copy
target:
  sqlite: { path: app.db }
source: { as: r, table: items }
extract:
  n: { from: r.src, parse: json, first: ["$.n"] }
update:
  key: { id: "{{ r.id }}" }
  set: { big: "{{ n }}", meta: "{{ r.src }}", flag: true }
  overwrite: true
`,
    );
    const big = '9007199254740993';
    const test = (bigWant: string, metaWant: string, flag: string, field = 'flag') =>
      dir.write(
        'copy.test.yaml',
        `tables:
  items: { columns: { id: INTEGER, src: TEXT, big: INTEGER, meta: TEXT, flag: INTEGER }, primaryKey: [id] }
cases:
  - name: copy
    given:
      items: [{ id: 1, src: '{"n": ${big}}' }]
    expect:
      records:
        items: [{ id: 1, big: { $number: "${bigWant}" }, meta: { n: { $number: "${metaWant}" } }, ${field}: ${flag} }]
`,
      );
    const right = await runCli(['test', test(big, big, 'true')]);
    expect(right.code, right.stdout + right.stderr).toBe(0);
    expect(right.stdout).toMatch(/^1 passed, 0 failed$/m);

    const wrong = await runCli(['test', test('9007199254740992', '9007199254740992', 'false')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain(`items id=1: big: expected 9007199254740992, got ${big}`);
    expect(wrong.stdout).toContain('items id=1: meta: expected {"n":9007199254740992}');
    expect(wrong.stdout).toContain('items id=1: flag: expected false, got 1');

    const typo = await runCli(['test', test(big, big, '{ $absent: true }', 'flgs')]);
    expect(typo.code).toBe(1);
    expect(typo.stdout).toContain('items id=1: flgs: `items` has no such column (it has id, src, big, meta, flag)');
  });

  it('DynamoDB number keys match expectations by value, and two given items with one key (1 and 1.0) are refused at the second', async () => {
    const dir = tmp();
    dir.write(
      'num.yaml',
      `name: num
target: { dynamodb: { table: T } }
source: { as: s, scan: { filter: { equals: { kind: src } } } }
lookups:
  L: { get: { PK: "{{ s.ref }}", SK: a } }
skip:
  - { reason: nolookup, when: { missing: L } }
update:
  key: { PK: "{{ s.PK }}", SK: "{{ s.SK }}" }
  set: { got: "{{ L.v }}" }
`,
    );
    const test = (extra: string, want: string) =>
      dir.write(
        'num.test.yaml',
        `tables:
  target: { partitionKey: { name: PK, type: N }, sortKey: SK }
cases:
  - name: numbers
    given:
      target:
        - { PK: 1, SK: a, v: found }
        - { PK: 5, SK: s, kind: src, ref: 1 }${extra}
    expect:
      records: { target: [{ PK: ${want}, SK: s, got: found }] }
`,
      );
    for (const want of ['5', '{ $number: "5" }', '{ $number: "5.0" }']) {
      const r = await runCli(['test', test('', want)]);
      expect(r.code, `${want}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    const twice = await runCli(['test', test('\n        - { PK: { $number: "1.0" }, SK: a, v: other }', '5')]);
    expect(twice.code).toBe(1);
    expect(twice.stdout).toMatch(
      /num\.test\.yaml:9:11 DF515 given\.target\[2\]: the same key as given\.target\[0\]; DynamoDB would keep only one/,
    );
  });

  it('given values that are not what they say fail their case at their line: $number that is no number, $binary that is no base64, $absent', async () => {
    const dir = tmp();
    dir.write('orders-country.yaml', ordersFix);
    const test = dir.write(
      'orders-country.test.yaml',
      `tables:
  customers: { columns: { id: INTEGER, country: TEXT, tier: BLOB }, primaryKey: [id] }
  orders: { columns: { id: INTEGER, customer_id: null, country: TEXT }, primaryKey: [id] }
cases:
  - name: tags
    given:
      customers: [{ id: 1, country: { $number: "0x10" }, tier: { $binary: "!!!" } }]
      orders: [{ id: 1, customer_id: 1, country: { $absent: true } }]
    expect: {}
`,
    );
    const r = await runCli(['test', test]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${test}:7:48 DF515 "0x10" is not a decimal number; write { $number: "123.45" }`);
    expect(r.stdout).toContain(`${test}:7:75 DF515 "!!!" is not base64; write the bytes as standard base64 with padding`);
    expect(r.stdout).toContain(`${test}:8:50 DF515 { $absent } names no value: leave the field out of the record, or give null for a NULL`);
  });

  it('Ctrl-C while cases run removes their temporary databases and exits 130', async () => {
    const dir = tmp();
    const scratch = tmp();
    dir.write('orders-country.yaml', ordersFix);
    const oneCase = (i: number) => `  - name: case ${i}
    given:
      customers: [{ id: 1, country: SE, tier: basic }]
      orders: [{ id: 1, customer_id: 1 }]
    expect:
      records:
        orders: [{ id: 1, country: SE }]
`;
    dir.write(
      'orders-country.test.yaml',
      `${TYPED_ORDERS}cases:
${Array.from({ length: 400 }, (_, i) => oneCase(i)).join('')}`,
    );
    const run = startCli(['test', dir.path], { cwd: dir.path, env: { TMPDIR: scratch.path } });
    // Cases run one after another, each on its own database under TMPDIR.
    await waitFor('a case to run', () => readdirSync(scratch.path).length > 0, { timeoutMs: 60_000, intervalMs: 2 });
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code, r.stdout + r.stderr).toBe(130);
    expect(r.stderr).toContain('interrupted: temporary files removed.');
    expect(readdirSync(scratch.path)).toEqual([]);
  });
});
