/**
 * examples/rename-enum-value.yaml end to end on a real SQLite file, through the built CLI: its
 * `datafix test` cases pass, the saved plan and the live run count the fail rule's records as
 * failed (exit 1), and the table afterwards holds what plain JS computes from the seeded rows.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createDb, query } from '../sqlite/fixtures.js';

const tmp = useTempDirs();
const FIX = `${REPO_ROOT}examples/rename-enum-value.yaml`;

interface Order {
  id: number;
  status: string | null;
  payment_state: string | null;
}

// Every status spelled many ways, payments in every state (NULL included).
const STATUSES = ['canceled', 'cancelled', 'Canceled', 'shipped', 'canceled ', null];
const PAYMENTS = ['captured', 'refunded', null, 'Captured'];
const SEEDED: Order[] = Array.from({ length: 60 }, (_, i) => ({
  id: i + 1,
  status: STATUSES[i % STATUSES.length] as string | null,
  payment_state: PAYMENTS[Math.floor(i / STATUSES.length) % PAYMENTS.length] as string | null,
}));

function seed(): string {
  const db = tmp().file('orders.db');
  const values = SEEDED.map((o) => `(${o.id}, ${sql(o.status)}, ${sql(o.payment_state)})`).join(',\n');
  createDb(db, `CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, payment_state TEXT);\nINSERT INTO orders VALUES ${values};`);
  return db;
}
const sql = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);

describe('example: rename one enum value (SQLite)', () => {
  it('passes its own datafix test cases', async () => {
    const r = await runCli(['test', `${REPO_ROOT}examples/rename-enum-value.test.yaml`], { cwd: tmp().path });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^2 passed, 0 failed$/m);
  });

  it('renames exactly the canceled rows without a captured payment; the others fail or are not read', async () => {
    const db = seed();
    const dir = tmp();
    // Computed from the seeded rows alone: `where` selects status = 'canceled' (BINARY: not
    // 'Canceled', not 'canceled '); the fail rule takes payment_state = 'captured' (not 'Captured').
    const selected = SEEDED.filter((o) => o.status === 'canceled');
    const failed = selected.filter((o) => o.payment_state === 'captured');
    const expected = SEEDED.map((o) => (o.status === 'canceled' && o.payment_state !== 'captured' ? { ...o, status: 'cancelled' } : o));
    expect(failed.length).toBeGreaterThan(0);

    const planFile = dir.file('rename.plan.jsonl');
    const planned = await runCli(['plan', FIX, '--out', planFile, '--json'], { cwd: dir.path, env: { ORDERS_DB_PATH: db } });
    expect(planned.code, planned.stderr).toBe(1);
    const lines = readFileSync(planFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'change')).toHaveLength(selected.length - failed.length);
    expect(lines.at(-1).summary).toMatchObject({ failed: failed.length, reasons: { payment_still_captured: failed.length } });

    const r = await runCli(['run', FIX, '--json'], { cwd: dir.path, env: { ORDERS_DB_PATH: db } });
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1) as string)).toMatchObject({
      total: selected.length,
      updated: selected.length - failed.length,
      skipped: 0,
      failed: failed.length,
      reasons: { payment_still_captured: failed.length },
    });
    expect(query<Order>(db, 'SELECT id, status, payment_state FROM orders ORDER BY id')).toEqual(expected);
  });
});
