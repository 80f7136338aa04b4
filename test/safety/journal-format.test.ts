/**
 * The journal as a file, in process: what `JournalWriter` puts on disk and when it is durable,
 * what `openJournal` gives undo back (newest first, each write with its outcome), what `reopen`
 * gives a resumed run, and every kind of damage the check refuses before anything is restored.
 * Lines are read back with plain JSON parsing and checksums recomputed with node:crypto, not
 * with datafix's own reader.
 */
import { appendFileSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WriteRequest, WriteResult } from '../../src/adapters/types.js';
import type { RunSummary } from '../../src/engine/events.js';
import { DatafixError } from '../../src/errors.js';
import { JOURNAL_FORMAT, type JournalWrite, JournalWriter, journalFs, openJournal } from '../../src/safety/journal.js';
import { useTempDirs } from '../helpers/tmp.js';
import { batchWrites, jsonLines, perRecordJournalLines, sealedJournalText } from './support.js';

const tmp = useTempDirs();

afterEach(() => {
  vi.restoreAllMocks();
});

const HEADER = {
  fix: 'fill-names',
  specFile: '/specs/fill-names.yaml',
  specChecksum: 'a'.repeat(64),
  target: { backend: 'sqlite' as const, path: '/data/app.db', busyTimeoutMs: 5000 },
  runId: '00000000-0000-4000-8000-000000000001',
  startedAt: '2026-11-30T10:00:00.000Z',
  datafixVersion: '0.1.0',
};

const SUMMARY: RunSummary = {
  fix: 'fill-names',
  dryRun: false,
  total: 3,
  updated: 2,
  skipped: 0,
  failed: 1,
  reasons: { write_failed: 1 },
  durationMs: 5,
};

/** An update of `name` on user `id`: from `before` (undefined: absent) to `after`. */
function update(id: number, before: unknown, after: unknown): WriteRequest {
  return { table: 'users', key: { id }, fields: [{ name: 'name', value: after, guard: 'unchanged', before }] };
}

async function allWrites(path: string): Promise<JournalWrite[]> {
  const out: JournalWrite[] = [];
  for await (const w of (await openJournal(path)).writes()) out.push(w);
  return out;
}

/** Expects `fn` to throw a DatafixError with `code` and a message containing `text`. */
async function refused(fn: () => unknown, code: string, text: string): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DatafixError);
  expect((caught as DatafixError).code).toBe(code);
  expect((caught as DatafixError).message).toContain(text);
  // A journal the disk cannot take is the environment's problem; anything else is the user's file.
  expect((caught as DatafixError).category).toBe(code === 'DF704' ? 'config' : 'usage');
}

/** Makes the journal's next write put half its bytes on disk and then fail with `code`. */
function diskFailsWith(code: string): void {
  const { writeSync } = journalFs;
  vi.spyOn(journalFs, 'writeSync').mockImplementationOnce(((
    fd: number,
    buffer: Uint8Array,
    offset?: number,
    length?: number,
    position?: number,
  ) => {
    (writeSync as (...a: unknown[]) => number)(fd, buffer, offset ?? 0, Math.floor((length ?? buffer.length) / 2), position);
    throw Object.assign(new Error(`${code}: the disk refused`), { code });
  }) as unknown as typeof writeSync);
}

/** A finished journal of two batches: users 1 and 2 (1 applied, 2 a conflict), then user 3 (failed). */
function twoBatchJournal(path: string): void {
  const w = JournalWriter.create(path, HEADER);
  const first = [update(1, null, 'Ada'), update(2, 'Bob', 'Robert')];
  w.intend(first);
  w.settle(first, [{ status: 'applied' }, { status: 'conflict' }]);
  const second = [update(3, undefined, 'Cy')];
  w.intend(second);
  w.settle(second, [{ status: 'failed', reason: 'write_failed', message: 'CHECK constraint failed' }]);
  w.end(SUMMARY, false);
  w.close();
}

