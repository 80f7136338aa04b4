/**
 * Names that become SQL: only plain identifiers (a letter or `_`, then letters, digits or `_`)
 * are ever quoted into a statement. `datafix test` builds its SQLite tables from the names a test
 * file declares, so it refuses any other name before creating anything (DF514), at its line.
 */
import { describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/adapters/sqlite/sql.js';
import { FixTestRunner } from '../../src/fixtest/run.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

const FIX = `name: names
target:
  sqlite:
    path: unused.db
source: { as: u, table: users }
update:
  key: { id: "{{ u.id }}" }
  set: { name: x }
`;

async function runTestFile(columns: string): Promise<Awaited<ReturnType<FixTestRunner['runFile']>>> {
  const dir = tmp();
  dir.write('fix.yaml', FIX);
  const file = dir.write(
    'fix.test.yaml',
    `fix: fix.yaml
tables:
  users:
    columns: { ${columns} }
    primaryKey: [id]
cases:
  - name: one row named
    given:
      users:
        - { id: 1 }
    expect:
      summary: { total: 1, updated: 1, skipped: 0, failed: 0 }
      records:
        users:
          - { id: 1, name: x }
`,
  );
  return new FixTestRunner().runFile(file);
}

describe('datafix test: table names that become SQL', () => {
  it('a column name starting with a digit, or holding a character other than letters, digits and _, is DF514 at its line', async () => {
    const result = await runTestFile('id: INTEGER, name: TEXT, 2fa: INTEGER, mail-box: TEXT');
    expect(result.cases).toEqual([]);
    expect(result.diagnostics?.map((d) => [d.code, d.message, d.line])).toEqual([
      ['DF514', 'tables.users.columns.2fa: not a plain identifier (letters, digits, _)', 4],
      ['DF514', 'tables.users.columns.mail-box: not a plain identifier (letters, digits, _)', 4],
    ]);
  });

  it('names of letters, digits and _ (a leading _ too) are accepted, and the case runs', async () => {
    const result = await runTestFile('id: INTEGER, name: TEXT, _hidden: TEXT, v2_note: TEXT');
    expect(result.diagnostics).toBeUndefined();
    expect(result.cases).toEqual([{ name: 'one row named', passed: true, problems: [] }]);
  });
});

describe('the last guard before SQL text: quoteIdent', () => {
  it('quotes a plain identifier (rowid too) and refuses anything else rather than escaping it', () => {
    expect(['users', '_a1', 'rowid', 'Z9'].map(quoteIdent)).toEqual(['"users"', '"_a1"', '"rowid"', '"Z9"']);
    for (const name of ['2fa', 'mail-box', 'a"b', 'x; DROP TABLE t', '']) {
      expect(() => quoteIdent(name)).toThrow(`refusing SQL identifier ${JSON.stringify(name)}`);
    }
  });
});
