/**
 * Saved plans in the test process: what `writeSavedPlan` puts in a plan file and what it leaves at
 * `--out` and `<out>.partial` when it finishes, fails or is stopped; which files count as a plan;
 * and what `applySavedPlan` writes, reports and journals (records applied, drifted since the plan
 * and why, failed), with every refusal of a plan that was cut, edited, or made for another spec or
 * database, the database left as it was. Expected values come from the rows seeded here.
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { loadPlan } from '../../src/api.js';
import { lockHolder, TargetLock } from '../../src/safety/lock.js';
import {
  type ApplyEvent,
  type ApplyOptions,
  applySavedPlan,
  isOccupied,
  isPlanFile,
  PlanInterrupted,
  planScope,
  readPlanHeader,
  writeSavedPlan,
} from '../../src/safety/saved-plan.js';
import { undoJournal } from '../../src/safety/undo.js';
import { startCountingProxy } from '../helpers/proxy.js';
import { type TempDir, useTempDirs } from '../helpers/tmp.js';
import { createDb } from '../sqlite/fixtures.js';
import { dynamoFix, refusal, useDynaliteTables } from './library-runs.js';
import {
  dumpSqlite,
  journalResults,
  journalWrites,
  jsonLines,
  PACKAGE_VERSION,
  scanRaw,
  sealedJournalText,
  sqliteAll,
  sqliteExec,
  whileWriteLocked,
} from './support.js';

const tmp = useTempDirs();
const NOW = '2030-01-01T00:00:00.000Z';

/** One row of `customers`. */
interface Customer {
  readonly id: number;
  readonly status: string;
  readonly tier: string | null;
  readonly updated_at: string;
}

const SEEDED: readonly Customer[] = [
  { id: 1, status: 'trial', tier: null, updated_at: 't0' },
  { id: 2, status: 'trial', tier: 'silver', updated_at: 't0' },
  { id: 3, status: 'active', tier: null, updated_at: 't0' },
  { id: 4, status: 'trial', tier: null, updated_at: 't0' },
];

/** A fix named `name` reading every row of `customers` as `c`; `rest` holds its rules and its write. */
const customersFix = (name: string, rest: string) =>
  `name: ${name}\ntarget: { sqlite: { path: "\${DB}" } }\nsource: { table: customers, as: c }\n${rest}`;

/** Sets every customer not yet active `active` (overwritten) and tier `bronze` where it has none, stamping `updated_at`. */
const ACTIVATE = customersFix(
  'activate',
  `skip:
  - { reason: already_active, when: { equals: { c.status: active } } }
update:
  table: customers
  key: { id: "{{ c.id }}" }
  set: { status: active, tier: bronze }
  overwrite: [status]
  touch: { updated_at: "{{ now }}" }
`,
);

/** Deletes every trial customer. */
const RETIRE = customersFix(
  'retire',
  `skip:
  - { reason: not_trial, when: { not: { equals: { c.status: trial } } } }
delete:
  key: { id: "{{ c.id }}" }
`,
);

/** Copies every customer's id and status into \`archive\`, marked as copied from \`customers\`. */
const ARCHIVE = customersFix(
  'archive',
  `create:
  table: archive
  key: { id: "{{ c.id }}" }
  set: { status: "{{ c.status }}", origin: customers }
`,
);

const ARCHIVE_TABLE = 'CREATE TABLE archive (id INTEGER PRIMARY KEY, status TEXT, origin TEXT)';

/** Clears the tier of every customer that has one (and fills a missing status, which none lacks). */
const UNTIER = customersFix(
  'untier',
  `update:
  table: customers
  key: { id: "{{ c.id }}" }
  remove: [tier]
  set: { status: unknown }
`,
);

/** `customers` as ACTIVATE leaves the seeded rows. */
const ACTIVATED: readonly Customer[] = [
  { id: 1, status: 'active', tier: 'bronze', updated_at: NOW },
  { id: 2, status: 'active', tier: 'silver', updated_at: NOW },
  { id: 3, status: 'active', tier: null, updated_at: 't0' },
  { id: 4, status: 'active', tier: 'bronze', updated_at: NOW },
];

interface Fixture {
  readonly dir: TempDir;
  readonly db: string;
  readonly spec: string;
  readonly env: Readonly<Record<string, string>>;
  /** Where the plan is written. */
  readonly out: string;
}

function customersDb(path: string, rows: readonly Customer[]): void {
  const values = rows.map((r) => `(${r.id}, '${r.status}', ${r.tier === null ? 'NULL' : `'${r.tier}'`}, '${r.updated_at}')`);
  createDb(
    path,
    `CREATE TABLE customers (id INTEGER PRIMARY KEY, status TEXT, tier TEXT, updated_at TEXT); INSERT INTO customers VALUES ${values.join(',')};`,
  );
}

function fixture(specText = ACTIVATE, rows: readonly Customer[] = SEEDED): Fixture {
  const dir = tmp();
  const db = dir.file('shop.db');
  customersDb(db, rows);
  return { dir, db, spec: dir.write('fix.yaml', specText), env: { DB: db }, out: dir.file('activate.plan.jsonl') };
}

const customers = (db: string) => sqliteAll<Customer>(db, 'SELECT * FROM customers ORDER BY id');

/** `datafix plan`, in the test process, at the fixed time NOW. */
function makePlan(f: Fixture, options: Parameters<typeof writeSavedPlan>[3] = {}) {
  return writeSavedPlan(loadPlan(f.spec, { env: f.env }), f.spec, f.out, { now: new Date(NOW), ...options });
}

/** The options `datafix apply` gives, for the spec as it is now. */
function applyOptions(f: Fixture, options: Partial<ApplyOptions> = {}): ApplyOptions {
  const current = loadPlan(f.spec, { env: f.env });
  return {
    dryRun: false,
    cwd: f.dir.path,
    currentTarget: current.target,
    currentChecksum: current.specChecksum,
    scope: planScope(current),
    ...options,
  };
}

/** `datafix apply` of `f`'s plan, collecting every event and note. */
async function apply(f: Fixture, options: Partial<ApplyOptions> = {}, plan = f.out) {
  const events: ApplyEvent[] = [];
  const notes: string[] = [];
  const summary = await applySavedPlan(plan, {
    ...applyOptions(f, options),
    onEvent: (e) => {
      events.push(e);
    },
    onNote: (n) => notes.push(n),
  });
  return { summary, events, notes };
}

