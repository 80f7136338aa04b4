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
import { applySavedPlan, writeSavedPlan } from '../../src/safety/saved-plan.js';
import { useTempDirs } from '../helpers/tmp.js';
import { cancelledOrders, createOrdersDb, libraryFix, renameSpec } from './library-runs.js';
import { dumpSqlite } from './support.js';

const tmp = useTempDirs();

afterEach(() => {
  vi.restoreAllMocks();
});

it('a journal that cannot take a batch’s before-images (disk full) stops apply with DF704 before any of the batch is written', async () => {
  const dir = tmp();
  const db = dir.file('orders.db');
  createOrdersDb(db, cancelledOrders(4));
  const fix = libraryFix(dir, db, renameSpec(2));
  const plan = loadPlan(fix.spec, { env: fix.env });
  const out = dir.file('orders.plan.jsonl');
  expect(await writeSavedPlan(plan, fix.spec, out, {})).toMatchObject({ total: 4, updated: 4 });
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
  expect(dumpSqlite(db)).toEqual(before);
});