describe('the journal on disk (format 5)', () => {
  it('a header, then per batch one writes line before its writes and one results line after, then the end; every line chained by its checksum', () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const text = readFileSync(path, 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { type: string }).type)).toEqual(['header', 'writes', 'results', 'writes', 'results', 'end']);
    expect(JOURNAL_FORMAT).toBe(5);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ type: 'header', format: 5, ...HEADER });
    // Every write of a batch updates the same field of the same table: rows under shared names.
    expect(JSON.parse(lines[1] as string)).toMatchObject({
      type: 'writes',
      seq: 1,
      count: 2,
      table: 'users',
      fields: ['name'],
      rows: [
        [{ id: 1 }, null, 'Ada'],
        [{ id: 2 }, 'Bob', 'Robert'],
      ],
    });
    expect(JSON.parse(lines[2] as string)).toMatchObject({
      type: 'results',
      count: 2,
      results: [
        { seq: 1, status: 'applied' },
        { seq: 2, status: 'conflict' },
      ],
    });
    // An absent before-image is tagged, not written as null.
    expect(JSON.parse(lines[3] as string)).toMatchObject({
      type: 'writes',
      seq: 3,
      count: 1,
      rows: [[{ id: 3 }, { $absent: true }, 'Cy']],
    });
    expect(JSON.parse(lines[5] as string)).toMatchObject({ type: 'end', interrupted: false, summary: SUMMARY });
    // The same text, sealed here from the lines without their sums: every checksum matches.
    expect(sealedJournalText(lines.map((l) => JSON.parse(l) as Record<string, unknown>))).toBe(text);
  });

  it('a new journal is durable by name before the run writes: its directory, and each directory made for it, is fsynced', () => {
    const dir = tmp();
    // `.datafix/runs/` does not exist yet: both are made for the journal.
    const path = dir.file('.datafix', 'runs', 'run.journal.jsonl');
    const synced: string[] = [];
    const { fsyncSync } = journalFs;
    vi.spyOn(journalFs, 'fsyncSync').mockImplementation((fd: number) => {
      synced.push(readlinkSync(`/proc/self/fd/${fd}`));
      fsyncSync(fd);
    });
    JournalWriter.create(path, HEADER).close();
    // The header line, then the entries naming the journal, .datafix/runs and .datafix.
    expect(synced).toEqual([path, dir.file('.datafix', 'runs'), dir.file('.datafix'), realpathSync(dir.path)]);
  });

  it('undo reads the writes newest first, each with its outcome; a write whose outcome was not recorded is unknown', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const batch = [update(1, null, 'Ada'), update(2, 'Bob', 'Robert'), update(3, 'Cy', 'Cyrus')];
    w.intend(batch);
    // The third was throttled (retry): it has no outcome yet when the run stops.
    const results: WriteResult[] = [{ status: 'applied' }, { status: 'not_found' }, { status: 'retry', message: 'throttled' }];
    w.settle(batch, results);
    w.close();
    const reading = await openJournal(path);
    expect(reading).toMatchObject({ verified: true, writeCount: 3, ended: false, header: { format: 5, fix: 'fill-names' } });
    const writes = await allWrites(path);
    expect(writes.map((x) => [x.seq, x.key, x.outcome])).toEqual([
      [3, { id: 3 }, 'unknown'],
      [2, { id: 2 }, 'not written'],
      [1, { id: 1 }, 'applied'],
    ]);
    expect(writes[2]?.fields).toEqual([{ name: 'name', before: null, after: 'Ada' }]);
  });

  it('a batch whose writes change different fields keeps an entry per write, and undo reads both shapes alike', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const mixed: WriteRequest[] = [
      update(1, null, 'Ada'),
      { table: 'users', key: { id: 2 }, fields: [{ name: 'email', value: 'b@example.com', guard: 'absent', before: null }] },
    ];
    w.intend(mixed);
    w.settle(mixed, [{ status: 'applied' }, { status: 'applied' }]);
    const uniform = [update(3, 'Cy', 'Cyrus')];
    w.intend(uniform);
    w.settle(uniform, [{ status: 'applied' }]);
    w.close();
    const [, mixedLine, , uniformLine] = jsonLines(path);
    expect(mixedLine).toMatchObject({
      type: 'writes',
      count: 2,
      writes: [
        { table: 'users', key: { id: 1 }, fields: [{ name: 'name', before: null, after: 'Ada' }] },
        { table: 'users', key: { id: 2 }, fields: [{ name: 'email', before: null, after: 'b@example.com' }] },
      ],
    });
    expect(mixedLine).not.toHaveProperty('rows');
    expect(uniformLine).toMatchObject({ type: 'writes', seq: 3, table: 'users', fields: ['name'], rows: [[{ id: 3 }, 'Cy', 'Cyrus']] });
    expect((await allWrites(path)).map((x) => [x.seq, x.table, x.key, x.fields])).toEqual([
      [3, 'users', { id: 3 }, [{ name: 'name', before: 'Cy', after: 'Cyrus' }]],
      [2, 'users', { id: 2 }, [{ name: 'email', before: null, after: 'b@example.com' }]],
      [1, 'users', { id: 1 }, [{ name: 'name', before: null, after: 'Ada' }]],
    ]);
  });

  it('a create keeps the record as stored with its outcome, and undo gets it back', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const create: WriteRequest = { action: 'create', table: 'users', key: { id: 9 }, fields: [{ name: 'id', value: 9, guard: 'absent' }] };
    w.intend([create]);
    w.settle([create], [{ status: 'applied', stored: { id: 9, name: null, plan: 'free' } }]);
    w.end(SUMMARY, false);
    w.close();
    const [only] = await allWrites(path);
    expect(only).toMatchObject({
      seq: 1,
      action: 'create',
      table: 'users',
      outcome: 'applied',
      stored: { id: 9, name: null, plan: 'free' },
    });
    expect((await openJournal(path)).ended).toBe(true);
  });

  it('a batch’s writes are fsynced before intend returns; its outcomes are written without an fsync of their own, and the end line is fsynced', () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const events: string[] = [];
    const { writeSync, fsyncSync } = journalFs;
    vi.spyOn(journalFs, 'writeSync').mockImplementation(((fd: number, buffer: Uint8Array, ...rest: unknown[]) => {
      events.push(`write ${JSON.parse(Buffer.from(buffer).toString('utf8').split('\n')[0] as string).type}`);
      return (writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
    }) as typeof writeSync);
    vi.spyOn(journalFs, 'fsyncSync').mockImplementation((fd) => {
      events.push('fsync');
      fsyncSync(fd);
    });
    const w = JournalWriter.create(path, HEADER);
    const batch = [update(1, null, 'Ada')];
    w.intend(batch);
    events.push('intend returned');
    w.settle(batch, [{ status: 'applied' }]);
    w.end(SUMMARY, false);
    w.close();
    // The header, then the journal's directory entry, are made durable before any batch.
    expect(events).toEqual([
      'write header',
      'fsync',
      'fsync',
      'write writes',
      'fsync',
      'intend returned',
      'write results',
      'write end',
      'fsync',
    ]);
  });

  it('a disk that fills mid-append: DF704 naming the cause, the file cut back to its last whole line, and nothing of the batch journaled', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const sizeAfterHeader = statSync(path).size;
    // Half the bytes reach the file, then the disk is full.
    diskFailsWith('ENOSPC');
    await refused(() => w.intend([update(1, null, 'Ada')]), 'DF704', 'the disk is full (ENOSPC)');
    vi.restoreAllMocks();
    expect(statSync(path).size).toBe(sizeAfterHeader);
    w.close();
    expect(await allWrites(path)).toEqual([]);
  });

  it('refuses to overwrite a journal that exists (DF701)', () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const before = readFileSync(path, 'utf8');
    expect(() => JournalWriter.create(path, HEADER)).toThrow(expect.objectContaining({ code: 'DF701' }));
    expect(readFileSync(path, 'utf8')).toBe(before);
  });
});

