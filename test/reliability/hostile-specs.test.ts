/**
 * Hostile specs through the CLI, as live runs against a real SQLite file: each one is refused
 * before anything is read or written — exit 2, a `file:line:col` diagnostic on stderr, no stack
 * trace — and the database file is byte-identical afterwards. A where value that looks like SQL
 * is a bound value: only the row whose id is literally that text matches.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { sha256File, type TempDir, useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs({ scope: 'file' });

function makeDb(dir: TempDir): string {
  const path = dir.file('data.db');
  const db = new Database(path);
  db.exec(`CREATE TABLE items (id TEXT PRIMARY KEY, src TEXT, note TEXT);
    CREATE TABLE x (id INTEGER PRIMARY KEY);
    INSERT INTO x VALUES (1);`);
  const ins = db.prepare('INSERT INTO items (id, src) VALUES (?, ?)');
  for (const id of ['1', '2', '3', "1' OR '1'='1"]) ins.run(id, `src-${id}`);
  db.close();
  return path;
}

const SOURCE = `source:
  as: row
  table: items
`;
const UPDATE = `update:
  table: items
  key: { id: "{{ row.id }}" }
  set:
    note: "{{ row.src }}"
`;
const base = (parts: { head?: string; source?: string; update?: string; tail?: string } = {}) =>
  `${parts.head ?? ''}name: hostile
target:
  sqlite:
    path: \${DB}
${parts.source ?? SOURCE}${parts.update ?? UPDATE}${parts.tail ?? ''}`;

function billionLaughs(): string {
  const lines = ['lol0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 10; i++)
    lines.push(
      `lol${i}: &a${i} [${Array(10)
        .fill(`*a${i - 1}`)
        .join(',')}]`,
    );
  return `${lines.join('\n')}\n`;
}

const CASES: { name: string; spec: () => string; message: RegExp }[] = [
  { name: 'YAML alias bomb (billion laughs)', spec: () => base({ tail: billionLaughs() }), message: /alias/i },
  {
    name: '10 000 levels of nesting',
    spec: () => base({ tail: `description: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n` }),
    message: /DF006 spec is nested more than 64 levels deep/,
  },
  { name: '%YAML 1.1 directive', spec: () => `%YAML 1.1\n---\n${base()}`, message: /YAML|1\.1|version|directive/i },
  {
    name: 'unknown tag !js/function',
    spec: () => base({ tail: 'description: !js/function "function () { return process.exit(7) }"\n' }),
    message: /tag|js\/function/i,
  },
  { name: 'duplicate keys', spec: () => base({ head: 'name: first\n' }), message: /duplicate|unique|name/i },
  {
    name: '__proto__ as a key',
    spec: () => base({ update: `${UPDATE}    __proto__: "{{ row.src }}"\n` }),
    message: /__proto__/,
  },
  {
    name: 'constructor as a key',
    spec: () => base({ update: `${UPDATE}    constructor: "{{ row.src }}"\n` }),
    message: /constructor/,
  },
  {
    name: '__proto__ as a reference segment',
    spec: () => base({ update: UPDATE.replace('{{ row.src }}', '{{ row.__proto__ }}') }),
    message: /__proto__/,
  },
  {
    name: 'constructor as a reference segment',
    spec: () => base({ update: UPDATE.replace('{{ row.src }}', '{{ row.constructor.name }}') }),
    message: /constructor/,
  },
  {
    name: 'JSONPath filter $..[?(@.x)]',
    spec: () =>
      base({
        update: UPDATE.replace('{{ row.src }}', '{{ v }}'),
        tail: 'extract:\n  v:\n    from: row.src\n    parse: json\n    first: ["$..[?(@.x)]"]\n',
      }),
    message: /filter|script/i,
  },
  {
    name: 'JSONPath script $[(@.length-1)]',
    spec: () =>
      base({
        update: UPDATE.replace('{{ row.src }}', '{{ v }}'),
        tail: 'extract:\n  v:\n    from: row.src\n    parse: json\n    first: ["$[(@.length-1)]"]\n',
      }),
    message: /filter|script/i,
  },
  {
    name: 'SQL in the source table name',
    spec: () => base({ source: 'source:\n  as: row\n  table: "t; DROP TABLE x"\n' }),
    message: /t; DROP TABLE x|table/i,
  },
  {
    name: 'SQL in the update table name',
    spec: () => base({ update: UPDATE.replace('table: items', 'table: "items; DROP TABLE x; --"') }),
    message: /table/i,
  },
  {
    name: 'SQL in an update.set column name',
    spec: () => base({ update: UPDATE.replace('note:', '"note = 1; DROP TABLE x; --":') }),
    message: /column|name/i,
  },
  {
    name: 'SQL in a where column name',
    spec: () => base({ source: `${SOURCE}  where:\n    equals: { "id = id OR 1=1; DROP TABLE x; --": "1" }\n` }),
    message: /DF208|column|name/i,
  },
  {
    name: 'a template naming an undefined value',
    spec: () => base({ update: UPDATE.replace('{{ row.src }}', '{{ nothere.src }}') }),
    message: /nothere/,
  },
  { name: 'a 2 MiB spec', spec: () => base({ tail: `description: "${'x'.repeat(2 * 1024 * 1024)}"\n` }), message: /bytes|limit/i },
  {
    name: 'a missing environment variable',
    spec: () => base().replace('${DB}', '${DATAFIX_TEST_NOT_SET}'),
    message: /DATAFIX_TEST_NOT_SET/,
  },
];

describe.concurrent('hostile specs are refused with file:line:col, exit 2, nothing written', () => {
  for (const c of CASES) {
    it(c.name, async ({ expect }) => {
      const dir = tmp();
      const db = makeDb(dir);
      const before = sha256File(db);
      const spec = dir.write('hostile.yaml', c.spec());
      const r = await runCli(['run', spec, '--json', '--yes'], { cwd: dir.path, env: { DB: db, DATAFIX_TEST_NOT_SET: undefined } });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/hostile\.yaml:\d+:\d+/);
      expect(r.stderr).toMatch(c.message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).not.toMatch(/"updated"/);
      expect(sha256File(db)).toBe(before);
      expect(existsSync(dir.file('.datafix', 'runs'))).toBe(false);
    });
  }
});

// The parser itself gives out on such depth before the depth check runs; the message must still
// name the nesting limit.
it('10 000 levels of nesting are refused with the nesting-limit message, not a stack overflow', async () => {
  const dir = tmp();
  const db = makeDb(dir);
  const spec = dir.write('hostile.yaml', base({ tail: `description: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n` }));
  const r = await runCli(['run', spec, '--json'], { cwd: dir.path, env: { DB: db } });
  expect(r.code).toBe(2);
  expect(r.stderr).not.toMatch(/call stack/i);
  expect(r.stderr).toMatch(/DF006 .*nested more than \d+ levels/);
});

describe('a where value that looks like SQL is a bound value', () => {
  let dir: TempDir;
  let db: string;
  beforeAll(() => {
    dir = tmp();
    db = makeDb(dir);
  });

  it("equals: { id: \"1' OR '1'='1\" } matches only the row whose id is that text", async () => {
    const spec = dir.write('bound.yaml', base({ source: `${SOURCE}  where:\n    equals: { id: "1' OR '1'='1" }\n` }));
    const r = await runCli(['run', spec, '--json'], { cwd: dir.path, env: { DB: db } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ total: 1, updated: 1, failed: 0 });
    const check = new Database(db, { readonly: true });
    try {
      expect(check.prepare('SELECT id, note FROM items ORDER BY id').all()).toEqual([
        { id: '1', note: null },
        { id: "1' OR '1'='1", note: "src-1' OR '1'='1" },
        { id: '2', note: null },
        { id: '3', note: null },
      ]);
      expect(check.prepare('SELECT count(*) AS n FROM x').get()).toEqual({ n: 1 });
    } finally {
      check.close();
    }
  });
});

// Keeps the unused-import linter quiet when every case is concurrent.
void expect;
