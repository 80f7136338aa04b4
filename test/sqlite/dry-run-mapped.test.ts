/**
 * A read-only connection (a dry run) reads the database through a memory map. SQLite keeps the
 * map in step with what other SQLite connections do, but not with a file cut short by another
 * program (a copy over it, a truncate): a read of a mapped page with nothing behind it would end
 * the process with SIGBUS, printing nothing. The adapter looks at the file's size before each
 * read and drops the map once it shrank, so the run ends with SQLite's own finding (DF421).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb } from './fixtures.js';

const tmp = useTempDirs();
const helper = fileURLToPath(new URL('../helpers/dry-run-cut-short.mjs', import.meta.url));

/** A 20 000-row table of 200-byte values (about 5 MB, more than SQLite's page cache holds), and a second table a lookup reads. */
function bigDb(path: string): void {
  createDb(
    path,
    `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, w TEXT);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
     INSERT INTO t SELECT i, printf('%.200c', 'x'), NULL FROM n;
     CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT);
     INSERT INTO names SELECT id, 'name ' || id FROM t;`,
  );
}

const spec = (db: string, withLookup: boolean) => `name: cut-short
target: { sqlite: { path: ${JSON.stringify(db)} } }
source: { as: row, table: t, pageSize: 500 }
${withLookup ? 'lookups:\n  n: { table: names, get: { id: "{{ row.id }}" } }\n' : ''}update:
  table: t
  key: { id: "{{ row.id }}" }
  set: { w: "${withLookup ? '{{ n.name }}' : '{{ row.v }}'}" }
`;

/** Runs the helper: a dry run whose file is cut to `cut` after page `afterPage`; its exit status and answer. */
function dryRunCutShort(withLookup: boolean, afterPage: number, cut: string) {
  const dir = tmp();
  const db = dir.file('cut.db');
  bigDb(db);
  const file = dir.write('fix.yaml', spec(db, withLookup));
  const r = spawnSync(process.execPath, [helper, file, String(afterPage), cut], { encoding: 'utf8', timeout: 60_000 });
  return {
    status: r.status,
    signal: r.signal,
    stderr: r.stderr,
    answer: r.stdout ? (JSON.parse(r.stdout) as { code?: string; message?: string; summary?: { total: number } }) : undefined,
  };
}

describe('a dry run whose database file another program cuts short', () => {
  it('left alone, the helper run reads every row (the cases below change only the file)', () => {
    const r = dryRunCutShort(false, 2, String(10 ** 9));
    expect(r).toMatchObject({ status: 0, signal: null, answer: { summary: { total: 20_000, updated: 20_000 } } });
  });

  it.each([
    ['truncated to nothing', '0'],
    ['truncated to its first two pages', '8192'],
    ['rewritten in place with its first 20 000 bytes', 'copy'],
  ])('%s between pages: DF421 naming the table, not a crash', (_name, cut) => {
    for (const withLookup of [false, true]) {
      const r = dryRunCutShort(withLookup, 2, cut);
      expect(r.signal, `lookup: ${withLookup}`).toBeNull();
      expect(r.status, JSON.stringify(r)).toBe(0);
      expect(r.answer?.code, JSON.stringify(r.answer)).toBe('DF421');
      expect(r.answer?.message).toMatch(/SQLite cannot read the next rows of `t`/);
    }
  });
});