/** The lock files next to the database and the journals under `.datafix/`: what a refused apply must not leave. */
function leftBehind(f: Fixture): string[] {
  const journals = existsSync(f.dir.file('.datafix', 'runs')) ? readdirSync(f.dir.file('.datafix', 'runs')) : [];
  return [...readdirSync(f.dir.path).filter((n) => n.endsWith('.lock')), ...journals.filter((n) => n.includes('journal'))];
}

/** The summary of a live apply of ACTIVATE's plan on SEEDED that applied every change. */
const wholeApply = (f: Fixture) => ({
  plan: f.out,
  fix: 'activate',
  dryRun: false,
  total: 3,
  applied: 3,
  drifted: 0,
  failed: 0,
  durationMs: expect.any(Number),
});
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const key = (id: number) => ({ id });
const applied = (id: number): ApplyEvent => ({ outcome: 'applied', table: 'customers', key: key(id) });
const drifted = (id: number, message: string): ApplyEvent => ({ outcome: 'drifted', table: 'customers', key: key(id), message });

describe('writeSavedPlan: the plan file', () => {
  it('holds the header, one change per record the fix would write with every field before and after, and the summary; the database is untouched', async () => {
    const f = fixture();
    const out = f.dir.file('plans', 'june', 'activate.plan.jsonl');
    const before = dumpSqlite(f.db);
    const seen: string[] = [];
    const started = new Date().toISOString();
    const summary = await makePlan(
      { ...f, out },
      {
        onEvent: (e) => {
          if (e.type === 'record') seen.push(`${e.outcome} ${JSON.stringify(e.key)}`);
        },
      },
    );
    const ended = new Date().toISOString();
    const expectedSummary = {
      fix: 'activate',
      dryRun: true,
      total: 4,
      updated: 3,
      skipped: 1,
      failed: 0,
      reasons: { already_active: 1 },
      durationMs: expect.any(Number),
    };
    expect(summary).toEqual(expectedSummary);
    // The caller's own listener still hears every record.
    expect(seen).toEqual(['updated {"id":1}', 'updated {"id":2}', 'skipped {"id":3}', 'updated {"id":4}']);

    const lines = jsonLines(out);
    expect(lines).toHaveLength(5);
    const { sum: _h, ...header } = lines[0] as Record<string, unknown>;
    expect(header).toEqual({
      type: 'plan',
      format: 2,
      fix: 'activate',
      specFile: f.spec,
      specChecksum: sha256(readFileSync(f.spec, 'utf8')),
      target: { backend: 'sqlite', path: f.db, busyTimeoutMs: expect.any(Number) },
      targetIdentity: `sqlite:${realpathSync(f.db)}`,
      createdAt: expect.any(String),
      datafixVersion: PACKAGE_VERSION,
    });
    const createdAt = header.createdAt as string;
    expect(createdAt >= started && createdAt <= ended).toBe(true);
    const status = { name: 'status', before: 'trial', after: 'active', guard: 'unchanged' };
    const stamp = { name: 'updated_at', before: 't0', after: NOW, guard: 'unchanged' };
    const tier = { name: 'tier', before: null, after: 'bronze', guard: 'absent' };
    expect(lines.slice(1, 4).map(({ sum: _s, ...l }) => l)).toEqual([
      { type: 'change', table: 'customers', key: key(1), source: key(1), fields: [status, tier, stamp] },
      { type: 'change', table: 'customers', key: key(2), source: key(2), fields: [status, stamp] },
      { type: 'change', table: 'customers', key: key(4), source: key(4), fields: [status, tier, stamp] },
    ]);
    const { sum: _e, ...end } = lines[4] as Record<string, unknown>;
    expect(end).toEqual({ type: 'summary', summary: expectedSummary });
    // Each line's checksum chains from the one before, as a tool that checks plans computes it.
    expect(readFileSync(out, 'utf8')).toBe(sealedJournalText(lines));
    expect(readdirSync(f.dir.file('plans', 'june'))).toEqual(['activate.plan.jsonl']);
    expect(dumpSqlite(f.db)).toEqual(before);
  });

  it("a delete fix's changes carry their action and the whole record as it is, each field going", async () => {
    const f = fixture(RETIRE);
    await makePlan(f);
    expect(
      jsonLines(f.out)
        .filter((l) => l.type === 'change')
        .map(({ sum: _s, ...l }) => l),
    ).toEqual(
      SEEDED.filter((c) => c.status === 'trial').map((c) => ({
        type: 'change',
        action: 'delete',
        table: 'customers',
        key: key(c.id),
        source: key(c.id),
        fields: Object.entries(c).map(([name, before]) => ({ name, before, after: { $absent: true }, guard: 'unchanged' })),
      })),
    );
  });

  it('replaces an earlier plan at --out, and an unfinished plan left at <out>.partial', async () => {
    const f = fixture();
    await makePlan(f);
    const first = readFileSync(f.out, 'utf8');
    // An unfinished plan: its header and part of a change, as a killed `plan` leaves it.
    writeFileSync(`${f.out}.partial`, first.slice(0, first.indexOf('\n') + 20));
    sqliteExec(f.db, "UPDATE customers SET status = 'active' WHERE id = 1");
    await makePlan(f);
    expect(existsSync(`${f.out}.partial`)).toBe(false);
    expect(
      jsonLines(f.out)
        .filter((l) => l.type === 'change')
        .map((l) => l.key),
    ).toEqual([key(2), key(4)]);
  });

  it('never overwrites what sits at <out>.partial unless it is an unfinished plan: a symlink to the database, a note (DF741)', async () => {
    const f = fixture();
    const db = readFileSync(f.db);
    symlinkSync(f.db, `${f.out}.partial`);
    const link = await refusal(makePlan(f));
    expect(link.code).toBe('DF741');
    expect(link.message).toBe(
      `cannot write the plan ${f.out}: ${f.out}.partial exists and is not an unfinished datafix plan, so it is never overwritten. Move it away, or give --out another file`,
    );
    expect(readFileSync(f.db)).toEqual(db);
    rmSync(`${f.out}.partial`);
    writeFileSync(`${f.out}.partial`, 'my notes\n');
    expect((await refusal(makePlan(f))).code).toBe('DF741');
    expect(readFileSync(`${f.out}.partial`, 'utf8')).toBe('my notes\n');
    expect(existsSync(f.out)).toBe(false);
  });

  it('stopped by its signal: PlanInterrupted, no plan saved, the earlier plan kept; a process exiting mid-plan removes the unfinished file', async () => {
    const f = fixture();
    writeFileSync(f.out, 'the earlier plan\n');
    const exitListeners = process.listeners('exit');
    const stop = new AbortController();
    let removedOnExit: boolean | undefined;
    const err = await makePlan(f, {
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type !== 'record' || stop.signal.aborted) return;
        // What `process.exit` would run now: the unfinished plan goes with the process.
        const added = process.listeners('exit').filter((l) => !exitListeners.includes(l));
        expect(added).toHaveLength(1);
        expect(existsSync(`${f.out}.partial`)).toBe(true);
        (added[0] as () => void)();
        removedOnExit = !existsSync(`${f.out}.partial`);
        stop.abort();
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PlanInterrupted);
    expect((err as Error).message).toBe('the plan was interrupted; no plan was saved');
    expect(removedOnExit).toBe(true);
    expect(readFileSync(f.out, 'utf8')).toBe('the earlier plan\n');
    expect(existsSync(`${f.out}.partial`)).toBe(false);
    expect(process.listeners('exit')).toEqual(exitListeners);
  });

  it('a dry run that fails leaves no plan and no unfinished file, and the earlier plan as it was', async () => {
    const f = fixture();
    writeFileSync(f.out, 'the earlier plan\n');
    const plan = loadPlan(f.spec, { env: f.env });
    sqliteExec(f.db, 'DROP TABLE customers');
    await expect(writeSavedPlan(plan, f.spec, f.out, {})).rejects.toThrow(/customers/);
    expect(readFileSync(f.out, 'utf8')).toBe('the earlier plan\n');
    expect(existsSync(`${f.out}.partial`)).toBe(false);
  });
});

