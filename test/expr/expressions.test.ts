/**
 * Expressions (CEL) in templates, conditions and an extract's `then`, run against real SQLite
 * files and the in-process DynamoDB server: what is written, what is left alone, the reason each
 * record gets, `validate`'s `file:line:col`, the bounds, and exact numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatafixError } from '../../src/errors.js';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, scanRaw, show } from '../safety/support.js';
import { compileYaml, createDb, query, runYaml, sqliteTarget } from '../sqlite/fixtures.js';

const tmp = useTempDirs();

function spec(db: string, body: string): string {
  return `name: expr-test\n${sqliteTarget(db)}source:\n  as: row\n  table: users\n${body}`;
}

function usersDb(rows: string): string {
  const db = tmp().file('users.db');
  createDb(
    db,
    `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, email_norm TEXT, n TEXT, big INTEGER, num INTEGER, out TEXT, created_at TEXT);
     ${rows}`,
  );
  return db;
}

/** The diagnostics of a spec that does not compile. */
function diagnostics(yaml: string) {
  try {
    compileYaml(yaml);
  } catch (err) {
    if (err instanceof DatafixError) return err.diagnostics;
    throw err;
  }
  throw new Error('the spec compiled');
}

/** 1-based line and column of `needle` in `text` (its first occurrence). */
function positionOf(text: string, needle: string): { line: number; col: number } {
  const at = text.indexOf(needle);
  expect(at).toBeGreaterThanOrEqual(0);
  const before = text.slice(0, at).split('\n');
  return { line: before.length, col: (before[before.length - 1] as string).length + 1 };
}

describe('expressions in templates', () => {
  it('write the computed value; plain references keep their meaning', async () => {
    const db = usersDb(`INSERT INTO users (id, email) VALUES (1, '  Ann@Example.COM '), (2, 'bob@x.io'), (3, NULL);`);
    const run = await runYaml(
      spec(
        db,
        `update:
  key: { id: "{{ row.id }}" }
  set:
    email_norm: "{{ row.email.trim().lowerAscii() }}"
    out: "U#{{ row.id }}#{{ row.email.trim().upperAscii() }}"
`,
      ),
    );
    expect(query(db, 'SELECT id, email_norm, out FROM users ORDER BY id')).toEqual([
      { id: 1, email_norm: 'ann@example.com', out: 'U#1#ANN@EXAMPLE.COM' },
      { id: 2, email_norm: 'bob@x.io', out: 'U#2#BOB@X.IO' },
      // NULL email: the expression reads an absent value, so nothing is written.
      { id: 3, email_norm: null, out: null },
    ]);
    expect(run.outcomes.get(3)).toEqual({ outcome: 'skipped', reason: 'no_change' });
  });

  it('an absent value handled by has() or ?.orValue() gives the default', async () => {
    const db = usersDb(`INSERT INTO users (id, email, n) VALUES (1, 'a@x', 'seven'), (2, 'b@x', NULL);`);
    await runYaml(
      spec(
        db,
        `update:
  key: { id: "{{ row.id }}" }
  set:
    out: "{{ row.?n.orValue('none') }}"
    email_norm: "{{ has(row.n) ? row.n : 'no n' }}"
`,
      ),
    );
    expect(query(db, 'SELECT id, out, email_norm FROM users ORDER BY id')).toEqual([
      { id: 1, out: 'seven', email_norm: 'seven' },
      { id: 2, out: 'none', email_norm: 'no n' },
    ]);
  });

  it('a failure that is not absence fails that record with expression_error; the others are written', async () => {
    const db = usersDb(`INSERT INTO users (id, n) VALUES (1, '41'), (2, 'abc'), (3, '9223372036854775807');`);
    const run = await runYaml(
      spec(
        db,
        `update:
  key: { id: "{{ row.id }}" }
  set:
    out: "{{ string(int(row.n) + 1) }}"
`,
      ),
    );
    expect(query(db, 'SELECT id, out FROM users ORDER BY id')).toEqual([
      { id: 1, out: '42' },
      { id: 2, out: null },
      { id: 3, out: null },
    ]);
    expect(run.outcomes.get(2)).toMatchObject({ outcome: 'failed', reason: 'expression_error' });
    expect(run.outcomes.get(2)?.message).toContain('int');
    expect(run.outcomes.get(3)).toMatchObject({ outcome: 'failed', reason: 'expression_error' });
    expect(run.outcomes.get(3)?.message).toContain('overflow');
    expect(run.summary).toMatchObject({ total: 3, updated: 1, failed: 2 });
  });
});

