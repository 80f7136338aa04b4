/** examples/parse-numeric-strings.yaml end to end on a real SQLite file, checked against plain JS. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { show } from '../safety/support.js';
import { createDb, query } from '../sqlite/fixtures.js';
import { example, expectExampleTestsPass } from './support.js';

const tmp = useTempDirs();

describe('examples/parse-numeric-strings', () => {
  it('passes its datafix test file', async () => {
    await expectExampleTestsPass('parse-numeric-strings', 3);
  });

  it('fills price from numeric text, fails the rest as not_a_number, leaves priced rows alone', async () => {
    const dir = tmp();
    const db = dir.file('shop.db');
    const texts = ['12.50', ' 7 ', '-3.5', '0', '0042.10', '12,50', 'N/A', '1e3', '', '  ', '3.', '.5', '-', '99.999'];
    const seeded = Array.from({ length: 56 }, (_, i) => ({
      id: i + 1,
      price_text: i % 11 === 10 ? null : (texts[i % texts.length] as string),
      price: i % 9 === 8 ? 1.25 : null,
    }));
    const literal = (v: string | null) => (v === null ? 'NULL' : `'${v}'`);
    createDb(
      db,
      `CREATE TABLE products (id INTEGER PRIMARY KEY, price_text TEXT, price REAL);
       INSERT INTO products VALUES ${seeded.map((r) => `(${r.id}, ${literal(r.price_text)}, ${r.price ?? 'NULL'})`).join(', ')};`,
    );
    // The dry run shows each number as the REAL column will hold it.
    const dry = await runCli(['run', example('parse-numeric-strings.yaml'), '--dry-run'], { cwd: dir.path, env: { SHOP_DB_PATH: db } });
    expect(dry.stdout).toMatch(/^ {4}price: null → 7\.0$/m);
    expect(dry.stdout).toMatch(/^ {4}price: null → 12\.5$/m);
    expect(dry.stdout).not.toContain('$number');
    const r = await runCli(['run', example('parse-numeric-strings.yaml'), '--json'], { cwd: dir.path, env: { SHOP_DB_PATH: db } });

    // A plain decimal: optional minus, digits, optionally a dot and more digits.
    const numeric = (t: string) => /^-?[0-9]+(\.[0-9]+)?$/.test(t.trim());
    const read = seeded.filter((s) => s.price_text !== null && s.price === null);
    const expected = seeded.map((s) => ({
      id: s.id,
      price: s.price_text !== null && s.price === null && numeric(s.price_text) ? Number.parseFloat(s.price_text) : s.price,
    }));
    expect(query(db, 'SELECT id, price FROM products ORDER BY id')).toEqual(expected);
    const bad = read.filter((s) => !numeric(s.price_text as string)).length;
    const summary = JSON.parse(r.stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ total: read.length, updated: read.length - bad, failed: bad, reasons: { not_a_number: bad } });
    expect(bad).toBeGreaterThan(0);
    expect(r.code, show(r)).toBe(1);
  });
});
