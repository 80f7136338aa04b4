/**
 * Another connection changes the source table's columns while a run reads it: SQLite prepares a
 * `SELECT *` again as it steps, and every page's rows must be named by the columns that page was
 * read with, never by the ones read before (values would land under their neighbours' names).
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runPlan } from '../../src/api.js';
import { useTempDirs } from '../helpers/tmp.js';
import { compileYaml, createDb, query } from './fixtures.js';

const tmp = useTempDirs();

function contactsDb(path: string): void {
  createDb(
    path,
    `CREATE TABLE t (id INTEGER PRIMARY KEY, legacy TEXT, email TEXT, backup TEXT, contact TEXT);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
     INSERT INTO t SELECT i, 'old' || i, 'user' || i || '@x.io', 'other' || i || '@y.io', NULL FROM n;`,
  );
}

// The extract reads the whole row (`from: row`), so the source is read with `SELECT *`.
const spec = (db: string) => `name: fill-contact
target: { sqlite: { path: ${JSON.stringify(db)} } }
source: { as: row, table: t, pageSize: 100 }
extract:
  em: { from: row, path: "$.email" }
update:
  key: { id: "{{ row.id }}" }
  set: { contact: "{{ em }}" }
`;

describe('a column dropped by another connection while a run reads the table', () => {
  it.each([
    ['dropped', 'ALTER TABLE t DROP COLUMN legacy'],
    ['renamed', 'ALTER TABLE t RENAME COLUMN legacy TO gone'],
  ])('%s after the first page: every row still gets its own email, dry run and live', async (_what, ddl) => {
    for (const dryRun of [true, false]) {
      const db = tmp().file('c.db');
      contactsDb(db);
      const shown: Record<number, unknown> = {};
      const summary = (
        await runPlan(compileYaml(spec(db)), {
          dryRun,
          onEvent: (e) => {
            if (e.type === 'record' && e.changes) shown[Number(e.key.id)] = e.changes.find((c) => c.field === 'contact')?.after;
            if (e.type === 'page' && e.index === 0) {
              const other = new Database(db, { timeout: 5000 });
              other.exec(ddl);
              other.close();
            }
          },
        })
      ).summary;
      expect(summary).toMatchObject({ total: 300, updated: 300, failed: 0 });
      for (const id of [1, 150, 300]) expect(shown[id], `dry run: ${dryRun}`).toBe(`user${id}@x.io`);
      if (!dryRun) {
        expect(query(db, "SELECT count(*) AS n FROM t WHERE contact = 'user' || id || '@x.io'")).toEqual([{ n: 300 }]);
      }
    }
  });
});