describe('reopening a journal for a resumed run', () => {
  it('cuts a torn last line, numbers on from the last write, appends a resume line, and names the keys of applied writes only', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const batch = [update(1, null, 'Ada'), update(2, 'Bob', 'Robert')];
    w.intend(batch);
    w.settle(batch, [{ status: 'applied' }, { status: 'conflict' }]);
    w.close();
    appendFileSync(path, '{"type":"writes","seq":3,"count":1,"writes":[{"table":"users","key":{"id":'); // a crash mid-append
    const applied: unknown[] = [];
    const again = await JournalWriter.reopen(path, { recordedSeq: 2, onWrite: (key) => applied.push(key) });
    expect(applied).toEqual([{ id: 1 }]);
    expect(again.lastSeq).toBe(2);
    const next = [update(3, null, 'Cy')];
    again.intend(next);
    again.settle(next, [{ status: 'applied' }]);
    again.close();
    const types = jsonLines(path).map((l) => l.type);
    expect(types).toEqual(['header', 'writes', 'results', 'resume', 'writes', 'results']);
    expect((await allWrites(path)).map((x) => [x.seq, x.key, x.outcome])).toEqual([
      [3, { id: 3 }, 'applied'],
      [2, { id: 2 }, 'not written'],
      [1, { id: 1 }, 'applied'],
    ]);
  });

  it('a journal that ends before the writes the state recorded was cut: DF728, nothing appended', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const before = readFileSync(path, 'utf8');
    await refused(
      () => JournalWriter.reopen(path, { recordedSeq: 5 }),
      'DF728',
      'holds writes up to 3, but the interrupted run had journaled 5',
    );
    expect(readFileSync(path, 'utf8')).toBe(before);
  });

  it('a journal that is gone: DF724', async () => {
    const dir = tmp();
    await refused(() => JournalWriter.reopen(dir.file('gone.journal.jsonl')), 'DF724', 'is gone');
  });

  it('an older journal (format 4, a line per write) is continued with a line per write', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const old = perRecordJournalLines(jsonLines(path).slice(0, -1)).map((l) => (l.type === 'header' ? { ...l, format: 4 } : l));
    writeFileSync(path, sealedJournalText(old));
    const again = await JournalWriter.reopen(path, { recordedSeq: 3 });
    const next = [update(4, null, 'Di')];
    again.intend(next);
    again.settle(next, [{ status: 'applied' }]);
    again.close();
    expect(jsonLines(path).map((l) => [l.type, l.seq])).toEqual([
      ['header', undefined],
      ['write', 1],
      ['write', 2],
      ['result', 1],
      ['result', 2],
      ['write', 3],
      ['result', 3],
      ['resume', undefined],
      ['write', 4],
      ['result', 4],
    ]);
    expect((await allWrites(path)).map((x) => [x.seq, x.outcome])).toEqual([
      [4, 'applied'],
      [3, 'not written'],
      [2, 'not written'],
      [1, 'applied'],
    ]);
  });
});

