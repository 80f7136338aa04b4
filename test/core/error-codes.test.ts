/**
 * docs/errors.md is the one list of datafix's `DFnnn` codes: every code the source can print is on
 * it, once, with its meaning and what to do, and it lists no code the source does not print. A
 * code means one thing: codes that once carried two meanings now print one each.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDynamoAdapter } from '../../src/adapters/dynamodb/index.js';
import { createSqliteAdapter } from '../../src/adapters/sqlite/index.js';
import type { SourcePlan } from '../../src/plan/types.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb } from '../sqlite/fixtures.js';

const tmp = useTempDirs();
const CODE = /\bDF[0-9]{3}\b/g;

function filesBelow(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return filesBelow(p, ext);
    return p.endsWith(ext) ? [p] : [];
  });
}

/** Every code written anywhere in src/, with the files it appears in. */
function codesInSource(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of filesBelow(join(REPO_ROOT, 'src'), '.ts')) {
    for (const [code] of readFileSync(file, 'utf8').matchAll(CODE)) {
      const files = out.get(code) ?? [];
      if (!files.includes(file)) files.push(file);
      out.set(code, files);
    }
  }
  return out;
}

/** The rows of docs/errors.md's tables: `| DFnnn | meaning | what to do |`. */
function documentedRows(): { code: string; meaning: string; todo: string }[] {
  const text = readFileSync(join(REPO_ROOT, 'docs/errors.md'), 'utf8');
  return [...text.matchAll(/^\| (DF[0-9]{3}) \| (.+?) \| (.+?) \|$/gm)].map((m) => ({
    code: m[1] as string,
    meaning: m[2] as string,
    todo: m[3] as string,
  }));
}

describe('docs/errors.md and the source agree', () => {
  it('every code in src/ has exactly one row, with a meaning and what to do; no row names a code src/ does not use', () => {
    const inSource = codesInSource();
    const rows = documentedRows();
    const documented = rows.map((r) => r.code);
    const twice = documented.filter((c, i) => documented.indexOf(c) !== i);
    expect(twice, 'codes with more than one row').toEqual([]);
    const undocumented = [...inSource.keys()].filter((c) => !documented.includes(c));
    expect(
      undocumented.map((c) => `${c} (${inSource.get(c)?.join(', ')})`),
      'codes missing from docs/errors.md',
    ).toEqual([]);
    expect(
      documented.filter((c) => !inSource.has(c)),
      'rows for codes src/ no longer uses',
    ).toEqual([]);
    for (const r of rows) {
      expect(r.meaning.length, r.code).toBeGreaterThan(10);
      expect(r.todo.length, r.code).toBeGreaterThan(5);
    }
  });

  it('every code the README and docs/ mention is on docs/errors.md', () => {
    const documented = new Set(documentedRows().map((r) => r.code));
    const docs = [join(REPO_ROOT, 'README.md'), ...filesBelow(join(REPO_ROOT, 'docs'), '.md')];
    const unknown = docs.flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(CODE)]
        .map((m) => m[0])
        .filter((c) => !documented.has(c))
        .map((c) => `${c} in ${f}`),
    );
    expect(unknown).toEqual([]);
  });

  it('the README links the page', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    expect(readme.includes('[docs/errors.md](docs/errors.md)'), 'README.md links docs/errors.md').toBe(true);
  });
});

describe('a code means one thing', () => {
  it('--segment without --total-segments is DF723 (never DF001, which is a YAML syntax error)', async () => {
    const r = await runCli(['run', 'fixes/i2v-thumbnails.yaml', '--segment', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error DF723: --segment and --total-segments go together\n');
    const above = await runCli(['run', 'fixes/i2v-thumbnails.yaml', '--segment', '4', '--total-segments', '4']);
    expect(above.code).toBe(2);
    expect(above.stderr).toBe('error DF723: --segment must be below --total-segments (4)\n');
  });

  // Plans built through the library can reach an adapter without passing compileSpec, which
  // reports the same mistake as DF205.
  it('a source reader the backend cannot use is DF205 on both adapters (never DF405/DF406, which name a missing column or lookup key)', async () => {
    const db = tmp().file('a.db');
    createDb(db, 'CREATE TABLE items (id TEXT PRIMARY KEY, note TEXT)');
    const query: SourcePlan = {
      kind: 'query',
      as: 'item',
      partitionKey: { name: 'PK', value: 'X' },
      newestFirst: false,
      consistentRead: false,
    };
    const sqlite = createSqliteAdapter({ backend: 'sqlite', path: db, busyTimeoutMs: 100 });
    try {
      const pages = sqlite.readPages(query, { pageSize: 10 })[Symbol.asyncIterator]();
      await expect(pages.next()).rejects.toMatchObject({ code: 'DF205', message: 'a SQLite target reads with source.table' });
    } finally {
      await sqlite.close();
    }
    // Refused before any request: the endpoint is never contacted.
    const dynamo = await createDynamoAdapter({ backend: 'dynamodb', table: 't', region: 'us-east-1', endpoint: 'http://127.0.0.1:9' });
    try {
      const table: SourcePlan = { kind: 'table', as: 'row', table: 'items' };
      const pages = dynamo.readPages(table, { pageSize: 10 })[Symbol.asyncIterator]();
      await expect(pages.next()).rejects.toMatchObject({
        code: 'DF205',
        message: 'a DynamoDB target reads with source.query or source.scan, not source.table',
      });
    } finally {
      await dynamo.close();
    }
  });
});

describe('DF301 says which: a variable not set, or set but empty', () => {
  it('`DYNAMODB_TABLE=` in .env.prod is reported as empty, at the spec line that reads it; an unset one as not set', async () => {
    const dir = tmp();
    dir.write('.env.prod', 'DYNAMODB_TABLE=\nAWS_REGION=eu-west-1\n');
    const env = { DYNAMODB_TABLE: undefined, AWS_REGION: undefined, LOCAL_AWS_ENDPOINT: undefined };
    const fix = join(REPO_ROOT, 'fixes/i2v-thumbnails.yaml');
    const line =
      readFileSync(fix, 'utf8')
        .split('\n')
        .findIndex((l) => l.includes('${DYNAMODB_TABLE}')) + 1;
    const empty = await runCli(['run', fix, '--env', 'prod', '--dry-run'], { cwd: dir.path, env });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(
      new RegExp(`i2v-thumbnails\\.yaml:${line}:\\d+ DF301 \\S+: environment variable DYNAMODB_TABLE is set but empty;`),
    );
    expect(empty.stderr).not.toContain('not set');
    const unset = await runCli(['run', fix, '--dry-run'], { cwd: dir.path, env });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('environment variable DYNAMODB_TABLE is not set;');
  });
});
