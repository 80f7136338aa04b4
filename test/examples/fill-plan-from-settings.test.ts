/** examples/fill-plan-from-settings.yaml end to end on a real SQLite file, checked against plain JS. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { show } from '../safety/support.js';
import { createDb, query } from '../sqlite/fixtures.js';
import { example, expectExampleTestsPass, lowerAscii } from './support.js';

const tmp = useTempDirs();

describe('examples/fill-plan-from-settings', () => {
  it('passes its datafix test file', async () => {
    await expectExampleTestsPass('fill-plan-from-settings', 2);
  });

  it('fills plan from the JSON or with the default, keeps set plans, fails bad rows', async () => {
    const dir = tmp();
    const db = dir.file('app.db');
    const shapes: [string | null, string | null][] = [
      ['{"billing":{"plan":" Pro "}}', null],
      ['{"billing":{"plan":"TEAM"}}', null],
      ['{"billing":{}}', null],
      [null, null],
      ['{"billing":{"plan":"basic"}}', 'enterprise'],
      ['not json', null],
      ['{"billing":{"plan":7}}', null],
    ];
    const seeded = Array.from({ length: 49 }, (_, i) => {
      const [settings, plan] = shapes[i % shapes.length] as [string | null, string | null];
      return { id: i + 1, settings, plan };
    });
    const literal = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);
    createDb(
      db,
      `CREATE TABLE accounts (id INTEGER PRIMARY KEY, settings TEXT, plan TEXT);
       INSERT INTO accounts VALUES ${seeded.map((r) => `(${r.id}, ${literal(r.settings)}, ${literal(r.plan)})`).join(', ')};`,
    );
    const r = await runCli(['run', example('fill-plan-from-settings.yaml'), '--json'], { cwd: dir.path, env: { APP_DB_PATH: db } });
    expect(r.code, show(r)).toBe(1);

    const planOf = (settings: string | null): string | null => {
      if (settings === null) return 'free';
      let json: { billing?: { plan?: unknown } };
      try {
        json = JSON.parse(settings);
      } catch {
        return null; // invalid_json: the row fails and keeps its NULL
      }
      const p = json.billing?.plan;
      if (p === undefined) return 'free';
      return typeof p === 'string' ? lowerAscii(p.trim()) : null; // a number fails: expression_error
    };
    const expected = seeded.map(({ id, settings, plan }) => ({ id, plan: plan ?? planOf(settings) }));
    expect(query(db, 'SELECT id, plan FROM accounts ORDER BY id')).toEqual(expected);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ total: 42, updated: 28, failed: 14, reasons: { invalid_json: 7, expression_error: 7 } });
  });
});