describe('expressions in lookup keys', () => {
  it('a lookup key may be an expression; a lookup that found nothing reads as an empty map', async () => {
    const db = tmp().file('orgs.db');
    createDb(
      db,
      `CREATE TABLE users (id INTEGER PRIMARY KEY, org TEXT, out TEXT);
       CREATE TABLE orgs (slug TEXT PRIMARY KEY, name TEXT);
       INSERT INTO orgs VALUES ('acme', 'Acme Corporation');
       INSERT INTO users (id, org) VALUES (1, ' ACME '), (2, 'Globex'), (3, NULL);`,
    );
    const run = await runYaml(
      spec(
        db,
        `lookups:
  org:
    table: orgs
    get: { slug: "{{ row.org.trim().lowerAscii() }}" }
update:
  key: { id: "{{ row.id }}" }
  set:
    out: "{{ has(org.name) ? org.name : 'unknown org' }}"
`,
      ),
    );
    expect(query(db, 'SELECT id, out FROM users ORDER BY id')).toEqual([
      { id: 1, out: 'Acme Corporation' },
      { id: 2, out: 'unknown org' },
      { id: 3, out: 'unknown org' },
    ]);
    expect(run.summary).toMatchObject({ total: 3, updated: 3, failed: 0 });
  });
});

describe('expressions as conditions', () => {
  it('skip by an expression, with now as a timestamp; an absent value makes it false', async () => {
    const db = usersDb(
      `INSERT INTO users (id, email, created_at) VALUES
        (1, 'old@x', '2026-01-01T00:00:00Z'), (2, 'new@x', '2026-01-09T12:00:00Z'), (3, 'none@x', NULL);`,
    );
    const run = await runYaml(
      spec(
        db,
        `skip:
  - reason: too_recent
    when: { expr: 'timestamp(row.created_at) > now - duration("48h")' }
update:
  key: { id: "{{ row.id }}" }
  set:
    out: expired
`,
      ),
      { now: new Date('2026-01-10T00:00:00Z') },
    );
    expect(query(db, 'SELECT id, out FROM users ORDER BY id')).toEqual([
      { id: 1, out: 'expired' },
      { id: 2, out: null },
      { id: 3, out: 'expired' },
    ]);
    expect(run.outcomes.get(2)).toEqual({ outcome: 'skipped', reason: 'too_recent' });
  });

  it('a condition whose expression fails fails that record', async () => {
    const db = usersDb(`INSERT INTO users (id, created_at) VALUES (1, 'yesterday'), (2, '2020-01-01T00:00:00Z');`);
    const run = await runYaml(
      spec(
        db,
        `skip:
  - reason: recent
    when: { expr: 'timestamp(row.created_at) > now - duration("1h")' }
update:
  key: { id: "{{ row.id }}" }
  set: { out: done }
`,
      ),
    );
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'failed', reason: 'expression_error' });
    expect(query(db, 'SELECT id, out FROM users ORDER BY id')).toEqual([
      { id: 1, out: null },
      { id: 2, out: 'done' },
    ]);
  });

  it.each([
    ['sqlite', 'where'],
    ['dynamodb', 'filter'],
  ])('an expression in a %s %s is refused with DF234, naming the structured conditions', (backend, key) => {
    const yaml =
      backend === 'sqlite'
        ? spec('x.db', `  where: { expr: 'row.n == "a"' }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { out: x }\n`)
        : `name: f\ntarget:\n  dynamodb: { table: t, region: us-east-1 }\nsource:\n  as: item\n  scan:\n    filter: { expr: 'item.n == "a"' }\nupdate:\n  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }\n  set: { out: x }\n`;
    const d = diagnostics(yaml).find((x) => x.code === 'DF234');
    expect(d?.message).toContain(`\`${key}\``);
    expect(d?.message).toContain('equals');
  });
});

