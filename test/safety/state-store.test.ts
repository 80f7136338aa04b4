/**
 * The run state in the test process: what a target IS (the identity its lock, state file and
 * saved plans are keyed by, however a spec spells it), the names of the files under
 * `.datafix/runs/`, the state store (written whole, read back, found from a journal), and what a
 * live run, its resume and its undo leave in the state as `datafix runs` and `--resume` see it.
 * Expected values are written here (paths resolved with node:fs, counts from the seeded rows).
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatafixError } from '../../src/errors.js';
import type { TargetPlan } from '../../src/plan/types.js';
import { openJournal } from '../../src/safety/journal.js';
import { listRuns, recordUndo } from '../../src/safety/runs.js';
import {
  identityHash,
  newRunId,
  type RunState,
  RunStateStore,
  runKey,
  STATE_DIR,
  targetIdentity,
  writeAtomically,
} from '../../src/safety/state.js';
import { undoJournal } from '../../src/safety/undo.js';
import { useTempDirs } from '../helpers/tmp.js';
import { cancelledOrders, createOrdersDb, libraryFix, liveRun, renameSpec, stopAfterPages } from './library-runs.js';
import { sqliteAll } from './support.js';

const tmp = useTempDirs();

const sqlite = (path: string, busyTimeoutMs = 5000): TargetPlan => ({ backend: 'sqlite', path, busyTimeoutMs });
const dynamo = (endpoint: string | undefined, table = 'media', region = 'us-east-1'): TargetPlan => ({
  backend: 'dynamodb',
  table,
  region,
  ...(endpoint !== undefined ? { endpoint } : {}),
});

describe('a target is its identity, however a spec spells it', () => {
  it('a SQLite database is its real file: a symlink, `..` and another busyTimeoutMs name it; another file does not', () => {
    const dir = tmp();
    const db = dir.file('orders.db');
    createOrdersDb(db, []);
    mkdirSync(dir.file('sub'));
    symlinkSync(db, dir.file('link.db'));
    const real = `sqlite:${realpathSync(db)}`;
    expect(targetIdentity(sqlite(db))).toBe(real);
    expect(targetIdentity(sqlite(dir.file('link.db')))).toBe(real);
    expect(targetIdentity(sqlite(join(dir.path, 'sub', '..', 'orders.db'), 1))).toBe(real);
    const other = dir.file('other.db');
    copyFileSync(db, other);
    expect(targetIdentity(sqlite(other))).toBe(`sqlite:${realpathSync(other)}`);
    expect(targetIdentity(sqlite(other))).not.toBe(real);
  });

  it('a SQLite database that does not exist yet is its absolute path as spelled', () => {
    const dir = tmp();
    expect(targetIdentity(sqlite(join(dir.path, 'sub', '..', 'missing.db')))).toBe(`sqlite:${join(dir.path, 'missing.db')}`);
    expect(targetIdentity(sqlite('relative/missing.db'))).toBe(`sqlite:${resolve('relative/missing.db')}`);
  });

  it('a DynamoDB table on this machine is one target by any loopback name, port spelling, credentials or path', () => {
    // Stored as written in saved plans, whose target is compared by this text.
    const identity = 'dynamodb:["us-east-1","http://loopback:8000","media"]';
    const spellings = [
      'http://localhost:8000',
      'http://LOCALHOST:8000/',
      'http://127.0.0.1:8000',
      'http://127.1:08000',
      'http://127.10.20.30:8000',
      'http://[::1]:8000',
      'http://0.0.0.0:8000',
      'http://[::]:8000',
      'http://[::ffff:127.0.0.1]:8000',
      'http://[::ffff:127.1.2.3]:8000',
      'http://user:secret@localhost:8000/some/path?token=abc#frag',
    ];
    for (const endpoint of spellings) expect(targetIdentity(dynamo(endpoint)), endpoint).toBe(identity);
  });

  it('addresses that only look like loopback are other hosts', () => {
    const loopback = targetIdentity(dynamo('http://127.0.0.1:8000'));
    const others = [
      'http://128.0.0.1:8000',
      'http://127.0.0.1.example.com:8000',
      'http://[::2]:8000',
      'http://[::ffff:10.0.0.1]:8000',
      'http://[1::ffff:7f00:1]:8000',
      'http://[::ffff:7f00:1:2]:8000',
      'http://localhost.example.com:8000',
    ];
    for (const endpoint of others) expect(targetIdentity(dynamo(endpoint)), endpoint).not.toBe(loopback);
    expect(targetIdentity(dynamo('http://[::2]:8000'))).toBe('dynamodb:["us-east-1","http://::2:8000","media"]');
  });

  it('a DynamoDB endpoint with its default port written or not, or left out for the region’s own, is one target', () => {
    const aws = 'dynamodb:["eu-west-1","https://dynamodb.eu-west-1.amazonaws.com:443","media"]';
    expect(targetIdentity(dynamo(undefined, 'media', 'eu-west-1'))).toBe(aws);
    expect(targetIdentity(dynamo('https://dynamodb.eu-west-1.amazonaws.com', 'media', 'eu-west-1'))).toBe(aws);
    expect(targetIdentity(dynamo('https://DynamoDB.eu-west-1.amazonaws.com:443/', 'media', 'eu-west-1'))).toBe(aws);
    expect(targetIdentity(dynamo('http://db.example.com'))).toBe('dynamodb:["us-east-1","http://db.example.com:80","media"]');
    expect(targetIdentity(dynamo('http://db.example.com:80'))).toBe(targetIdentity(dynamo('http://db.example.com')));
  });

  it('another table, region, scheme, port or host is another target', () => {
    const base = targetIdentity(dynamo('https://db.example.com'));
    expect(targetIdentity(dynamo('https://db.example.com', 'other'))).not.toBe(base);
    expect(targetIdentity(dynamo('https://db.example.com', 'media', 'eu-west-1'))).not.toBe(base);
    expect(targetIdentity(dynamo('http://db.example.com:443'))).not.toBe(base);
    expect(targetIdentity(dynamo('https://db.example.com:8443'))).not.toBe(base);
    expect(targetIdentity(dynamo('https://db2.example.com'))).not.toBe(base);
    expect(targetIdentity(dynamo('https://db.example.com'))).not.toBe(targetIdentity(sqlite('https://db.example.com')));
  });

  it('an endpoint that is not a URL is compared as written, lower-cased, without trailing slashes', () => {
    expect(targetIdentity(dynamo('Dynamo Box//'))).toBe('dynamodb:["us-east-1","dynamo box","media"]');
    expect(targetIdentity(dynamo('dynamo/box'))).not.toBe(targetIdentity(dynamo('dynamobox')));
  });
});

describe('the names of a run’s files', () => {
  it('a run key names the fix, a 12-digit hash of the target’s identity and the segment', () => {
    const dir = tmp();
    const db = dir.file('orders.db');
    createOrdersDb(db, []);
    symlinkSync(db, dir.file('link.db'));
    const key = runKey({ fix: 'rename-status', target: sqlite(db) });
    expect(key).toMatch(/^rename-status--[0-9a-f]{12}$/);
    expect(key).toBe(`rename-status--${identityHash(sqlite(db))}`);
    expect(runKey({ fix: 'rename-status', target: sqlite(dir.file('link.db'), 10) })).toBe(key);
    expect(runKey({ fix: 'rename-status', target: sqlite(dir.file('other.db')) })).not.toBe(key);
    const seg = runKey({ fix: 'scan', target: dynamo('http://localhost:8000'), segment: { index: 1, total: 4 } });
    expect(seg).toMatch(/^scan--[0-9a-f]{12}--seg1of4$/);
    expect(seg).toBe(`${runKey({ fix: 'scan', target: dynamo('http://127.0.0.1:8000/') })}--seg1of4`);
  });

  it('a journal is named by its run key and its start time, with `:` and `.` made file-name safe', () => {
    const dir = tmp();
    expect(new RunStateStore(dir.path).journalPath('rename--abc', '2026-01-02T03:04:05.678Z')).toBe(
      join(dir.path, '.datafix', 'runs', 'rename--abc--2026-01-02T03-04-05-678Z.journal.jsonl'),
    );
  });

  it('each run gets a new run id (a UUID)', () => {
    const ids = Array.from({ length: 3 }, () => newRunId());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(3);
  });
});

/** A state as a run writes it, naming `journal`. */
function stateNaming(journal: string, runId: string, status: RunState['status'] = 'interrupted'): RunState {
  return {
    fix: 'rename-status',
    specFile: '/specs/fix.yaml',
    specChecksum: 'c'.repeat(64),
    target: sqlite('/data/orders.db'),
    runId,
    journal,
    status,
    pages: 3,
    records: 30,
    counts: { total: 30, updated: 20, skipped: 10, failed: 0, reasons: { already_renamed: 10 } },
    startedAt: '2026-01-02T03:04:05.678Z',
    updatedAt: '2026-01-02T03:05:00.000Z',
  };
}

