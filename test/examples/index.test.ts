/**
 * Every example ships whole: a fix, its `datafix test` file, an end-to-end test here, and a link
 * from docs/cookbook.md. A new example without one of them fails this test.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const fixes = readdirSync(`${ROOT}examples`)
  .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length));
const cookbook = readFileSync(`${ROOT}docs/cookbook.md`, 'utf8');

describe('examples/', () => {
  it('holds the examples the language promises', () => {
    expect(fixes.length).toBe(10);
  });

  it.each(fixes)('%s has a datafix test file, an end-to-end test and a cookbook link', (name) => {
    expect(existsSync(`${ROOT}examples/${name}.test.yaml`)).toBe(true);
    expect(existsSync(`${ROOT}test/examples/${name}.test.ts`)).toBe(true);
    expect(cookbook).toContain(`(../examples/${name}.yaml)`);
  });
});