describe('validate points at the expression', () => {
  const cases: [string, string, string, string][] = [
    ['an unknown name', 'DF231', `"{{ rwo.email.trim() }}"`, 'rwo.email'],
    ['an unknown function', 'DF232', `"{{ row.email.trm() }}"`, 'row.email.trm()'],
    ['wrong arity', 'DF232', `"{{ row.email.trim(1) }}"`, 'row.email.trim(1)'],
    ['a literal type mismatch', 'DF232', `"{{ 'a' + 1 }}"`, `'a' + 1`],
    ['a syntax error', 'DF230', `"{{ row.email ) }}"`, ') }}'],
    ['a bad regular expression', 'DF236', `"{{ row.email.matches('(') }}"`, `'('`],
    ['a duration in a unit CEL lacks', 'DF232', `"{{ string(timestamp(row.at) - duration('30d')) }}"`, `duration('30d')`],
    ['a timestamp without a time zone', 'DF232', `"{{ timestamp('2029-10-01') > timestamp(row.at) }}"`, `timestamp('2029-10-01')`],
    ['a number that is not one', 'DF232', `"{{ int('twelve') + 1 }}"`, `int('twelve')`],
  ];
  it.each(cases)('%s is %s at file:line:col of the expression', async (_name, code, template, needle) => {
    const dir = tmp();
    const body = `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    out: ${template}\n`;
    const text = spec('x.db', body);
    const file = dir.write('fix.yaml', text);
    const r = await runCli(['validate', file], { cwd: dir.path });
    expect(r.code, show(r)).toBe(2);
    const { line, col } = positionOf(text, needle);
    expect(r.stderr + r.stdout).toContain(`${file}:${line}:${col}`);
    expect(r.stderr + r.stdout).toContain(code);
  });

  it('a conversion of literal text that works is accepted', () => {
    const text = spec(
      'x.db',
      `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    out: "{{ string(timestamp('2029-10-01T00:00:00Z') - duration('720h') + duration(string(int('3')) + 's')) }}"\n`,
    );
    expect(compileYaml(text).update.set.map((f) => f.field)).toEqual(['out']);
  });

  it('an error in a condition or an extract then points into its quoted scalar', () => {
    const cond = spec(
      'x.db',
      `skip:\n  - reason: r\n    when: { expr: 'row.email.trm() == "a"' }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { out: x }\n`,
    );
    const d = diagnostics(cond);
    expect(d.map((x) => [x.code, x.line, x.col])).toEqual([['DF232', ...Object.values(positionOf(cond, 'row.email.trm()'))]]);
    const then = spec(
      'x.db',
      `extract:\n  p:\n    from: row.n\n    parse: json\n    path: $.p\n    then: "valu.trim()"\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { out: "{{ p }}" }\n`,
    );
    const t = diagnostics(then);
    expect(t.map((x) => [x.code, x.line, x.col])).toEqual([['DF231', ...Object.values(positionOf(then, 'valu.trim()'))]]);
  });

  it('then when the spec already names something `value` is DF237', () => {
    const text = `name: f\n${sqliteTarget('x.db')}source:\n  as: value\n  table: users\nextract:\n  p:\n    from: value.n\n    parse: json\n    path: $.p\n    then: "value"\nupdate:\n  key: { id: "{{ value.id }}" }\n  set: { out: "{{ p }}" }\n`;
    expect(diagnostics(text).map((x) => x.code)).toEqual(['DF237']);
  });

  it('an expression in a DynamoDB query filter is DF234 too', () => {
    const text = `name: f\ntarget:\n  dynamodb: { table: t, region: us-east-1 }\nsource:\n  as: item\n  query:\n    key: { PK: A }\n    filter: { all: [ { exists: x }, { expr: 'item.n == 1' } ] }\nupdate:\n  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }\n  set: { out: x }\n`;
    expect(diagnostics(text).map((x) => [x.code, x.path])).toEqual([['DF234', '/source/query/filter/all/1/expr']]);
  });

  it('a condition that is not a bool is DF235; an unknown name in a condition is DF231', () => {
    const d = diagnostics(
      spec(
        'x.db',
        `skip:\n  - reason: r\n    when: { expr: 'size(row.email)' }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { out: x }\n`,
      ),
    );
    expect(d.map((x) => x.code)).toEqual(['DF235']);
    const u = diagnostics(
      spec(
        'x.db',
        `skip:\n  - reason: r\n    when: { expr: 'nobody.x == 1' }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { out: x }\n`,
      ),
    );
    expect(u.map((x) => x.code)).toEqual(['DF231']);
  });
});

