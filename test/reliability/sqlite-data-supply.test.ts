/**
 * Hostile data in SQLite (invalid JSON and JSON nested 100 000 deep in raw_response): each bad row
 * gets its own exact outcome and the run goes on; and the supply-chain guards: every JSONPath evaluation in
 * src runs with `eval: false`, and package-lock.json pins jsonpath-plus 10.x and yaml ≥ 2.8.4.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('hostile data in SQLite raw_response', () => {
  it('invalid JSON fails its row, a 100 000-deep document without an id is skipped, a 100 000-deep id fails; the other rows are fixed', async () => {
    const dir = tmp();
    const db = dir.file('veo.db');
    const conn = new Database(db);
    conn.exec('CREATE TABLE gens (id INTEGER PRIMARY KEY, raw_response TEXT, media_generation_id TEXT, updated_at TEXT)');
    const ins = conn.prepare('INSERT INTO gens (id, raw_response) VALUES (?, ?)');
    const good = (n: number) => JSON.stringify({ operations: [{ mediaGenerationId: `mg-${n}` }] });
    ins.run(1, good(1));
    ins.run(2, '{"operations": [ {"mediaGenerationId": "unterminated');
    ins.run(3, good(3));
    ins.run(4, `${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    ins.run(5, `{"operations":[{"mediaGenerationId":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}`);
    ins.run(6, good(6));
    conn.close();
    const spec = dir.write(
      'sync.yaml',
      `name: sync-ids
target:
  sqlite: { path: "\${DB}" }
source:
  as: row
  table: gens
  where: { isNull: media_generation_id }
extract:
  mediaGenerationId:
    from: row.raw_response
    parse: json
    first: ["$.operations[0].mediaGenerationId"]
skip:
  - reason: no_media_generation_id
    when: { missing: mediaGenerationId }
update:
  table: gens
  key: { id: "{{ row.id }}" }
  set: { media_generation_id: "{{ mediaGenerationId }}" }
  touch: { updated_at: "{{ now }}" }
`,
    );
    const r = await runCli(['run', spec, '--json'], { cwd: dir.path, env: { DB: db } });
    // Exit 1: some rows failed, the run finished.
    expect(r.code, r.stderr).toBe(1);
    const summary = JSON.parse(r.stdout);
    // Row 2 is not JSON; row 4 parses (JSON.parse is not recursive) to an array with no
    // operations, so no id is found and it is skipped; row 5's id is a value nested 100 000 deep,
    // which no backend can store.
    expect(summary).toMatchObject({
      total: 6,
      updated: 3,
      skipped: 1,
      failed: 2,
      reasons: { invalid_json: 1, no_media_generation_id: 1, value_too_deep: 1 },
    });
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const check = new Database(db, { readonly: true });
    try {
      const rows = check.prepare('SELECT id, media_generation_id AS m FROM gens ORDER BY id').all() as { id: number; m: unknown }[];
      expect(rows.filter((x) => x.m !== null)).toEqual([
        { id: 1, m: 'mg-1' },
        { id: 3, m: 'mg-3' },
        { id: 6, m: 'mg-6' },
      ]);
    } finally {
      check.close();
    }
  });
});

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('supply chain', () => {
  it('every JSONPath evaluation in src passes eval: false', () => {
    const calls: string[] = [];
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      const text = readFileSync(file, 'utf8');
      // Calls of JSONPath( … ) — toPathArray and the like only parse, they evaluate nothing.
      for (const m of text.matchAll(/\bJSONPath\s*\(([\s\S]*?)\)/g)) calls.push(`${file}: ${m[1]}`);
      for (const m of text.matchAll(/new\s+JSONPath\s*\(/g)) calls.push(`${file}: new JSONPath at ${m.index} (must not be used)`);
    }
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) expect(call).toMatch(/\beval\s*:\s*false\b/);
  });

  it('package-lock.json pins jsonpath-plus 10.x and yaml ≥ 2.8.4', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string }>;
    };
    const version = (name: string) => lock.packages[`node_modules/${name}`]?.version ?? '';
    expect(version('jsonpath-plus')).toMatch(/^10\.\d+\.\d+$/);
    const [major, minor, patch] = version('yaml').split('.').map(Number) as [number, number, number];
    expect(major).toBe(2);
    expect(minor * 1000 + patch).toBeGreaterThanOrEqual(8 * 1000 + 4);
    // No second, unpinned copy anywhere in the tree.
    for (const [path, meta] of Object.entries(lock.packages)) {
      if (path.endsWith('/node_modules/jsonpath-plus')) expect(meta.version).toMatch(/^10\./);
      if (path.endsWith('/node_modules/yaml')) expect(meta.version).toBe(version('yaml'));
    }
  });
});