/** The two-batch journal's lines, edited by `edit`, then sealed again so every checksum matches. */
function edited(edit: (lines: Record<string, unknown>[]) => Record<string, unknown>[] | undefined): string {
  const dir = tmp();
  const path = dir.file('run.journal.jsonl');
  twoBatchJournal(path);
  const lines = jsonLines(path);
  writeFileSync(path, sealedJournalText(edit(lines) ?? lines));
  return path;
}

describe('what undo refuses before restoring anything', () => {
  const at = (lines: Record<string, unknown>[], type: string) => lines.findIndex((l) => l.type === type);
  /** Every writes line in its entry-per-write shape, each entry edited by `edit`. */
  const eachWrite = (lines: Record<string, unknown>[], edit: (w: Record<string, unknown>) => Record<string, unknown>) =>
    lines.map((x) => (x.type === 'writes' ? { type: 'writes', seq: x.seq, count: x.count, writes: batchWrites(x).map(edit) } : x));
  /** The first writes line (in its rows shape), edited by `edit`. */
  const firstRows = (lines: Record<string, unknown>[], edit: (x: Record<string, unknown>) => Record<string, unknown>) =>
    lines.map((x, i) => (i === at(lines, 'writes') ? edit(x) : x));

  it.each<[string, (lines: Record<string, unknown>[]) => Record<string, unknown>[] | undefined, string]>([
    ['a second header', (l) => [...l.slice(0, 2), l[0] as Record<string, unknown>, ...l.slice(2)], 'a second header'],
    ['an unknown line type', (l) => [...l.slice(0, 2), { type: 'note', text: 'hi' }, ...l.slice(2)], 'unknown line type "note"'],
    [
      'a write numbered twice',
      (l) => [...l.slice(0, 4), { ...l[1], seq: 2 }, ...l.slice(4)] as Record<string, unknown>[],
      'write 2 appears twice',
    ],
    [
      'a writes line with seq 0',
      (l) => l.map((x, i) => (i === at(l, 'writes') ? { ...x, seq: 0 } : x)),
      'a write without a valid seq, key or fields',
    ],
    ['a write without a key', (l) => eachWrite(l, (w) => ({ ...w, key: null })), 'a write without a valid seq, key or fields'],
    [
      'a field without its before-image',
      (l) => eachWrite(l, (w) => ({ ...w, fields: [{ name: 'name', after: 'x' }] })),
      'a write without a valid seq, key or fields',
    ],
    [
      'a field without a name',
      (l) => eachWrite(l, (w) => ({ ...w, fields: [{ before: 1, after: 2 }] })),
      'a write without a valid seq, key or fields',
    ],
    ['an action no format reads', (l) => eachWrite(l, (w) => ({ ...w, action: 'truncate' })), 'a write without a valid seq, key or fields'],
    [
      'a row shorter than its fields say',
      (l) =>
        firstRows(l, (x) => ({
          ...x,
          rows: [
            [{ id: 1 }, null],
            [{ id: 2 }, 'Bob', 'Robert'],
          ],
        })),
      'a writes line without a valid seq, count or writes',
    ],
    [
      'a field name that is not text',
      (l) => firstRows(l, (x) => ({ ...x, fields: [7] })),
      'a writes line without a valid seq, count or writes',
    ],
    [
      'a table name that is not text',
      (l) => firstRows(l, (x) => ({ ...x, table: ['users'] })),
      'a writes line without a valid seq, count or writes',
    ],
    [
      'a writes line with neither writes nor rows',
      (l) => firstRows(l, ({ rows: _rows, ...x }) => x),
      'a writes line without a valid seq, count or writes',
    ],
    [
      'an empty writes line',
      (l) => l.map((x, i) => (i === at(l, 'writes') ? { ...x, count: 0, writes: [] } : x)),
      'a writes line without a valid seq, count or writes',
    ],
    [
      'a results line whose count disagrees',
      (l) => l.map((x, i) => (i === at(l, 'results') ? { ...x, count: 5 } : x)),
      'a results line without a valid count or results',
    ],
    [
      'an outcome before its write',
      (l) => [l[0], l[2], l[1], ...l.slice(3)] as Record<string, unknown>[],
      'an outcome for write 1, which is not journaled before it',
    ],
  ])('%s (DF703)', async (_what, edit, why) => {
    const path = edited(edit);
    await refused(() => openJournal(path), 'DF703', `is damaged (${why})`);
  });

  it('a line that is JSON but not an object (DF703), before any checksum is looked at', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.splice(2, 0, '[1,2]');
    writeFileSync(path, lines.join('\n'));
    await refused(() => openJournal(path), 'DF703', `${path}:3 is damaged (not a JSON object)`);
  });

  it('a line edited without its checksum made to match (DF705), naming the line', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[1] = (lines[1] as string).replace('"Ada"', '"Eve"');
    writeFileSync(path, lines.join('\n'));
    await refused(() => openJournal(path), 'DF705', `${path}:2 does not match its checksum`);
  });

  it('a file that is not a journal, or of a format this version does not read (DF702)', async () => {
    const dir = tmp();
    const notJournal = dir.write('notes.jsonl', '{"hello":"world"}\n');
    await refused(() => openJournal(notJournal), 'DF702', 'is not a datafix journal (formats 1, 2, 3, 4, 5)');
    const future = dir.write('future.jsonl', sealedJournalText([{ type: 'header', format: 6, ...HEADER }]));
    await refused(() => openJournal(future), 'DF702', 'is not a datafix journal');
    const empty = dir.write('empty.jsonl', '');
    await refused(() => openJournal(empty), 'DF702', 'it has no header line');
  });

  it('a format-1 journal reads unverified; one whose lines carry checksums anyway had its header edited (DF705)', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const v1 = perRecordJournalLines(jsonLines(path)).map((l) => JSON.stringify(l.type === 'header' ? { ...l, format: 1 } : l));
    const plain = dir.write('v1.jsonl', `${v1.join('\n')}\n`);
    const reading = await openJournal(plain);
    expect(reading).toMatchObject({ verified: false, writeCount: 3, ended: true });
    expect((await allWrites(plain)).map((x) => [x.seq, x.outcome])).toEqual([
      [3, 'not written'],
      [2, 'not written'],
      [1, 'applied'],
    ]);
    const sealed = perRecordJournalLines(jsonLines(path)).map((l) => (l.type === 'header' ? { ...l, format: 1 } : l));
    const forged = dir.write('forged.jsonl', sealedJournalText(sealed));
    await refused(() => openJournal(forged), 'DF705', 'carries a checksum, but the header says format 1');
  });

  it('only the last line may be torn: it is ignored; a torn line before it is damage (DF703)', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    appendFileSync(path, '{"type":"writes","seq":4,"co');
    expect((await openJournal(path)).writeCount).toBe(3);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[3] = (lines[3] as string).slice(0, 30);
    writeFileSync(path, lines.join('\n'));
    await refused(() => openJournal(path), 'DF703', `${path}:4 is damaged (not a complete JSON line)`);
  });
});

