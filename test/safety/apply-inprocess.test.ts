/**
 * `applySavedPlan` in the test process, against a real SQLite file: the before-images of a batch
 * reach the journal before any write of that batch is sent, so a journal that cannot take them
 * (disk full) stops the apply with nothing of the batch written. Expected rows come from the data
 * seeded here.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { loadPlan } from '../../src/api.js';
import { DatafixError } from '../../src/errors.js';
import { journalFs } from '../../src/safety/journal.js';
import type { TargetLock } from '../../src/safety/lock.js';
import { applySavedPlan, writeSavedPlan } from '../../src/safety/saved-plan.js';
import { useTempDirs } from '../helpers/tmp.js';
import { cancelledOrders, createOrdersDb, libraryFix, rejectionOf, renameSpec, takeLockOver } from './library-runs.js';
import { dumpSqlite, sqliteAll } from './support.js';

const tmp = useTempDirs();

afterEach(() => {
  vi.restoreAllMocks();
});

/** Four `canceled` orders, the rename fix two a page, and its saved plan (all four renamed). */
async function savedOrdersPlan() {
  const dir = tmp();
  const db = dir.file('orders.db');
  createOrdersDb(db, cancelledOrders(4));
  const fix = libraryFix(dir, db, renameSpec(2));
  const plan = loadPlan(fix.spec, { env: fix.env });
  const out = dir.file('orders.plan.jsonl');
  expect(await writeSavedPlan(plan, fix.spec, out, {})).toMatchObject({ total: 4, updated: 4 });
  return { dir, db, fix, plan, out };
}

it('a journal that cannot take a batch’s before-images (disk full) stops apply with DF704 before any of the batch is written', async () => {
  const { dir, db, plan, out } = await savedOrdersPlan();
  const before = dumpSqlite(db);
  // The journal's header goes down whole; the first batch's line finds the disk full.
  const { writeSync } = journalFs;
  let appends = 0;
  vi.spyOn(journalFs, 'writeSync').mockImplementation(((...args: Parameters<typeof writeSync>) => {
    if (++appends > 1) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return (writeSync as (...a: Parameters<typeof writeSync>) => number)(...args);
  }) as typeof writeSync);
  const err = await applySavedPlan(out, {
    dryRun: false,
    cwd: dir.path,
    currentTarget: plan.target,
    currentChecksum: plan.specChecksum,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatafixError);
  expect((err as DatafixError).code).toBe('DF704');
  // An apply is continued by applying the plan again: `apply` takes no --resume.
  expect((err as DatafixError).message).toContain('Free space (or raise the limit), then apply the plan again or undo with: datafix undo ');
  expect((err as DatafixError).message).not.toContain('--resume');
  expect(dumpSqlite(db)).toEqual(before);
});

it('an apply whose lock another process took over (unlock --force, then a run) stops before its next batch (DF713)', async () => {
  const { dir, db, fix, plan, out } = await savedOrdersPlan();
  let other: TargetLock | undefined;
  const err = await rejectionOf(
    applySavedPlan(out, {
      dryRun: false,
      cwd: dir.path,
      currentTarget: plan.target,
      currentChecksum: plan.specChecksum,
      batchSize: 2,
      onEvent: () => {
        if (other) return;
        // After the first batch: the lock is cleared by force and another process's run takes it.
        other = takeLockOver(plan.target, fix.spec);
      },
    }),
  );
  other?.release();
  expect(err).toBeInstanceOf(DatafixError);
  expect((err as DatafixError).code).toBe('DF713');
  // The first batch only: orders 3 and 4 keep the spelling the plan would have changed.
  expect(sqliteAll<{ id: number; status: string }>(db, 'SELECT id, status FROM orders ORDER BY id')).toEqual([
    { id: 1, status: 'cancelled' },
    { id: 2, status: 'cancelled' },
    { id: 3, status: 'canceled' },
    { id: 4, status: 'canceled' },
  ]);
});