describe('bounds', () => {
  it('refuses at validate what could nest or grow without bound', () => {
    const long = `"{{ ${Array.from({ length: 700 }, () => 'row.n').join(' + ')} }}"`;
    const nested = `"{{ row.l.map(a, row.l.map(b, row.l.map(c, c))) }}"`;
    const bind = `"{{ cel.bind(x, row.n + row.n, x + x) }}"`;
    for (const t of [long, nested, bind]) {
      const d = diagnostics(spec('x.db', `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    out: ${t}\n`));
      expect(d.map((x) => x.code)).toContain('DF233');
    }
  });

  it('stops unbounded work on a record with expression_limit, quickly, and writes the other records', async () => {
    const db = usersDb(
      `INSERT INTO users (id, n) VALUES (1, '${'a'.repeat(30000)}b'), (2, 'short');
       INSERT INTO users (id, n) VALUES (3, '${'x'.repeat(5000)}');`,
    );
    const started = performance.now();
    const run = await runYaml(
      spec(
        db,
        `update:
  key: { id: "{{ row.id }}" }
  set:
    out: "{{ string(row.n.matches('(a+)+$')) }}"
    email: "{{ string(row.n.split('').map(a, row.n.split('').map(b, a + b)).size()) }}"
    email_norm: "{{ row.n.replace('x', row.n + row.n) }}"
`,
      ),
    );
    // RE2 answers the catastrophic pattern in linear time; the nested macros over 30,000 and
    // 5,000 characters and the replace building 50 million characters are stopped.
    expect(performance.now() - started).toBeLessThan(10_000 * TIME_SCALE);
    expect(run.outcomes.get(1)).toMatchObject({ outcome: 'failed', reason: 'expression_limit' });
    expect(run.outcomes.get(3)).toMatchObject({ outcome: 'failed', reason: 'expression_limit' });
    expect(run.outcomes.get(2)).toEqual({ outcome: 'updated' });
    expect(query(db, 'SELECT id, out, email, email_norm FROM users ORDER BY id')).toEqual([
      { id: 1, out: null, email: null, email_norm: null },
      { id: 2, out: 'false', email: '5', email_norm: 'short' },
      { id: 3, out: null, email: null, email_norm: null },
    ]);
  });

  it('matches runs (a+)+$ on 30,000 characters in linear time', async () => {
    const db = usersDb(`INSERT INTO users (id, n) VALUES (1, '${'a'.repeat(30000)}!'), (2, '${'a'.repeat(30000)}');`);
    const started = performance.now();
    await runYaml(spec(db, `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    out: "{{ string(row.n.matches('^(a+)+$')) }}"\n`));
    expect(performance.now() - started).toBeLessThan(5_000 * TIME_SCALE);
    expect(query(db, 'SELECT id, out FROM users ORDER BY id')).toEqual([
      { id: 1, out: 'false' },
      { id: 2, out: 'true' },
    ]);
  });
});