describe('the state store', () => {
  it('writes a state whole to .datafix/runs/KEY.state.json, one JSON line, and reads it back', () => {
    const dir = tmp();
    const store = new RunStateStore(dir.path);
    const state = stateNaming('/j/a.journal.jsonl', 'run-a');
    store.write('rename--abc', state);
    expect(STATE_DIR).toBe('.datafix');
    const file = dir.file('.datafix', 'runs', 'rename--abc.state.json');
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify(state)}\n`);
    expect(store.read('rename--abc')).toEqual(state);
    // A later, shorter state replaces it whole: nothing of the longer one is left behind.
    const done: RunState = { ...state, status: 'done', counts: { total: 0, updated: 0, skipped: 0, failed: 0, reasons: {} } };
    store.write('rename--abc', done);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(done);
    expect(readdirSync(dir.file('.datafix', 'runs'))).toEqual(['rename--abc.state.json']);
  });

  it('a state that is not there, or torn, reads as none', () => {
    const dir = tmp();
    const store = new RunStateStore(dir.path);
    expect(store.read('rename--abc')).toBeUndefined();
    const state = stateNaming('/j/a.journal.jsonl', 'run-a');
    store.write('rename--abc', state);
    const file = dir.file('.datafix', 'runs', 'rename--abc.state.json');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, text.length / 2));
    expect(store.read('rename--abc')).toBeUndefined();
  });

  it('saving a state after every page leaves no file open (a long run would run out of descriptors)', () => {
    const dir = tmp();
    const store = new RunStateStore(dir.path);
    const open = () => readdirSync('/proc/self/fd').length;
    store.write('k', stateNaming('/j/a.journal.jsonl', 'run-a'));
    const before = open();
    for (let page = 0; page < 50; page++) store.write('k', { ...stateNaming('/j/a.journal.jsonl', 'run-a'), pages: page });
    writeAtomically(dir.file('other.json'), '{}\n');
    expect(open()).toBe(before);
    expect(store.read('k')?.pages).toBe(49);
  });

  it('finds the run whose state names a journal, by any spelling of its path, or by its run id for a moved copy', () => {
    const dir = tmp();
    const work = dir.file('work');
    mkdirSync(work);
    const store = new RunStateStore(work);
    expect(store.keyOfJournal(join(work, 'a.journal.jsonl'))).toBeUndefined();
    const runs = join(work, '.datafix', 'runs');
    const names = ['a', 'b', 'c'];
    const journals = names.map((n) => join(runs, `${n}.journal.jsonl`));
    journals.forEach((j, i) => {
      store.write(`key-${i}`, stateNaming(j, `run-${i}`));
      writeFileSync(j, 'journal\n');
    });
    // What else lives in the directory is not a state.
    writeFileSync(join(runs, 'undo-0123abcd.json'), `${JSON.stringify({ journal: journals[0], status: 'done' })}\n`);
    // The same working directory through a symlink.
    const viaLink = dir.file('link');
    symlinkSync(work, viaLink);
    journals.forEach((j, i) => {
      expect(store.keyOfJournal(j), j).toBe(`key-${i}`);
      expect(store.keyOfJournal(join(viaLink, '.datafix', 'runs', `${names[i]}.journal.jsonl`)), `via link ${j}`).toBe(`key-${i}`);
      expect(new RunStateStore(viaLink).keyOfJournal(j), `store via link ${j}`).toBe(`key-${i}`);
      // A copy of the journal moved elsewhere still names its run in its header.
      expect(store.keyOfJournal(dir.file(`moved-${i}.journal.jsonl`), `run-${i}`), `moved ${j}`).toBe(`key-${i}`);
    });
    expect(store.keyOfJournal(dir.file('moved.journal.jsonl'))).toBeUndefined();
    expect(store.keyOfJournal(dir.file('moved.journal.jsonl'), 'run-unknown')).toBeUndefined();
    expect(store.keyOfJournal(join(work, 'x', '..', '.datafix', 'runs', 'b.journal.jsonl'), 'run-unknown')).toBe('key-1');
  });

  it('a torn state, one of an older datafix (no run id) or one whose journal is gone claims no other journal', () => {
    const dir = tmp();
    const store = new RunStateStore(dir.path);
    const runs = dir.file('.datafix', 'runs');
    const journal = join(runs, 'wanted.journal.jsonl');
    const { runId: _none, ...older } = stateNaming(join(runs, 'older.journal.jsonl'), 'x');
    store.write('a-older', older);
    writeFileSync(join(runs, 'older.journal.jsonl'), 'journal\n');
    store.write('b-gone', stateNaming(join(runs, 'deleted.journal.jsonl'), 'run-gone'));
    writeFileSync(join(runs, 'c-torn.state.json'), '{"fix":"rename-status","jour');
    writeFileSync(join(runs, 'd-foreign.state.json'), '{}\n');
    store.write('e-wanted', stateNaming(journal, 'run-wanted'));
    writeFileSync(journal, 'journal\n');

    expect(store.keyOfJournal(journal)).toBe('e-wanted');
    expect(store.keyOfJournal(dir.file('copy.journal.jsonl'), 'run-wanted')).toBe('e-wanted');
    expect(store.keyOfJournal(dir.file('not-there.journal.jsonl'))).toBeUndefined();
    expect(store.keyOfJournal(dir.file('not-there.journal.jsonl'), 'run-other')).toBeUndefined();
  });
});

describe('the state of a live run (runPlanSafely), as `datafix runs` and --resume see it', () => {
  const ORDERS = 5;

  function fresh() {
    const dir = tmp();
    const db = dir.file('orders.db');
    createOrdersDb(db, cancelledOrders(ORDERS));
    return libraryFix(dir, db, renameSpec(2));
  }

  const statuses = (db: string) => sqliteAll<{ status: string }>(db, 'SELECT status FROM orders ORDER BY id').map((r) => r.status);

  it('a finished run: its state says done with every record counted, under its run key, naming its journal', async () => {
    const fix = fresh();
    const result = await liveRun(fix);
    expect(statuses(fix.db)).toEqual(Array(ORDERS).fill('cancelled'));
    const key = runKey({ fix: 'rename-status', target: sqlite(fix.db) });
    const state = new RunStateStore(fix.dir.path).read(key);
    expect(state).toMatchObject({
      fix: 'rename-status',
      specFile: fix.spec,
      target: sqlite(fix.db),
      status: 'done',
      pages: 3,
      records: ORDERS,
      counts: { total: ORDERS, updated: ORDERS, skipped: 0, failed: 0, reasons: {} },
      journal: result.journal,
    });
    expect(result.journal).toMatch(
      new RegExp(`^${fix.dir.file('.datafix', 'runs', key)}--\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d-\\d{3}Z\\.journal\\.jsonl$`),
    );
    expect((await openJournal(result.journal as string)).header.runId).toBe(state?.runId);
    expect(await listRuns(fix.dir.path)).toMatchObject([
      { kind: 'run', fix: 'rename-status', status: 'done', resumable: false, read: ORDERS, writes: ORDERS, journal: result.journal },
    ]);
  });

  it('a stopped run is interrupted at its last page; --resume finishes it and counts the whole run', async () => {
    const fix = fresh();
    const stopped = await liveRun(fix, stopAfterPages(1));
    expect(stopped.interrupted).toBe(true);
    expect(statuses(fix.db)).toEqual(['cancelled', 'cancelled', 'canceled', 'canceled', 'canceled']);
    const key = runKey({ fix: 'rename-status', target: sqlite(fix.db) });
    expect(new RunStateStore(fix.dir.path).read(key)).toMatchObject({
      status: 'interrupted',
      pages: 1,
      records: 2,
      counts: { total: 2, updated: 2, skipped: 0, failed: 0 },
    });
    expect(await listRuns(fix.dir.path)).toMatchObject([{ status: 'interrupted', resumable: true, read: 2, writes: 2 }]);

    const resumed = await liveRun(fix, { resume: true });
    expect(resumed.summary).toMatchObject({ total: 3, updated: 3 });
    expect(resumed.wholeRun).toEqual({ total: ORDERS, updated: ORDERS, skipped: 0, failed: 0, reasons: {} });
    expect(statuses(fix.db)).toEqual(Array(ORDERS).fill('cancelled'));
    expect(new RunStateStore(fix.dir.path).read(key)).toMatchObject({
      status: 'done',
      pages: 3,
      records: ORDERS,
      journal: stopped.journal,
    });
    expect(await listRuns(fix.dir.path)).toMatchObject([{ status: 'done', resumable: false, read: ORDERS, writes: ORDERS }]);
  });

  it.each([
    ['its journal', false],
    ['a copy of its journal moved elsewhere', true],
  ])('undone from %s, the run is undone in its state: --resume refuses it (DF721)', async (_what, moved) => {
    const fix = fresh();
    const stopped = await liveRun(fix, stopAfterPages(1));
    let journal = stopped.journal as string;
    if (moved) {
      const copy = fix.dir.file('elsewhere.journal.jsonl');
      copyFileSync(journal, copy);
      journal = copy;
    }
    const summary = await undoJournal(journal, { dryRun: false });
    expect(summary).toMatchObject({ total: 2, restored: 2 });
    expect(statuses(fix.db)).toEqual(Array(ORDERS).fill('canceled'));
    // As `datafix undo` records it once the undo is whole.
    recordUndo(fix.dir.path, journal, (await openJournal(journal)).header, 'done');
    const key = runKey({ fix: 'rename-status', target: sqlite(fix.db) });
    expect(new RunStateStore(fix.dir.path).read(key)?.status).toBe('undone');

    const refused = await liveRun(fix, { resume: true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DatafixError);
    expect((refused as DatafixError).code).toBe('DF721');
    expect((refused as DatafixError).message).toBe(
      `there is no interrupted run of rename-status on this target to resume (the last one was undone from ${stopped.journal}); run without --resume`,
    );
    expect(statuses(fix.db)).toEqual(Array(ORDERS).fill('canceled'));
  });
});