describe('the journal at its edges', () => {
  it.each([
    ['ENOSPC', 'the disk is full (ENOSPC)'],
    ['EDQUOT', 'the disk quota is exhausted (EDQUOT)'],
    ['EIO', 'the disk reported an I/O error (EIO)'],
    ['EFBIG', 'the file size limit was reached (EFBIG)'],
    ['EBADF', 'EBADF: the disk refused'],
  ])('%s at each stage names the cause and the stage, and leaves whole lines only', async (code, cause) => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    diskFailsWith(code);
    await refused(() => JournalWriter.create(path, HEADER), 'DF704', `${cause}. The run stopped before the run wrote anything`);
    // An empty journal would only block a rerun with the same --journal path: none is left.
    expect(() => statSync(path)).toThrow();

    const w = JournalWriter.create(path, HEADER);
    const batch = [update(1, null, 'Ada')];
    w.intend(batch);
    diskFailsWith(code);
    // An outcome line the disk refused stops the run before the next batch.
    await refused(
      () => w.settle(batch, [{ status: 'applied' }]),
      'DF704',
      `${cause}. The run stopped after a batch was written, before the next one`,
    );
    diskFailsWith(code);
    await refused(() => w.end(SUMMARY, false), 'DF704', `${cause}. The run stopped after its last write`);
    w.close();
    diskFailsWith(code);
    await refused(() => JournalWriter.reopen(path), 'DF704', `${cause}. The run stopped before the resumed run wrote anything`);
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    expect((await allWrites(path)).map((x) => [x.seq, x.outcome])).toEqual([[1, 'unknown']]);
  });

  it('a journal path that cannot be created says why and what to do (DF701)', async () => {
    const dir = tmp();
    const existing = dir.file('run.journal.jsonl');
    twoBatchJournal(existing);
    await refused(
      () => JournalWriter.create(existing, HEADER),
      'DF701',
      `cannot create journal ${existing}: it already exists; journals are never overwritten. Give --journal a new file`,
    );
    const blocked = dir.write('not-a-dir', 'a file where a directory should be');
    await refused(() => JournalWriter.create(`${blocked}/run.journal.jsonl`, HEADER), 'DF701', `or make ${blocked} writable`);
    // The journal does not exist; a file is where its directory should be.
    let message = '';
    try {
      JournalWriter.create(`${blocked}/run.journal.jsonl`, HEADER);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('cannot create journal');
    expect(message).not.toContain('already exists; journals are never overwritten');
  });

  it('a batch of no writes writes nothing; outcomes of writes it never journaled, or still to be retried, write no line', () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    w.intend([]);
    const batch = [update(1, null, 'Ada')];
    w.intend(batch);
    w.settle(batch, [{ status: 'retry', message: 'throttled' }]);
    w.settle([update(2, null, 'Bob')], [{ status: 'applied' }]);
    w.settle(batch, []);
    w.close();
    expect(jsonLines(path).map((l) => l.type)).toEqual(['header', 'writes']);
  });

  it('the record as stored is kept for an applied create only, not for a write the backend refused', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const create: WriteRequest = { action: 'create', table: 'users', key: { id: 9 }, fields: [{ name: 'id', value: 9, guard: 'absent' }] };
    w.intend([create]);
    // Only `applied` carries `stored`; an outcome shaped otherwise must not make undo compare with it.
    w.settle([create], [{ status: 'conflict', stored: { id: 9, name: 'someone else' } } as unknown as WriteResult]);
    w.close();
    expect(jsonLines(path)[2]).toEqual(expect.objectContaining({ results: [{ seq: 1, status: 'conflict' }] }));
    expect((await allWrites(path))[0]).not.toHaveProperty('stored');
  });

  it('lines that are JSON but not objects are damage (DF703) before any checksum is looked at', async () => {
    for (const text of ['null', '7', '"a string"', 'true']) {
      const dir = tmp();
      const path = dir.file('run.journal.jsonl');
      twoBatchJournal(path);
      const lines = readFileSync(path, 'utf8').split('\n');
      lines.splice(1, 0, text);
      writeFileSync(path, lines.join('\n'));
      await refused(
        () => openJournal(path),
        'DF703',
        `${path}:2 is damaged (not a JSON object); the journal cannot be trusted, so nothing was restored`,
      );
    }
  });

  it.each<[string, (lines: Record<string, unknown>[]) => Record<string, unknown>[], string]>([
    [
      'a key that is not an object',
      (l) =>
        l.map((x) =>
          x.type === 'writes'
            ? { type: 'writes', seq: x.seq, count: x.count, writes: batchWrites(x).map((w) => ({ ...w, key: 'id=1' })) }
            : x,
        ),
      'a write without a valid seq, key or fields',
    ],
    [
      'one good field and one without a name',
      (l) =>
        l.map((x) =>
          x.type === 'writes'
            ? {
                type: 'writes',
                seq: x.seq,
                count: x.count,
                writes: batchWrites(x).map((w) => ({ ...w, fields: [...(w.fields as object[]), { before: 1, after: 2 }] })),
              }
            : x,
        ),
      'a write without a valid seq, key or fields',
    ],
    [
      'a write that is not an object',
      (l) => l.map((x) => (x.type === 'writes' ? { type: 'writes', seq: x.seq, count: 1, writes: [null] } : x)),
      'a write without a valid seq, key or fields',
    ],
    [
      'a field list of which one name is not text',
      (l) =>
        l.map((x) =>
          x.type === 'writes' && x.fields ? { ...x, fields: ['name', 7], rows: (x.rows as unknown[][]).map((r) => [...r, 1, 2]) } : x,
        ),
      'a writes line without a valid seq, count or writes',
    ],
    [
      'an outcome that is not an object',
      (l) => l.map((x) => (x.type === 'results' ? { ...x, count: 1, results: [null] } : x)),
      'an outcome for write undefined, which is not journaled before it',
    ],
    [
      'results that are not a list',
      (l) => l.map((x) => (x.type === 'results' ? { ...x, results: 'applied' } : x)),
      'a results line without a valid count or results',
    ],
    [
      'a writes line with seq 1.5',
      (l) => l.map((x) => (x.type === 'writes' ? { ...x, seq: 1.5 } : x)),
      'a writes line without a valid seq, count or writes',
    ],
  ])('%s (DF703)', async (_what, edit, why) => {
    const path = edited(edit);
    await refused(() => openJournal(path), 'DF703', `is damaged (${why})`);
  });

  it('per-write lines in a batched journal, and batch lines in an older one, are damage (DF703)', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const batched = jsonLines(path);
    const mixed = dir.write('mixed.jsonl', sealedJournalText([...batched.slice(0, 3), ...perRecordJournalLines(batched.slice(3))]));
    await refused(() => openJournal(mixed), 'DF703', `${mixed}:4 is damaged (a write line in a journal of format 5)`);
    const older = perRecordJournalLines(batched).map((l) => (l.type === 'header' ? { ...l, format: 4 } : l));
    const withBatch = dir.write('older.jsonl', sealedJournalText([...older.slice(0, 5), ...batched.slice(3)]));
    await refused(() => openJournal(withBatch), 'DF703', `${withBatch}:6 is damaged (a writes line in a journal of format 4)`);
  });

  it('a delete or create in a journal of format 3, which predates them, is damage (DF703); format 4 reads it', async () => {
    const dir = tmp();
    const lines: Record<string, unknown>[] = [
      { type: 'header', format: 3, ...HEADER },
      {
        type: 'write',
        seq: 1,
        action: 'delete',
        table: 'users',
        key: { id: 1 },
        fields: [{ name: 'id', before: 1, after: { $absent: true } }],
      },
      { type: 'result', seq: 1, status: 'applied' },
    ];
    const v3 = dir.write('v3.jsonl', sealedJournalText(lines));
    await refused(() => openJournal(v3), 'DF703', 'a write without a valid seq, key or fields');
    const v4 = dir.write('v4.jsonl', sealedJournalText([{ ...lines[0], format: 4 }, ...lines.slice(1)]));
    expect((await allWrites(v4)).map((x) => [x.seq, x.action, x.outcome])).toEqual([[1, 'delete', 'applied']]);
  });

  it('a format-2 journal (the first with checksums) is verified, and reopened it is continued with checksums', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const v2 = perRecordJournalLines(jsonLines(path).slice(0, -1)).map((l) => (l.type === 'header' ? { ...l, format: 2 } : l));
    writeFileSync(path, sealedJournalText(v2));
    expect(await openJournal(path)).toMatchObject({ verified: true, writeCount: 3, ended: false });
    const again = await JournalWriter.reopen(path);
    again.end(SUMMARY, true);
    again.close();
    // Every line, the appended ones too, still matches its checksum as sealed here.
    const after = readFileSync(path, 'utf8');
    expect(sealedJournalText(jsonLines(path))).toBe(after);
    expect(await openJournal(path)).toMatchObject({ verified: true, ended: true });
  });

  it('a format-1 journal (no checksums) reopened for a resume is continued without checksums, and still reads', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const v1 = perRecordJournalLines(jsonLines(path).slice(0, -1)).map((l) =>
      JSON.stringify(l.type === 'header' ? { ...l, format: 1 } : l),
    );
    writeFileSync(path, `${v1.join('\n')}\n`);
    const applied: unknown[] = [];
    const again = await JournalWriter.reopen(path, { onWrite: (key) => applied.push(key) });
    expect(applied).toEqual([{ id: 1 }]);
    const next = [update(4, null, 'Di'), update(5, null, 'Ed')];
    again.intend(next);
    again.settle(next, [{ status: 'applied' }, { status: 'applied' }]);
    again.close();
    expect(readFileSync(path, 'utf8')).not.toContain('"sum"');
    // Seqs number on from the last write, one per write of the batch.
    expect(
      jsonLines(path)
        .filter((l) => l.type === 'write')
        .map((l) => l.seq),
    ).toEqual([1, 2, 3, 4, 5]);
    expect(await openJournal(path)).toMatchObject({ verified: false, writeCount: 5 });
  });

  it('a journal that changes while undo reads it stops undo at the changed line (DF703); a torn last line is skipped', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    appendFileSync(path, '{"type":"writes","seq":4,"co');
    const reading = await openJournal(path);
    // Read back from the end: the torn line is skipped, the last batch comes first.
    const seen: number[] = [];
    for await (const w of reading.writes()) seen.push(w.seq);
    expect(seen).toEqual([3, 2, 1]);
    // Checked, then changed before the writes are read: line 2 (the first batch) is no longer JSON.
    const again = await openJournal(path);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[1] = '{"type":"writes"';
    writeFileSync(path, lines.join('\n'));
    const read: number[] = [];
    await refused(
      async () => {
        for await (const w of again.writes()) read.push(w.seq);
      },
      'DF703',
      `${path}:2 changed while undo was reading the journal`,
    );
    expect(read).toEqual([3]);
  });

  it('a directory where the journal should be is not readable as one (DF702)', async () => {
    const dir = tmp();
    await refused(() => openJournal(dir.path), 'DF702', `cannot read journal ${dir.path}: `);
  });

  it('writes of two tables, or a delete among updates, in one batch keep an entry per write', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const twoTables: WriteRequest[] = [
      update(1, null, 'Ada'),
      { table: 'admins', key: { id: 1 }, fields: [{ name: 'name', value: 'Ada', guard: 'absent', before: null }] },
    ];
    const withDelete: WriteRequest[] = [
      update(2, null, 'Bob'),
      { action: 'delete', table: 'users', key: { id: 3 }, fields: [{ name: 'name', value: undefined, guard: 'unchanged', before: 'Cy' }] },
    ];
    const partlyShared: WriteRequest[] = [
      {
        table: 'users',
        key: { id: 4 },
        fields: [
          { name: 'name', value: 'Di', guard: 'absent', before: null },
          { name: 'email', value: 'd@x', guard: 'absent', before: null },
        ],
      },
      {
        table: 'users',
        key: { id: 5 },
        fields: [
          { name: 'name', value: 'Ed', guard: 'absent', before: null },
          { name: 'phone', value: '5', guard: 'absent', before: null },
        ],
      },
    ];
    // The second write's fields are the first's without its last.
    const prefix: WriteRequest[] = [
      {
        table: 'users',
        key: { id: 6 },
        fields: [
          { name: 'name', value: 'Flo', guard: 'absent', before: null },
          { name: 'email', value: 'f@x', guard: 'absent', before: null },
        ],
      },
      update(7, null, 'Gus'),
    ];
    for (const batch of [twoTables, withDelete, partlyShared, prefix]) w.intend(batch);
    w.close();
    const writesLines = jsonLines(path).filter((l) => l.type === 'writes');
    expect(writesLines.map((l) => Array.isArray(l.writes) && !('rows' in l))).toEqual([true, true, true, true]);
    const back = (await allWrites(path)).reverse();
    expect(back.map((x) => [x.seq, x.table, x.action, x.key, x.fields.map((f) => f.name)])).toEqual([
      [1, 'users', undefined, { id: 1 }, ['name']],
      [2, 'admins', undefined, { id: 1 }, ['name']],
      [3, 'users', undefined, { id: 2 }, ['name']],
      [4, 'users', 'delete', { id: 3 }, ['name']],
      [5, 'users', undefined, { id: 4 }, ['name', 'email']],
      [6, 'users', undefined, { id: 5 }, ['name', 'phone']],
      [7, 'users', undefined, { id: 6 }, ['name', 'email']],
      [8, 'users', undefined, { id: 7 }, ['name']],
    ]);
  });
});

