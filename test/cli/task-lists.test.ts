/**
 * `plan` and `apply` in a terminal (a real pseudo-terminal from util-linux `script`) draw the same
 * listr2 task output as `run`: loading, connecting and the records with their counts for `plan`;
 * the plan's records with their counts for `apply`, the first record lines above the list. Each
 * ends ✔ with what it did.
 */
import { copyFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { example } from '../examples/support.js';
import { runCli } from '../helpers/cli.js';
import { HAS_SCRIPT, inTerminal, NO_SCRIPT } from '../helpers/terminal.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createGeneratedVeo3Db, generationIds, SYNC_FIX, show, waitFor } from '../safety/support.js';
import { createDb } from '../sqlite/fixtures.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
const ROWS = 400;
let template: string;
let updatable: string[];
let expected: Map<string, string | null>;

beforeAll(() => {
  template = shared().file('template.db');
  ({ updatable, expected } = createGeneratedVeo3Db(template, ROWS));
});

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
});

it('plan and apply show a task list in a terminal, each ending ✔ with its counts', async () => {
  const dir = tmp();
  const db = dir.file('veo3.db');
  copyFileSync(template, db);
  const env = { VEO3_DB_PATH: db };
  const out = dir.file('sync.plan.jsonl');

  const planned = inTerminal(['plan', SYNC_FIX, '--out', out], { cwd: dir.path, env });
  const p = await planned.done;
  const planScreen = planned.screen();
  expect(p.code, planScreen).toBe(0);
  expect(planScreen).toContain('✔ Loaded sync-media-generation-ids: 0 lookup(s), 1 skip rule(s)');
  expect(planScreen).toContain(`✔ Connected to sqlite ${db}`);
  // Every record the fix reads: those it updates and those it skips (the summary's total).
  expect(planScreen).toMatch(/✔ Processed (\d+) record\(s\) in /);
  const read = Number(/✔ Processed (\d+) record\(s\)/.exec(planScreen)?.[1]);
  expect(planScreen).toMatch(new RegExp(`\\n {2}total +${read}\\n {2}updated +${updatable.length} \\(would be updated\\)`));
  expect(planScreen).toContain(`plan written to ${out}: ${updatable.length} change(s).`);

  const applied = inTerminal(['apply', out, '--yes'], { cwd: dir.path, env });
  const a = await applied.done;
  const screen = applied.screen();
  expect(a.code, screen).toBe(0);
  expect(screen).toMatch(new RegExp(`✔ Applied ${updatable.length} record\\(s\\) of ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} in `));
  // The counts as they were last drawn (redraws are spaced, so not always the very last record).
  expect(screen).toMatch(new RegExp(`\\d+ of ${updatable.length} \\(\\d+%\\) · \\d+ applied · 0 drifted · 0 failed`));
  expect(screen.match(/^~ applied /gm)).toHaveLength(20);
  const ids = generationIds(db);
  for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);

  // undo of the apply's journal: the check before the question and the undo itself are task
  // lists with counts, not a blank screen.
  const journal = /journal (\S+\.journal\.jsonl)/.exec(screen)?.[1] as string;
  const undone = inTerminal(['undo', journal], { cwd: dir.path, env });
  await waitFor('the question', () => undone.screen().includes('[y/N]'), { timeoutMs: 60_000 });
  undone.press('y\r');
  const u = await undone.done;
  const undoScreen = undone.screen();
  expect(u.code, undoScreen).toBe(0);
  expect(undoScreen).toContain(`✔ Checked ${updatable.length} journaled write(s)`);
  expect(undoScreen).toContain(`✔ Undid ${updatable.length} journaled write(s)`);
  expect(undoScreen).toMatch(new RegExp(`\\d+ of ${updatable.length} \\(\\d+%\\) · \\d+ restored · 0 conflict\\(s\\) · 0 failed`));
  for (const [id] of expected)
    expect(generationIds(db).get(id)?.mgid ?? null, id).toBe(template ? (generationIds(template).get(id)?.mgid ?? null) : null);

  // Without a terminal neither draws a list: the summary alone.
  const plain = await runCli(['plan', SYNC_FIX, '--out', dir.file('again.plan.jsonl')], { cwd: dir.path, env });
  expect(plain.code, show(plain)).toBe(0);
  expect(plain.stdout + plain.stderr).not.toContain('✔');
});

it('a fix with fail rules says how many it has when it loads', async () => {
  const dir = tmp();
  const db = dir.file('shop.db');
  createDb(
    db,
    "CREATE TABLE products (id INTEGER PRIMARY KEY, price_text TEXT, price REAL); INSERT INTO products VALUES (1, '7', NULL), (2, 'n/a', NULL)",
  );
  const run = inTerminal(['run', example('parse-numeric-strings.yaml'), '--dry-run'], { cwd: dir.path, env: { SHOP_DB_PATH: db } });
  const r = await run.done;
  const screen = run.screen();
  expect(r.code, screen).toBe(1);
  expect(screen).toContain('Loaded parse-numeric-strings: 0 lookup(s), 0 skip rule(s), 1 fail rule(s)');
});