describe('isPlanFile and isOccupied: what counts as a plan, and what is in the way', () => {
  it('a plan file and an unfinished plan are plans; a symlink to one, a directory, a FIFO, other JSON, format 1, text and a header without its newline are not', async () => {
    const f = fixture();
    await makePlan(f);
    const text = readFileSync(f.out, 'utf8');
    const header = JSON.parse(text.slice(0, text.indexOf('\n'))) as Record<string, unknown>;
    const write = (name: string, body: string) => f.dir.write(name, body);
    expect(isPlanFile(f.out)).toBe(true);
    expect(isPlanFile(write('cut.jsonl', text.slice(0, text.indexOf('\n') + 5)))).toBe(true);
    const link = f.dir.file('link.jsonl');
    symlinkSync(f.out, link);
    const fifo = f.dir.file('fifo.jsonl');
    spawnSync('mkfifo', [fifo]);
    expect(existsSync(fifo)).toBe(true);
    mkdirSync(f.dir.file('folder'));
    const notPlans = [
      link,
      fifo,
      f.dir.file('folder'),
      f.dir.file('missing.jsonl'),
      f.db,
      f.spec,
      write('journal.jsonl', `${JSON.stringify({ ...header, type: 'journal' })}\n`),
      write('format1.jsonl', `${JSON.stringify({ ...header, format: 1 })}\n`),
      write('format3.jsonl', `${JSON.stringify({ ...header, format: 3 })}\n`),
      write('no-newline.jsonl', JSON.stringify(header)),
      write('null.jsonl', 'null\n'),
      // A header line longer than the 64 KiB read is cut before its newline.
      write('long.jsonl', `${JSON.stringify({ ...header, fix: 'x'.repeat(1 << 16) })}\n`),
    ];
    for (const p of notPlans) expect(isPlanFile(p), p).toBe(false);
  });

  it('isOccupied sees a file, a directory and a dangling symlink, and nothing where nothing is', () => {
    const dir = tmp();
    symlinkSync(dir.file('gone'), dir.file('dangling'));
    expect(isOccupied(dir.file('dangling'))).toBe(true);
    expect(isOccupied(dir.write('f', ''))).toBe(true);
    expect(isOccupied(dir.path)).toBe(true);
    expect(isOccupied(dir.file('nothing'))).toBe(false);
  });
});

describe('readPlanHeader', () => {
  it('returns the header of a plan; refuses a file whose first line is no plan header of format 2, or no JSON, or that cannot be read (DF730)', async () => {
    const f = fixture();
    await makePlan(f);
    expect(await readPlanHeader(f.out)).toMatchObject({ type: 'plan', format: 2, fix: 'activate', specFile: f.spec });
    const [first, ...rest] = jsonLines(f.out) as [Record<string, unknown>, ...Record<string, unknown>[]];
    const { target: _t, ...noTarget } = first;
    const notPlan = (name: string) => `${f.dir.file(name)} is not a datafix plan (formats 2); make one with datafix plan SPEC --out FILE`;
    const cases: [string, string, string][] = [
      ['empty.jsonl', '', notPlan('empty.jsonl')],
      ['journal.jsonl', sealedJournalText([{ ...first, type: 'journal' }, ...rest]), notPlan('journal.jsonl')],
      ['format1.jsonl', sealedJournalText([{ ...first, format: 1 }, ...rest]), notPlan('format1.jsonl')],
      ['spec.jsonl', sealedJournalText([{ ...first, specFile: 7 }, ...rest]), notPlan('spec.jsonl')],
      ['sum.jsonl', sealedJournalText([{ ...first, specChecksum: null }, ...rest]), notPlan('sum.jsonl')],
      ['target.jsonl', sealedJournalText([noTarget, ...rest]), notPlan('target.jsonl')],
      [
        'text.jsonl',
        'plan: yes\n',
        `cannot read plan ${f.dir.file('text.jsonl')}: ${f.dir.file('text.jsonl')}:1 is not valid JSON; the plan is damaged, make a new one with datafix plan`,
      ],
    ];
    for (const [name, text, message] of cases) {
      const err = await refusal(readPlanHeader(f.dir.write(name, text)));
      expect([err.code, err.message], name).toEqual(['DF730', message]);
    }
    const missing = await refusal(readPlanHeader(f.dir.file('missing.jsonl')));
    expect(missing.code).toBe('DF730');
    expect(missing.message).toMatch(new RegExp(`^cannot read plan ${f.dir.file('missing.jsonl')}: .*ENOENT`));
  });
});