describe('reading a journal back from its end', () => {
  it('a journal far larger than one read chunk (64 KiB) gives every write back once, newest first, with its values', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    // 3 batches of 300 writes with 400-character values: about 400 KB, lines longer than a chunk.
    const value = (id: number) => `${String(id).padStart(6, '0')}-${'v'.repeat(393)}`;
    for (let b = 0; b < 3; b++) {
      const batch = Array.from({ length: 300 }, (_, i) => update(b * 300 + i + 1, null, value(b * 300 + i + 1)));
      w.intend(batch);
      w.settle(
        batch,
        batch.map(() => ({ status: 'applied' as const })),
      );
    }
    w.end(SUMMARY, false);
    w.close();
    expect(statSync(path).size).toBeGreaterThan(5 * 65_536);
    const writes = await allWrites(path);
    expect(writes.map((x) => x.seq)).toEqual(Array.from({ length: 900 }, (_, i) => 900 - i));
    for (const x of writes) expect(x.fields, String(x.seq)).toEqual([{ name: 'name', before: null, after: value(x.seq) }]);
    expect(writes.every((x) => x.outcome === 'applied')).toBe(true);
  });

  it('blank lines, which the check passes over, are passed over when the writes are read too', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.splice(3, 0, '', '   ');
    writeFileSync(path, lines.join('\n'));
    expect((await allWrites(path)).map((x) => [x.seq, x.outcome])).toEqual([
      [3, 'not written'],
      [2, 'not written'],
      [1, 'applied'],
    ]);
  });
});