describe('exact numbers', () => {
  it('SQLite: 9007199254740993 keeps every digit through an expression', async () => {
    const db = usersDb(`INSERT INTO users (id, big) VALUES (1, 9007199254740993), (2, 9223372036854775807);`);
    const run = await runYaml(
      spec(
        db,
        `update:\n  key: { id: "{{ row.id }}" }\n  set:\n    out: "{{ string(row.big + 2) }}"\n    num: "{{ row.big + 2 }}"\n    n: "{{ row.big * 1 }}"\n`,
      ),
    );
    const rows = query(db, 'SELECT id, out, num, typeof(num) AS tn, n, typeof(n) AS t FROM users ORDER BY id', [], { safeIntegers: true });
    expect(rows[0]).toEqual({ id: 1n, out: '9007199254740995', num: 9007199254740995n, tn: 'integer', n: '9007199254740993', t: 'text' });
    // 2^63 - 1 + 2 overflows a 64-bit integer: that record fails, nothing of it is written.
    expect(rows[1]).toEqual({ id: 2n, out: null, num: null, tn: 'null', n: null, t: 'null' });
    expect(run.outcomes.get(2)).toMatchObject({ outcome: 'failed', reason: 'expression_error' });
  });

  describe('DynamoDB', () => {
    let dynamo: RunningDynalite;
    beforeAll(async () => {
      dynamo = await startDynalite();
    }, 30_000 * TIME_SCALE);
    afterAll(async () => {
      await dynamo?.stop();
    });

    it('a 17-digit integer keeps its digits; a 38-digit number fails the record with value_not_exact', async () => {
      const dir = tmp();
      const table = 'exact-expr';
      await createMediaTable(dynamo.endpoint, table);
      const big38 = '12345678901234567890123456789012345678';
      await seedRawItems(dynamo.endpoint, table, [
        { PK: { S: 'A' }, SK: { S: 'M' }, n: { N: '12345678901234567' } },
        { PK: { S: 'B' }, SK: { S: 'M' }, n: { N: big38 } },
      ]);
      const file = dir.write(
        'fix.yaml',
        `name: exact
target:
  dynamodb: { table: "\${DYNAMODB_TABLE}", region: us-east-1, endpoint: "\${LOCAL_AWS_ENDPOINT}" }
source:
  as: item
  scan: {}
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set:
    next: "{{ item.n + 1 }}"
    copy: "{{ item.n }}"
`,
      );
      const r = await runCli(['run', file, '--json'], { cwd: dir.path, env: dynamoEnv(table, dynamo.endpoint) });
      expect(r.code, show(r)).toBe(1);
      expect(r.stdout).toContain('value_not_exact');
      const items = await scanRaw(dynamo.endpoint, table);
      const byPk = new Map(items.map((i) => [i.PK?.S, i]));
      expect(byPk.get('A')).toMatchObject({ next: { N: '12345678901234568' }, copy: { N: '12345678901234567' } });
      // The failed record is not written at all, not even its plain reference.
      expect(byPk.get('B')?.next).toBeUndefined();
      expect(byPk.get('B')?.copy).toBeUndefined();
      expect(byPk.get('B')?.n).toEqual({ N: big38 });
    });
  });
});

describe('extract then', () => {
  it('applies an expression to the extracted value, with a default when nothing matched', async () => {
    const db = usersDb(`INSERT INTO users (id, n) VALUES (1, '{"plan":" PRO "}'), (2, '{"other":1}'), (3, '{"plan":42}');`);
    const run = await runYaml(
      spec(
        db,
        `extract:
  plan:
    from: row.n
    parse: json
    path: $.plan
    then: 'value == null ? "free" : value.trim().lowerAscii()'
update:
  key: { id: "{{ row.id }}" }
  set:
    out: "{{ plan }}"
`,
      ),
    );
    expect(query(db, 'SELECT id, out FROM users ORDER BY id')).toEqual([
      { id: 1, out: 'pro' },
      { id: 2, out: 'free' },
      { id: 3, out: null },
    ]);
    expect(run.outcomes.get(3)).toMatchObject({ outcome: 'failed', reason: 'expression_error' });
  });
});

describe('explain', () => {
  it.each(['text', 'markdown'])('shows each expression as written (%s)', async (format) => {
    const dir = tmp();
    const file = dir.write(
      'fix.yaml',
      spec(
        'x.db',
        `extract:
  plan:
    from: row.n
    parse: json
    path: $.plan
    then: 'value == null ? "free" : value'
skip:
  - reason: fresh
    when: { not: { expr: 'timestamp(row.created_at) < now - duration("24h")' } }
update:
  key: { id: "{{ row.id }}" }
  set:
    out: "U#{{ row.email.trim().lowerAscii() }}"
    email_norm: "{{ plan }}"
`,
      ),
    );
    const r = await runCli(['explain', file, '--format', format], { cwd: dir.path });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain(
      'not (the expression `timestamp(row.created_at) < now - duration("24h")` is true)'.replace(/`/g, format === 'markdown' ? '`' : ''),
    );
    expect(r.stdout).toContain('U#{{ row.email.trim().lowerAscii() }}');
    expect(r.stdout).toContain('value == null ? "free" : value');
  });
});