describe('applySavedPlan on SQLite', () => {
  it('writes every planned change, reports each record, journals the apply (undo restores it) and leaves no lock', async () => {
    const f = fixture();
    await makePlan(f);
    const order: string[] = [];
    const notes: string[] = [];
    const t0 = performance.now();
    const summary = await applySavedPlan(f.out, {
      ...applyOptions(f),
      onTotal: (n) => order.push(`total ${n}`),
      onEvent: (e) => {
        order.push(`${e.outcome} ${e.table} ${JSON.stringify(e.key)}${e.message ? ` ${e.message}` : ''}`);
      },
      onNote: (n) => notes.push(n),
    });
    const took = performance.now() - t0;
    expect(summary).toEqual(wholeApply(f));
    expect(summary.durationMs).toBeLessThanOrEqual(Math.ceil(took));
    expect(order).toEqual(['total 3', 'applied customers {"id":1}', 'applied customers {"id":2}', 'applied customers {"id":4}']);
    expect(customers(f.db)).toEqual(ACTIVATED);
    expect(readdirSync(f.dir.path).filter((n) => n.endsWith('.lock'))).toEqual([]);

    expect(notes).toHaveLength(1);
    const journal = /^journal (\S+) \(undo with: datafix undo (\S+)\)$/.exec(notes[0] as string);
    expect(journal?.[1]).toBe(journal?.[2]);
    expect(journal?.[1]?.startsWith(f.dir.file('.datafix', 'runs'))).toBe(true);
    expect(journal?.[1]).toMatch(/--apply.*\.journal\.jsonl$/);
    const end = jsonLines(journal?.[1] as string).at(-1) as { summary: { durationMs: number } };
    expect(end.summary.durationMs).toBeLessThanOrEqual(Math.ceil(took));
    expect(end).toMatchObject({
      type: 'end',
      interrupted: false,
      summary: { fix: 'activate', dryRun: false, total: 3, updated: 3, skipped: 0, failed: 0, reasons: {} },
    });
    expect(await undoJournal(journal?.[1] as string, { dryRun: false })).toMatchObject({ total: 3, restored: 3 });
    expect(customers(f.db)).toEqual(SEEDED);
  });

  it('writes to --journal when given one', async () => {
    const f = fixture();
    await makePlan(f);
    const path = f.dir.file('mine.journal.jsonl');
    const { notes } = await apply(f, { journalPath: path });
    expect(notes).toEqual([`journal ${path} (undo with: datafix undo ${path})`]);
    expect(jsonLines(path)[0]).toMatchObject({ type: 'header', fix: 'activate', specFile: f.spec });
  });

  it('leaves every record that drifted since the plan as it is, and says why; the dry run predicts each outcome and writes nothing', async () => {
    const rows = [...SEEDED, { id: 5, status: 'trial', tier: null, updated_at: 't0' }];
    const f = fixture(ACTIVATE, rows);
    await makePlan(f);
    // 1 made active by someone else (not stamped by this plan); 2 already holds what the plan
    // writes; 4 deleted; 5 untouched.
    sqliteExec(f.db, "UPDATE customers SET status = 'active' WHERE id = 1");
    sqliteExec(f.db, "UPDATE customers SET status = 'active', updated_at = ? WHERE id = 2", NOW);
    sqliteExec(f.db, 'DELETE FROM customers WHERE id = 4');
    const handEdited = customers(f.db);
    const expectedEvents = [
      drifted(1, 'changed since the plan was made'),
      drifted(2, 'already holds the planned values (this plan was applied before)'),
      drifted(4, 'no longer exists'),
      applied(5),
    ];
    const before = dumpSqlite(f.db);
    const dry = await apply(f, { dryRun: true });
    expect(dry.events).toEqual(expectedEvents);
    expect(dry.summary).toEqual({
      plan: f.out,
      fix: 'activate',
      dryRun: true,
      total: 4,
      applied: 1,
      drifted: 3,
      failed: 0,
      durationMs: expect.any(Number),
    });
    expect(dry.notes).toEqual([]);
    expect(dumpSqlite(f.db)).toEqual(before);
    expect(leftBehind(f)).toEqual([]);

    const live = await apply(f, { batchSize: 3 });
    expect(live.events).toEqual(expectedEvents);
    expect(live.summary).toMatchObject({ dryRun: false, total: 4, applied: 1, drifted: 3, failed: 0 });
    expect(customers(f.db)).toEqual([
      ...handEdited.filter((c) => c.id !== 5),
      { id: 5, status: 'active', tier: 'bronze', updated_at: NOW },
    ]);
    const journal = /^journal (\S+)/.exec(live.notes[0] as string)?.[1] as string;
    expect(jsonLines(journal).at(-1)).toMatchObject({ summary: { total: 4, updated: 1, skipped: 3, reasons: { drifted: 3 } } });
  });

  it('a write the database refuses is reported failed with its message; the rest are applied', async () => {
    const f = fixture();
    await makePlan(f);
    sqliteExec(
      f.db,
      "CREATE TRIGGER frozen BEFORE UPDATE ON customers WHEN OLD.id = 2 BEGIN SELECT RAISE(ABORT, 'customer 2 is frozen'); END",
    );
    const { summary, events } = await apply(f);
    expect(summary).toMatchObject({ total: 3, applied: 2, drifted: 0, failed: 1 });
    expect(events.map((e) => [e.outcome, e.key.id])).toEqual([
      ['applied', 1],
      ['failed', 2],
      ['applied', 4],
    ]);
    expect(events[1]?.message).toContain('customer 2 is frozen');
    expect(customers(f.db).find((c) => c.id === 2)).toEqual(SEEDED[1]);
  });

  it('stopped between batches: the batches sent are applied and journaled, the rest untouched; interrupted with the planned count', async () => {
    const more: Customer[] = [5, 6].map((id) => ({ id, status: 'trial', tier: null, updated_at: 't0' }));
    const f = fixture(ACTIVATE, [...SEEDED, ...more]);
    await makePlan(f);
    const stop = new AbortController();
    const events: ApplyEvent[] = [];
    const summary = await applySavedPlan(f.out, {
      ...applyOptions(f, { batchSize: 2, signal: stop.signal }),
      onEvent: (e) => {
        events.push(e);
        stop.abort();
      },
    });
    expect(summary).toEqual({
      plan: f.out,
      fix: 'activate',
      dryRun: false,
      total: 2,
      applied: 2,
      drifted: 0,
      failed: 0,
      durationMs: expect.any(Number),
      interrupted: true,
      planned: 5,
    });
    expect(events).toEqual([applied(1), applied(2)]);
    expect(customers(f.db)).toEqual([ACTIVATED[0], ACTIVATED[1], SEEDED[2], SEEDED[3], ...more]);
    const runs = f.dir.file('.datafix', 'runs');
    const journal = readdirSync(runs).find((n) => n.endsWith('.journal.jsonl')) as string;
    expect(jsonLines(`${runs}/${journal}`).at(-1)).toMatchObject({ type: 'end', interrupted: true, summary: { total: 2, updated: 2 } });
    expect(readdirSync(f.dir.path).filter((n) => n.endsWith('.lock'))).toEqual([]);

    // Applied again, it finishes the rest; the records already applied read as drifted.
    const again = await apply(f);
    expect(again.summary).toMatchObject({ total: 5, applied: 3, drifted: 2 });
    expect(again.summary.interrupted).toBeUndefined();
    expect(customers(f.db)).toEqual([...ACTIVATED, ...more.map((c) => ({ ...c, status: 'active', tier: 'bronze', updated_at: NOW }))]);
  });

  it('stopped before it starts: nothing written, nothing counted; stopped after the last batch: not interrupted', async () => {
    const f = fixture();
    await makePlan(f);
    const stop = new AbortController();
    stop.abort();
    const before = dumpSqlite(f.db);
    const { summary, events } = await apply(f, { signal: stop.signal });
    expect(summary).toMatchObject({ total: 0, applied: 0, interrupted: true, planned: 3 });
    expect(events).toEqual([]);
    expect(dumpSqlite(f.db)).toEqual(before);

    // The stop comes once every record is applied: the apply is whole.
    const late = new AbortController();
    const whole = await applySavedPlan(f.out, {
      ...applyOptions(f, { signal: late.signal }),
      onEvent: (e) => {
        if (e.key.id === 4) late.abort();
      },
    });
    expect(whole).toEqual(wholeApply(f));
    expect(customers(f.db)).toEqual(ACTIVATED);
  });

  it('runs without any listener (a library caller that only wants the summary)', async () => {
    const f = fixture();
    await makePlan(f);
    const { onEvent: _e, ...options } = applyOptions(f);
    expect(await applySavedPlan(f.out, options)).toEqual(wholeApply(f));
    expect(customers(f.db)).toEqual(ACTIVATED);
  });

  it('holds the target lock while it writes, as an apply; refused while another process holds it (DF710)', async () => {
    const f = fixture();
    await makePlan(f);
    const target = loadPlan(f.spec, { env: f.env }).target;
    const holders: unknown[] = [];
    await applySavedPlan(f.out, {
      ...applyOptions(f),
      onEvent: () => {
        holders.push(lockHolder(target).lease);
      },
    });
    expect(holders).toHaveLength(3);
    for (const h of holders) expect(h).toMatchObject({ pid: process.pid, fix: 'activate', spec: f.spec, purpose: 'apply' });
    expect(lockHolder(target)).toEqual({ state: 'none' });

    const g = fixture();
    await makePlan(g);
    const run = TargetLock.acquire(loadPlan(g.spec, { env: g.env }).target, { fix: 'activate', spec: g.spec, purpose: 'run' });
    try {
      const err = await refusal(apply(g));
      expect(err.code).toBe('DF710');
      expect(err.message).toContain(`another process is writing sqlite ${g.db}: process ${process.pid}`);
      expect(customers(g.db)).toEqual(SEEDED);
      // A dry run takes no lock, and still reports.
      expect((await apply(g, { dryRun: true })).summary).toMatchObject({ applied: 3 });
    } finally {
      run.release();
    }
  });

  it('checks where its journal goes before it opens the target: .datafix not a directory (DF740), --journal already there (DF701); a dry run needs neither', async () => {
    const f = fixture();
    await makePlan(f);
    writeFileSync(f.dir.file('.datafix'), 'not a directory\n');
    const before = dumpSqlite(f.db);
    const state = await refusal(apply(f), 'config');
    expect(state.code).toBe('DF740');
    expect(state.message).toMatch(new RegExp(`^cannot keep run state in ${f.dir.file('.datafix')}: `));
    expect((await apply(f, { dryRun: true })).summary).toMatchObject({ dryRun: true, applied: 3 });
    rmSync(f.dir.file('.datafix'));

    const journal = f.dir.write('kept.journal.jsonl', 'mine\n');
    const taken = await refusal(apply(f, { journalPath: journal }));
    expect([taken.code, taken.message]).toEqual([
      'DF701',
      `cannot create journal ${journal}: it already exists; journals are never overwritten. Give --journal a new file in a writable directory`,
    ]);
    expect(readFileSync(journal, 'utf8')).toBe('mine\n');
    expect(dumpSqlite(f.db)).toEqual(before);
    expect(leftBehind(f)).toEqual([]);
  });

  it('a planned key the database cannot look up fails that record alone, in the dry run and the live apply', async () => {
    const f = fixture();
    await makePlan(f);
    const lines = jsonLines(f.out).map(({ sum: _s, ...l }) => l);
    const bad = { ...(lines[2] as Record<string, unknown>), key: { id: { nested: 2 } } };
    const path = f.dir.write('bad-key.plan.jsonl', sealedJournalText([...lines.slice(0, 2), bad, ...lines.slice(3)]));
    const dry = await apply(f, { dryRun: true }, path);
    expect(dry.events).toEqual([
      applied(1),
      { outcome: 'failed', table: 'customers', key: { id: { nested: 2 } }, message: 'key column `id`: a map is not a single SQLite value' },
      applied(4),
    ]);
    const live = await apply(f, {}, path);
    // Live, the write of a key no row can have changes nothing (SQLite finds no such row).
    expect(live.events.map((e) => e.outcome)).toEqual(['applied', 'drifted', 'applied']);
    expect(live.summary).toMatchObject({ total: 3, applied: 2 });
    expect(customers(f.db)).toEqual([ACTIVATED[0], SEEDED[1], SEEDED[2], ACTIVATED[3]]);
  });

  it('stopped while another writer locks the database: the waiting batch is not counted, its writes stay journaled for undo to check', async () => {
    const f = fixture(ACTIVATE.replace('path: "${DB}"', 'path: "${DB}", busyTimeoutMs: 300'));
    await makePlan(f);
    const stop = new AbortController();
    const other = new Database(f.db);
    try {
      const summary = await applySavedPlan(f.out, {
        ...applyOptions(f, { batchSize: 1, signal: stop.signal }),
        onEvent: () => {
          // Ctrl-C while the next batch waits on the lock: its handler runs once the wait ends.
          other.exec('BEGIN EXCLUSIVE');
          setTimeout(() => stop.abort(), 0);
        },
      });
      expect(summary).toMatchObject({ total: 1, applied: 1, drifted: 0, failed: 0, interrupted: true, planned: 3 });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(customers(f.db)).toEqual([ACTIVATED[0], SEEDED[1], SEEDED[2], SEEDED[3]]);
    const runs = f.dir.file('.datafix', 'runs');
    const journal = join(runs, readdirSync(runs).find((n) => n.endsWith('.journal.jsonl')) as string);
    expect(journalWrites(journal).map((w) => w.key)).toEqual([key(1), key(2)]);
    expect(journalResults(journal)).toHaveLength(1);
  });

  it('without a stop signal, a database locked past its busy timeout stops the apply with DF411 and releases the lock', async () => {
    const f = fixture(ACTIVATE.replace('path: "${DB}"', 'path: "${DB}", busyTimeoutMs: 100'));
    await makePlan(f);
    const err = await whileWriteLocked(f.db, () => refusal(apply(f), 'connection'), { exclusive: true });
    expect(err.code).toBe('DF411');
    expect(customers(f.db)).toEqual(SEEDED);
    expect(readdirSync(f.dir.path).filter((n) => n.endsWith('.lock'))).toEqual([]);
  });

  it('a listener that asks to wait is awaited before the next batch is read', async () => {
    const f = fixture();
    await makePlan(f);
    const order: string[] = [];
    await applySavedPlan(f.out, {
      ...applyOptions(f, { batchSize: 2 }),
      onEvent: (e) => {
        order.push(`event ${e.key.id}`);
        if (e.key.id !== 2) return;
        return new Promise<void>((done) =>
          setTimeout(() => {
            order.push('room');
            done();
          }, 20),
        );
      },
    });
    expect(order).toEqual(['event 1', 'event 2', 'room', 'event 4']);
  });
});

describe('applySavedPlan of whole-record deletes and creates, and of removed fields', () => {
  it('deletes the planned records; one changed or deleted since is left and reported, in the dry run as in the live apply', async () => {
    const f = fixture(RETIRE);
    await makePlan(f);
    sqliteExec(f.db, "UPDATE customers SET tier = 'gold' WHERE id = 2");
    sqliteExec(f.db, 'DELETE FROM customers WHERE id = 4');
    const expected = [applied(1), drifted(2, 'changed since the plan was made'), drifted(4, 'no longer exists')];
    const before = dumpSqlite(f.db);
    const dry = await apply(f, { dryRun: true });
    expect(dry.events).toEqual(expected);
    expect(dumpSqlite(f.db)).toEqual(before);
    const live = await apply(f);
    expect(live.events).toEqual(expected);
    expect(live.summary).toMatchObject({ total: 3, applied: 1, drifted: 2, failed: 0 });
    expect(customers(f.db)).toEqual([{ ...SEEDED[1], tier: 'gold' }, SEEDED[2]]);
  });

  it('a record that gained a field since the plan is not deleted (the guard covers only the planned fields)', async () => {
    const f = fixture(RETIRE);
    await makePlan(f);
    sqliteExec(f.db, 'ALTER TABLE customers ADD COLUMN email TEXT');
    sqliteExec(f.db, 'ALTER TABLE customers ADD COLUMN phone TEXT');
    const gained = [1, 2, 4].map((id) => drifted(id, 'it gained email, phone since the plan was made'));
    const before = dumpSqlite(f.db);
    expect((await apply(f, { dryRun: true })).events).toEqual(gained);
    const live = await apply(f);
    expect(live.events).toEqual(gained);
    expect(live.summary).toMatchObject({ total: 3, applied: 0, drifted: 3 });
    expect(dumpSqlite(f.db)).toEqual(before);
  });

  it('creates the planned records; a key taken since is left, said to hold the planned record or another', async () => {
    const f = fixture(ARCHIVE);
    sqliteExec(f.db, ARCHIVE_TABLE);
    await makePlan(f);
    sqliteExec(f.db, "INSERT INTO archive VALUES (1, 'trial', 'customers'), (2, 'trial', 'elsewhere')");
    const table = (id: number, outcome: ApplyEvent['outcome'], message?: string) => ({
      outcome,
      table: 'archive',
      key: key(id),
      ...(message ? { message } : {}),
    });
    const expected = [
      table(1, 'drifted', 'already holds the planned record (this plan was applied before)'),
      table(2, 'drifted', 'a record with this key exists'),
      table(3, 'applied'),
      table(4, 'applied'),
    ];
    const before = dumpSqlite(f.db);
    expect((await apply(f, { dryRun: true })).events).toEqual(expected);
    expect(dumpSqlite(f.db)).toEqual(before);
    const live = await apply(f);
    expect(live.events).toEqual(expected);
    expect(sqliteAll(f.db, 'SELECT * FROM archive ORDER BY id')).toEqual([
      { id: 1, status: 'trial', origin: 'customers' },
      { id: 2, status: 'trial', origin: 'elsewhere' },
      { id: 3, status: 'active', origin: 'customers' },
      { id: 4, status: 'trial', origin: 'customers' },
    ]);
  });

  it('removes the planned fields (SQLite: NULL) where they still hold the planned value', async () => {
    const f = fixture(UNTIER, [...SEEDED, { id: 5, status: 'active', tier: 'gold', updated_at: 't0' }]);
    await makePlan(f);
    sqliteExec(f.db, "UPDATE customers SET tier = 'platinum' WHERE id = 5");
    const { events } = await apply(f);
    expect(events).toEqual([applied(2), drifted(5, 'changed since the plan was made')]);
    expect(customers(f.db).map((c) => c.tier)).toEqual([null, null, null, null, 'platinum']);
  });
});

describe('applySavedPlan refuses a plan it cannot trust, before writing anything', () => {
  /** The plan's lines, without checksums: what a forger edits and seals again. */
  async function planned(f: Fixture) {
    await makePlan(f);
    return jsonLines(f.out).map(({ sum: _s, ...l }) => l);
  }

  async function refusedApply(f: Fixture, text: string, code: string, message: string): Promise<void> {
    const path = f.dir.write('edited.plan.jsonl', text);
    const before = dumpSqlite(f.db);
    const err = await refusal(apply(f, {}, path));
    expect([err.code, err.message]).toEqual([code, message.replaceAll('PLAN', path)]);
    expect(dumpSqlite(f.db)).toEqual(before);
    expect(leftBehind(f)).toEqual([]);
  }

  const EDITED = 'the plan was edited, so nothing was applied. Make a new plan with datafix plan, and review it without editing it';

  it('a line that is not JSON, a value changed without its checksum, a line without one, a plan cut short (DF733, DF734)', async () => {
    const f = fixture();
    const lines = await planned(f);
    const text = readFileSync(f.out, 'utf8').split('\n');
    await refusedApply(
      f,
      [text[0], '{"type":"change",', ...text.slice(2)].join('\n'),
      'DF733',
      'PLAN:2 is not valid JSON; the plan is damaged, make a new one with datafix plan',
    );
    await refusedApply(
      f,
      text.join('\n').replace('"after":"bronze"', '"after":"gold"'),
      'DF734',
      `PLAN:2 does not match its checksum: ${EDITED}`,
    );
    await refusedApply(
      f,
      [text[0], JSON.stringify(lines[1]), ...text.slice(2)].join('\n'),
      'DF734',
      `PLAN:2 does not match its checksum: ${EDITED}`,
    );
    await refusedApply(
      f,
      sealedJournalText(lines.slice(0, 3)),
      'DF733',
      'PLAN is incomplete (it does not end with the summary line datafix plan writes last); nothing was applied. Make a new plan with datafix plan',
    );
  });

  it('a change the spec cannot make, sealed again with valid checksums (DF734, naming the line and the change)', async () => {
    const f = fixture();
    const lines = await planned(f);
    const forged = (edit: (c: { table?: string; action?: string; fields: Record<string, unknown>[] }) => void) =>
      sealedJournalText(lines.map((l, i) => (i === 2 ? editCopy(l, edit) : l)));
    const cases: [(c: { table?: string; action?: string; fields: Record<string, unknown>[] }) => void, string][] = [
      [(c) => (c.table = 'staff'), 'changes table staff, which the spec does not update'],
      [(c) => (c.action = 'delete'), 'deletes a record, but the spec updates records'],
      [(c) => (c.action = 'create'), 'creates a record, but the spec updates records'],
      [(c) => (c.fields[0] = { ...c.fields[0], name: 'email' }), 'changes field email, which the spec neither sets nor touches'],
      [
        (c) => c.fields.push({ name: 'tier', before: 'silver', after: 'bronze', guard: 'absent' }),
        'overwrites tier, which the spec only fills where it is absent',
      ],
      [
        (c) => c.fields.push({ name: 'tier', before: null, after: 'bronze', guard: 'unchanged' }),
        'overwrites tier, which the spec only fills where it is absent',
      ],
    ];
    for (const [edit, message] of cases) await refusedApply(f, forged(edit), 'DF734', `PLAN:3 ${message}: ${EDITED}`);
    // The same plan with the change as planned goes through the same check and is applied.
    expect((await apply(f, {}, f.dir.write('sealed.plan.jsonl', sealedJournalText(lines)))).summary).toMatchObject({ applied: 3 });
  });

  it('a delete that keeps a field, a create of a field the spec never names, a value written to a removed field (DF734)', async () => {
    const cases: [string, (c: { fields: Record<string, unknown>[] }) => void, string][] = [
      [RETIRE, (c) => ((c.fields[1] as Record<string, unknown>).after = 'trial'), 'keeps field status of a record it deletes'],
      [
        ARCHIVE,
        (c) => c.fields.push({ name: 'note', before: null, after: 'x', guard: 'absent' }),
        'creates field note, which the spec neither keys nor sets',
      ],
      [UNTIER, (c) => ((c.fields[0] as Record<string, unknown>).after = 'gold'), 'writes tier, which the spec only removes'],
    ];
    for (const [spec, edit, message] of cases) {
      const f = fixture(spec);
      if (spec === ARCHIVE) sqliteExec(f.db, ARCHIVE_TABLE);
      const lines = await planned(f);
      const at = lines.findIndex((l) => l.type === 'change');
      await refusedApply(
        f,
        sealedJournalText(lines.map((l, i) => (i === at ? editCopy(l, edit) : l))),
        'DF734',
        `PLAN:${at + 1} ${message}: ${EDITED}`,
      );
    }
    // A delete planned for an update spec, an update planned for a delete spec.
    const f = fixture(RETIRE);
    const lines = await planned(f);
    const { action: _a, ...update } = lines[1] as Record<string, unknown>;
    await refusedApply(
      f,
      sealedJournalText([lines[0] as Record<string, unknown>, update, ...lines.slice(2)]),
      'DF734',
      `PLAN:2 updates a record, but the spec deletes records: ${EDITED}`,
    );
  });

  it('a plan whose spec changed since (DF731), or whose spec now points at another database (DF732)', async () => {
    const f = fixture();
    await makePlan(f);
    const createdAt = (jsonLines(f.out)[0] as { createdAt: string }).createdAt;
    const original = readFileSync(f.spec, 'utf8');
    writeFileSync(f.spec, original.replace('tier: bronze', 'tier: gold'));
    await refusedApply(
      f,
      readFileSync(f.out, 'utf8'),
      'DF731',
      `${f.spec} changed since this plan was made (${createdAt}); make a new plan`,
    );
    writeFileSync(f.spec, original);

    const other = f.dir.file('other.db');
    customersDb(other, SEEDED);
    const elsewhere = { ...f, env: { DB: other } };
    const err = await refusal(apply(elsewhere));
    expect([err.code, err.message]).toEqual([
      'DF732',
      `this plan was made for sqlite ${f.db}, but the spec now points at sqlite ${other}; it applies only where it was made`,
    ]);
    expect(customers(other)).toEqual(SEEDED);
    expect(customers(f.db)).toEqual(SEEDED);

    // A symlink re-pointed at the other database is the other database.
    const link = f.dir.file('current.db');
    symlinkSync(f.db, link);
    const viaLink = { ...f, env: { DB: link }, out: f.dir.file('link.plan.jsonl') };
    await makePlan(viaLink);
    rmSync(link);
    symlinkSync(other, link);
    expect((await refusal(apply(viaLink))).code).toBe('DF732');
    expect(customers(other)).toEqual(SEEDED);
  });

  it('a header without the target identity is compared by its target as written', async () => {
    const f = fixture();
    const [header, ...rest] = await planned(f);
    const { targetIdentity: _i, ...older } = header as Record<string, unknown>;
    const text = sealedJournalText([older, ...rest]);
    const other = f.dir.file('other.db');
    customersDb(other, SEEDED);
    const err = await refusal(apply({ ...f, env: { DB: other } }, {}, f.dir.write('older.plan.jsonl', text)));
    expect(err.code).toBe('DF732');
    expect((await apply(f, {}, f.dir.file('older.plan.jsonl'))).summary).toMatchObject({ applied: 3 });
    expect(customers(f.db)).toEqual(ACTIVATED);
  });
});

/** `l` (a change line) copied and edited by `edit`. */
function editCopy<T>(l: Record<string, unknown>, edit: (c: T) => void): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(l)) as Record<string, unknown>;
  edit(copy as T);
  return copy;
}

