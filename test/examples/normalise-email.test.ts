/** examples/normalise-email.yaml end to end on a real SQLite file, checked against plain JS. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { show } from '../safety/support.js';
import { createDb, query } from '../sqlite/fixtures.js';
import { example, expectExampleTestsPass, lowerAscii } from './support.js';

const tmp = useTempDirs();

describe('examples/normalise-email', () => {
  it('passes its datafix test file', async () => {
    await expectExampleTestsPass('normalise-email', 2);
  });

  it('normalises every email that needs it and counts the rest by reason', async () => {
    const dir = tmp();
    const db = dir.file('app.db');
    const shapes = ['  Ann@Example.COM ', 'bob@x.io', '\tCAROL@X.IO', '   ', 'Élodie@X.fr', null, 'dave@x.io '];
    const seeded = Array.from({ length: 70 }, (_, i) => ({ id: i + 1, email: shapes[i % shapes.length] as string | null }));
    const literal = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);
    createDb(
      db,
      `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT);
       INSERT INTO users (id, email, name) VALUES ${seeded.map((r) => `(${r.id}, ${literal(r.email)}, 'n${r.id}')`).join(', ')};`,
    );
    const r = await runCli(['run', example('normalise-email.yaml'), '--json'], { cwd: dir.path, env: { APP_DB_PATH: db } });
    expect(r.code, show(r)).toBe(0);

    const expected = seeded.map(({ id, email }) => {
      if (email === null || email.trim() === '') return { id, email, name: `n${id}` };
      return { id, email: lowerAscii(email.trim()), name: `n${id}` };
    });
    expect(query(db, 'SELECT id, email, name FROM users ORDER BY id')).toEqual(expected);
    const changed = seeded.filter((s) => s.email !== null && s.email.trim() !== '' && lowerAscii(s.email.trim()) !== s.email).length;
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(summary).toMatchObject({
      total: seeded.filter((s) => s.email !== null).length,
      updated: changed,
      reasons: { blank_email: 10, already_normalised: 10 },
    });
  });
});