describe('the journal of a target with one table, and more damage', () => {
  it('writes without a table (DynamoDB names none) are held as rows too, and read back without one', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    const w = JournalWriter.create(path, HEADER);
    const batch: WriteRequest[] = [1, 2].map((n) => ({
      key: { PK: `VIDEO#${n}` },
      fields: [{ name: 'thumb', value: `t${n}`, guard: 'absent', before: undefined }],
    }));
    w.intend(batch);
    w.settle(batch, [{ status: 'applied' }, { status: 'applied' }]);
    w.close();
    const line = jsonLines(path)[1];
    expect(line).toEqual(
      expect.objectContaining({
        fields: ['thumb'],
        rows: [
          [{ PK: 'VIDEO#1' }, { $absent: true }, 't1'],
          [{ PK: 'VIDEO#2' }, { $absent: true }, 't2'],
        ],
      }),
    );
    expect(line).not.toHaveProperty('table');
    const back = await allWrites(path);
    expect(back.map((x) => [x.seq, x.key, 'table' in x])).toEqual([
      [2, { PK: 'VIDEO#2' }, false],
      [1, { PK: 'VIDEO#1' }, false],
    ]);
    expect(back[0]?.fields).toEqual([{ name: 'thumb', before: undefined, after: 't2' }]);
  });

  it('a results line in a journal of format 4, and a result line in one of format 5, are damage (DF703)', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const batched = jsonLines(path);
    // Format 5, its first outcomes as a per-write line.
    const v5 = dir.write(
      'v5.jsonl',
      sealedJournalText([
        batched[0],
        batched[1],
        ...perRecordJournalLines([batched[2] as Record<string, unknown>]),
        ...batched.slice(3),
      ] as Record<string, unknown>[]),
    );
    await refused(() => openJournal(v5), 'DF703', `${v5}:3 is damaged (a result line in a journal of format 5)`);
    // Format 4, its first outcomes as a batch line.
    const older = perRecordJournalLines(batched).map((l) => (l.type === 'header' ? { ...l, format: 4 } : l));
    const v4 = dir.write('v4.jsonl', sealedJournalText([...older.slice(0, 3), batched[2] as Record<string, unknown>, ...older.slice(5)]));
    await refused(() => openJournal(v4), 'DF703', `${v4}:4 is damaged (a results line in a journal of format 4)`);
  });

  it('a writes line whose count disagrees with its rows is damage (DF703); a resumed run names what it did not do', async () => {
    const dir = tmp();
    const path = dir.file('run.journal.jsonl');
    twoBatchJournal(path);
    const lines = jsonLines(path).map((l) => (l.type === 'writes' && l.seq === 1 ? { ...l, count: 3 } : l));
    writeFileSync(path, sealedJournalText(lines));
    await refused(
      () => openJournal(path),
      'DF703',
      'is damaged (a writes line without a valid seq, count or writes); the journal cannot be trusted, so nothing was restored',
    );
    await refused(() => JournalWriter.reopen(path), 'DF703', 'the journal cannot be trusted, so the run was not resumed');
  });
});