describe('applySavedPlan on DynamoDB', () => {
  const dynamo = useDynaliteTables('saved-plan');
  const media = (id: string, status: string) => ({ PK: `MEDIA#${id}`, SK: 'METADATA', id, status });
  const MARK = `name: mark-done
target: { dynamodb: { table: "\${TABLE}", endpoint: "\${ENDPOINT}", region: us-east-1 } }
source: { as: m, scan: { pageSize: 10 } }
update:
  key: { PK: "{{ m.PK }}", SK: "{{ m.SK }}" }
  set: { status: done }
  overwrite: [status]
`;

  async function dynamoFixture(endpoint = dynamo.endpoint(), spec = MARK): Promise<Fixture & { table: string }> {
    const table = await dynamo.table([media('a', 'new'), media('b', 'new')]);
    const dir = tmp();
    const fix = dynamoFix(dir, endpoint, table, spec);
    return { ...fix, out: dir.file('mark.plan.jsonl'), table };
  }

  it('writes the planned items of the target table, each reported by its key', async () => {
    const f = await dynamoFixture();
    await makePlan(f);
    const { events, summary } = await apply(f);
    // In the order the scan read them, which DynamoDB chooses; no table is named (the spec has one).
    expect([...events].sort((a, b) => String(a.key.PK).localeCompare(String(b.key.PK)))).toStrictEqual([
      { outcome: 'applied', key: { PK: 'MEDIA#a', SK: 'METADATA' } },
      { outcome: 'applied', key: { PK: 'MEDIA#b', SK: 'METADATA' } },
    ]);
    expect(summary).toMatchObject({ total: 2, applied: 2 });
    expect((await scanRaw(dynamo.endpoint(), f.table)).map((i) => i.status?.S)).toEqual(['done', 'done']);
  });

  it('a change edited to name another table is refused (DF734) though sealed again with valid checksums; neither table is written', async () => {
    const f = await dynamoFixture();
    const other = await dynamo.table([media('a', 'keep')]);
    await makePlan(f);
    const lines = jsonLines(f.out).map(({ sum: _s, ...l }) => l);
    const forged = sealedJournalText(lines.map((l, i) => (i === 1 ? { ...l, table: other } : l)));
    const path = f.dir.write('forged.plan.jsonl', forged);
    const err = await refusal(apply(f, {}, path));
    expect([err.code, err.message]).toEqual([
      'DF734',
      `${path}:2 changes table ${other}, which the spec does not update: the plan was edited, so nothing was applied. Make a new plan with datafix plan, and review it without editing it`,
    ]);
    expect((await scanRaw(dynamo.endpoint(), other)).map((i) => i.status?.S)).toEqual(['keep']);
    expect((await scanRaw(dynamo.endpoint(), f.table)).map((i) => i.status?.S)).toEqual(['new', 'new']);
  });

  it('reads only with consistent reads (the dry run, a drifted item re-read, the read before a delete), and only where it must', async () => {
    const reads: { operation: string; consistent: unknown }[] = [];
    const proxy = await startCountingProxy(dynamo.endpoint(), {
      fault: (r) => {
        const body = JSON.parse(r.body) as { ConsistentRead?: boolean; RequestItems?: Record<string, { ConsistentRead?: boolean }> };
        if (r.operation === 'GetItem') reads.push({ operation: r.operation, consistent: body.ConsistentRead });
        if (r.operation === 'BatchGetItem') {
          for (const t of Object.values(body.RequestItems ?? {})) reads.push({ operation: r.operation, consistent: t.ConsistentRead });
        }
        return undefined;
      },
    });
    try {
      const f = await dynamoFixture(proxy.endpoint);
      await makePlan(f);
      // A clean live apply sends its writes and reads nothing.
      reads.length = 0;
      expect((await apply(f)).summary).toMatchObject({ applied: 2 });
      expect(reads).toEqual([]);
      // Applied again: every item drifted (it holds the planned values), each re-read consistently.
      reads.length = 0;
      expect((await apply(f, { dryRun: true })).summary).toMatchObject({ applied: 0, drifted: 2 });
      // One batch of both keys, read consistently.
      expect(reads).toEqual([{ operation: 'BatchGetItem', consistent: true }]);
      reads.length = 0;
      const again = await apply(f);
      expect(again.events.map((e) => e.message)).toEqual([
        'already holds the planned values (this plan was applied before)',
        'already holds the planned values (this plan was applied before)',
      ]);
      // Each refused write is re-read by the adapter, then both items once more by apply, to say why.
      expect(reads).toEqual([
        { operation: 'GetItem', consistent: true },
        { operation: 'GetItem', consistent: true },
        { operation: 'BatchGetItem', consistent: true },
      ]);

      const d = await dynamoFixture(
        proxy.endpoint,
        MARK.replace(/update:[\s\S]*$/, 'delete:\n  key: { PK: "{{ m.PK }}", SK: "{{ m.SK }}" }\n'),
      );
      await makePlan(d);
      reads.length = 0;
      expect((await apply(d)).summary).toMatchObject({ applied: 2 });
      // One batch of both keys, read consistently.
      expect(reads).toEqual([{ operation: 'BatchGetItem', consistent: true }]);
      expect(await scanRaw(dynamo.endpoint(), d.table)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });
});
