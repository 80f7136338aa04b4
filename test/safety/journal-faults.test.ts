/**
 * The journal under faults, and undo's checks: a journal that cannot be written (disk full, I/O
 * error, quota, file size limit) stops the run before any unjournaled write is sent; a torn last
 * line of any length is cut off on resume; undo checks the whole journal (every line, every
 * checksum) before its first restore, accounts for writes whose outcome was never recorded, and
 * restores only records that still hold what the run wrote at the moment of the restore.
 *
 * The file size limit is real (`ulimit -f` on the CLI process). ENOSPC, EIO and EDQUOT, which no
 * filesystem here produces on demand, are injected at the `writeSync`/`fsyncSync` seam only.
 */
import { appendFileSync, copyFileSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadPlan } from '../../src/api.js';
import { DatafixError } from '../../src/errors.js';
import { journalFs } from '../../src/safety/journal.js';
import { runPlanSafely } from '../../src/safety/session.js';
import { undoJournal } from '../../src/safety/undo.js';
import { runCli } from '../helpers/cli.js';
import { type RunningDynalite, rawClient, startDynalite } from '../helpers/dynalite.js';
import { type TempDir, useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dumpSqlite,
  dynamoEnv,
  generationIds,
  I2V_FIX,
  i2vSpecWithPageSize,
  journalResults,
  journalWrites,
  jsonLines,
  jsonSummary,
  perRecordJournalLines,
  pkOf,
  type RawItem,
  SYNC_FIX,
  scanRaw,
  sealedJournalText,
  seededTables,
  show,
  sqliteAll,
  sqliteExec,
  videoDataset,
} from './support.js';

const tmp = useTempDirs();
/** Preloaded into the CLI: killed (SIGKILL) half-way through a journal append. */
const KILL_MID_APPEND = fileURLToPath(new URL('../helpers/kill-mid-journal-append.mjs', import.meta.url));
/** Preloaded into the CLI: killed (SIGKILL) once a batch's journal line is durable, before its commit. */
const KILL_AFTER_SYNC = fileURLToPath(new URL('../helpers/kill-after-journal-sync.mjs', import.meta.url));
const shared = useTempDirs({ scope: 'file' });

afterEach(() => {
  vi.restoreAllMocks();
});

/** The keys of the journal's writes, in order (`id` for SQLite, `PK` for DynamoDB). */
function journaledKeys(journal: string, key: 'id' | 'PK'): string[] {
  return journalWrites(journal).map((l) => String((l.key as Record<string, unknown>)[key]));
}

/** A torn journal line as a crash mid-append leaves it: the first part of a batch's writes line, no newline. */
function tornWriteLine(seq: number, bytes: number): string {
  const line = JSON.stringify({
    type: 'writes',
    seq,
    count: 1,
    writes: [{ key: { id: 'torn' }, fields: [{ name: 'media_generation_id', before: null, after: 'x'.repeat(bytes) }] }],
  });
  return line.slice(0, bytes);
}

/** The SQLite fix pointed at `db` directly, so an in-process run needs no environment. */
function syncSpecFor(dir: TempDir, db: string): string {
  const text = readFileSync(SYNC_FIX, 'utf8');
  const edited = text.replace(/path: \$\{VEO3_DB_PATH:-[^}]*\}/, `path: '${db}'`);
  if (edited === text) throw new Error('could not point the sync spec at the test database');
  return dir.write('sync.yaml', edited);
}

/**
 * Makes the journal's `nth` line of `kind` (`writes`: a batch's before-images, `results`: its
 * outcomes) reach the disk only half written, and every journal write from then on fail with
 * `code`, as a filling disk does. By kind, not by position: where pages overlap, the next batch's
 * line may come before the outcomes of the one before it.
 */
function failJournalAppend(kind: 'writes' | 'results', nth: number, code: string): void {
  let seen = 0;
  let failed = false;
  vi.spyOn(journalFs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number) => {
    if (failed) throw Object.assign(new Error(`${code}: injected`), { code });
    if (
      buf
        .subarray(off, off + len)
        .toString('utf8')
        .startsWith(`{"type":"${kind}"`) &&
      ++seen === nth
    ) {
      failed = true;
      return writeSync(fd, buf, off, Math.max(1, Math.floor(len / 2)), pos);
    }
    return writeSync(fd, buf, off, len, pos);
  }) as typeof journalFs.writeSync);
}

describe('journal faults and undo checks on SQLite (fixes/sync-media-generation-ids.yaml)', () => {
  const ROWS = 600; // three pages of 200
  let template: string;
  let updatable: string[];
  /** The writes of the first page (the spec's 200 source rows): the first batch. */
  let firstBatch: string[];

  beforeAll(() => {
    template = shared().file('template.db');
    ({ updatable } = createGeneratedVeo3Db(template, ROWS));
    const firstPage = new Set(
      sqliteAll<{ id: string }>(
        template,
        'SELECT id FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL ORDER BY id LIMIT 200',
      ).map((r) => r.id),
    );
    firstBatch = updatable.filter((id) => firstPage.has(id));
  });

  function fresh() {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    return { dir, db, journal: dir.file('run.journal.jsonl'), spec: syncSpecFor(dir, db) };
  }

  /** Rows (by id) whose content differs between two dumps of the generations table. */
  function changedIds(before: ReturnType<typeof dumpSqlite>, after: ReturnType<typeof dumpSqlite>): string[] {
    const was = new Map((before.rows.veo3_video_generations ?? []).map((r) => [String(r.id), JSON.stringify(r, replacer)]));
    return (after.rows.veo3_video_generations ?? [])
      .filter((r) => was.get(String(r.id)) !== JSON.stringify(r, replacer))
      .map((r) => String(r.id))
      .sort();
  }
  const replacer = (_k: string, v: unknown) => (typeof v === 'bigint' ? v.toString() : v);

  it.each([
    ['ENOSPC', true],
    ['EIO', true],
    ['EDQUOT', true],
    ['ENOSPC', false],
  ] as const)(
    '%s on the second batch (pages overlap: %s): the run stops with DF704 before sending it; only journaled rows changed; undo restores all',
    async (code, overlapPages) => {
      const { dir, db, journal, spec } = fresh();
      const before = dumpSqlite(db);
      // The second batch's line: half of it reaches the disk, then every write fails.
      failJournalAppend('writes', 2, code);
      const run = runPlanSafely(loadPlan(spec), { dryRun: false, cwd: dir.path, specFile: spec, journalPath: journal, overlapPages });
      await expect(run).rejects.toThrow(DatafixError);
      const err = (await run.catch((e: unknown) => e)) as DatafixError;
      expect(err.code).toBe('DF704');
      expect(err.category).toBe('config');
      expect(err.message).toContain(`cannot write the journal ${journal}: `);
      expect(err.message).toContain(`(${code})`);
      // One page at a time, the first batch's outcomes are on disk before the second batch's
      // line fails. Where pages overlap, those outcomes are due after it and fail on the same
      // full disk: the first batch's error is the one told.
      const outcomes = journalResults(journal).length;
      if (!overlapPages) expect(err.message).toContain('none of its writes were sent');
      else expect(err.message).toMatch(/none of its writes were sent|The run stopped after a batch was written, before the next one/);
      expect(err.message).toContain(`then continue with --resume or undo with: datafix undo ${journal}`);
      vi.restoreAllMocks();

      // The half-written batch was cut off: every line is whole, and exactly the first batch is
      // journaled (with its outcomes, unless they came after the failure).
      const keys = journaledKeys(journal, 'id');
      expect(keys).toEqual(firstBatch);
      expect([firstBatch.length, ...(overlapPages ? [0] : [])]).toContain(outcomes);
      // The database: exactly the journaled rows changed, nothing else.
      expect(changedIds(before, dumpSqlite(db))).toEqual([...keys].sort());

      const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
      expect(undo.code, show(undo)).toBe(0);
      expect(jsonSummary(undo)).toMatchObject({
        total: firstBatch.length,
        restored: firstBatch.length,
        conflicts: 0,
        failed: 0,
        notWritten: 0,
      });
      const after = dumpSqlite(db);
      expect(after.rows.veo3_video_generations).toEqual(before.rows.veo3_video_generations);
      expect(after.rows.app_settings).toEqual(before.rows.app_settings);
    },
  );

  it('an fsync that fails (EIO) stops the run as well: nothing of that batch is sent', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = dumpSqlite(db);
    let syncs = 0;
    // 1 header, 2 the journal's directory, 3 first batch: the batch never becomes durable, so it
    // must never be sent.
    vi.spyOn(journalFs, 'fsyncSync').mockImplementation(() => {
      if (++syncs === 3) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
    });
    const run = runPlanSafely(loadPlan(spec), { dryRun: false, cwd: dir.path, specFile: spec, journalPath: journal });
    await expect(run).rejects.toThrow(/DF704|cannot write the journal/);
    const err = (await run.catch((e: unknown) => e)) as DatafixError;
    expect(err.code).toBe('DF704');
    expect(err.message).toContain('the disk reported an I/O error (EIO)');
    vi.restoreAllMocks();
    expect(journaledKeys(journal, 'id')).toEqual([]);
    expect(dumpSqlite(db)).toEqual(before);
  });

  it('outcome lines lost (the disk filled after a batch was sent): undo checks those rows against the database', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = dumpSqlite(db);
    const beforeIds = generationIds(db);
    // The first batch's outcomes: the batch is written, its outcomes never journaled.
    failJournalAppend('results', 1, 'ENOSPC');
    // One page at a time: where pages overlap, the second batch may be journaled and sent
    // before the first one's outcomes are written.
    const run = runPlanSafely(loadPlan(spec), { dryRun: false, cwd: dir.path, specFile: spec, journalPath: journal, overlapPages: false });
    await expect(run).rejects.toThrow(/after a batch was written/);
    vi.restoreAllMocks();
    const keys = journaledKeys(journal, 'id');
    expect(keys).toEqual(firstBatch);
    expect(journalResults(journal)).toEqual([]);
    expect(changedIds(before, dumpSqlite(db))).toEqual([...keys].sort());

    // Before undo: someone changes one of those rows, and one is already put back by hand.
    const [edited, putBack] = keys as [string, string];
    sqliteExec(db, "UPDATE veo3_video_generations SET media_generation_id = 'BY-HAND' WHERE id = ?", edited);
    const old = beforeIds.get(putBack);
    sqliteExec(
      db,
      'UPDATE veo3_video_generations SET media_generation_id = ?, updated_at = ? WHERE id = ?',
      old?.mgid,
      old?.updatedAt,
      putBack,
    );

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(1);
    expect(jsonSummary(undo)).toMatchObject({
      total: firstBatch.length,
      notWritten: 0,
      restored: firstBatch.length - 2,
      unchanged: 1,
      conflicts: 1,
      failed: 0,
    });
    expect(undo.stderr).toContain(
      `! conflict veo3_video_generations id=${edited} (the run stopped before recording this write; the record holds neither its before-image nor what the run wrote)`,
    );
    const ids = generationIds(db);
    for (const [id, was] of beforeIds) {
      if (id === edited) expect(ids.get(id)?.mgid).toBe('BY-HAND');
      else expect(ids.get(id), id).toEqual(was);
    }
  });

  it('the end line cannot be written after the last page: DF704; --resume goes over it again from the first page', async () => {
    const { dir, db, journal, spec } = fresh();
    // Every page is written and committed (and the target's checkpoint cleared); then the disk fills.
    vi.spyOn(journalFs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number, pos: number) => {
      if (buf.subarray(off, off + len).includes('"type":"end"')) throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
      return writeSync(fd, buf, off, len, pos);
    }) as typeof journalFs.writeSync);
    const run = runPlanSafely(loadPlan(spec), { dryRun: false, cwd: dir.path, specFile: spec, journalPath: journal });
    await expect(run).rejects.toThrow(/DF704|cannot write the journal/);
    vi.restoreAllMocks();
    const ids = generationIds(db);
    for (const id of updatable) expect(ids.get(id)?.mgid, id).toMatch(/^MG-/);

    // Not DF726 ("the database was replaced"): the run had finished every page.
    const resumed = await runPlanSafely(loadPlan(spec), { dryRun: false, cwd: dir.path, specFile: spec, resume: true });
    expect(resumed.summary).toMatchObject({ updated: 0, failed: 0 });
    expect(generationIds(db)).toEqual(ids);
    expect(jsonLines(journal).at(-1)).toMatchObject({ type: 'end', interrupted: false });
  });

  it('a torn last line longer than 64 KiB is cut off on resume; the resumed run finishes and undo restores everything', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = dumpSqlite(db);
    failJournalAppend('writes', 2, 'ENOSPC');
    await expect(runPlanSafely(loadPlan(spec), { dryRun: false, cwd: dir.path, specFile: spec, journalPath: journal })).rejects.toThrow(
      /DF704|cannot write the journal/,
    );
    vi.restoreAllMocks();
    // What a crash in the middle of appending a record with a 200 KB value leaves behind.
    appendFileSync(journal, tornWriteLine(firstBatch.length + 1, 200_000));

    const resumed = runPlanSafely(loadPlan(spec), { dryRun: false, cwd: dir.path, specFile: spec, resume: true });
    const result = await resumed;
    expect(result.summary.failed).toBe(0);
    // The fragment is gone; the resume line follows the last whole line.
    const text = readFileSync(journal, 'utf8');
    expect(text).not.toContain('"torn"');
    expect(journaledKeys(journal, 'id')).toEqual(updatable);
    const ids = generationIds(db);
    for (const id of updatable) expect(ids.get(id)?.mgid, id).toMatch(/^MG-/);

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ total: updatable.length, restored: updatable.length, conflicts: 0 });
    const after = dumpSqlite(db);
    expect(after.rows.veo3_video_generations).toEqual(before.rows.veo3_video_generations);
  });

  it('a run killed in the middle of a journal append (half the line on disk) resumes after cutting the torn line off; undo restores its writes', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = dumpSqlite(db);
    // Killed with half of the second batch's line written.
    const killed = await runCli(['run', spec, '--journal', journal, '--json'], {
      cwd: dir.path,
      env: { NODE_OPTIONS: `--import=${KILL_MID_APPEND}`, DATAFIX_TEST_JOURNAL_KILL_AT: 'writes:2' },
    });
    expect(killed.code, show(killed)).toBe(137);
    const torn = readFileSync(journal, 'utf8');
    expect(torn.endsWith('\n'), 'the kill left a torn last line').toBe(false);
    expect(torn.slice(torn.lastIndexOf('\n') + 1)).toMatch(new RegExp(`^\\{"type":"writes","seq":${firstBatch.length + 1},`));
    // The torn batch was never sent. The first one is committed whole, or (where pages overlap
    // and its COMMIT was still running) rolled back whole.
    const committed = changedIds(before, dumpSqlite(db));
    expect([[], [...firstBatch].sort()]).toContainEqual(committed);
    // Meanwhile the application fills every row the run had not reached: the resumed run has
    // nothing left to write, so its few lines are far shorter than the torn fragment.
    sqliteExec(db, "UPDATE veo3_video_generations SET media_generation_id = 'APP-' || id WHERE media_generation_id IS NULL");
    const filled = dumpSqlite(db);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(jsonSummary(resumed)).toMatchObject({ updated: 0, failed: 0 });
    // The fragment was cut off: every line is whole, and the journal holds the first batch alone.
    const text = readFileSync(journal, 'utf8');
    expect(text.endsWith('\n'), 'the journal ends in a whole line').toBe(true);
    for (const line of text.trimEnd().split('\n')) expect(() => JSON.parse(line), line.slice(0, 80)).not.toThrow();
    expect(journaledKeys(journal, 'id').sort()).toEqual([...firstBatch].sort());

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    if (committed.length > 0) {
      expect(undo.code, show(undo)).toBe(0);
      expect(jsonSummary(undo)).toMatchObject({ total: firstBatch.length, restored: firstBatch.length, conflicts: 0, failed: 0 });
    } else {
      // Rolled back, then filled by the application: undo leaves the application's values.
      expect(undo.code, show(undo)).toBe(1);
      expect(jsonSummary(undo)).toMatchObject({ total: firstBatch.length, restored: 0, conflicts: firstBatch.length, failed: 0 });
    }
    // The run's writes are undone; the application's are kept.
    expect(changedIds(before, dumpSqlite(db))).toEqual(changedIds(before, filled).filter((id) => !committed.includes(id)));
  });

  /** A finished live run through the CLI; returns the dump after it. */
  async function liveRun(dir: TempDir, journal: string, spec: string, db: string) {
    const run = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path });
    expect(run.code, show(run)).toBe(0);
    return dumpSqlite(db);
  }

  it('killed between a batch’s durable journal line and its commit, then resumed: undo --dry-run says exactly what undo then does', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = dumpSqlite(db);
    // fsyncs: 1 the header, 2 its directory, 3 the first batch, 4 the second: killed right after.
    const killed = await runCli(['run', spec, '--journal', journal], {
      cwd: dir.path,
      env: { NODE_OPTIONS: `--import=${KILL_AFTER_SYNC}`, DATAFIX_TEST_JOURNAL_KILL_AFTER_SYNC: '4' },
    });
    expect(killed.code, show(killed)).toBe(137);
    // SQLite rolled the second batch back, and the first one too where pages overlap and its
    // COMMIT was still running: a batch's rows change all together or not at all.
    const committed = changedIds(before, dumpSqlite(db));
    expect([[], [...firstBatch].sort()]).toContainEqual(committed);
    const inFlight = journaledKeys(journal, 'id').length - committed.length;
    expect(inFlight).toBeGreaterThan(0);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path });
    expect(resumed.code, show(resumed)).toBe(0);

    const counts = (r: Awaited<ReturnType<typeof runCli>>) => {
      const { total, restored, unchanged, conflicts, failed, notWritten } = jsonSummary(r);
      return { total, restored, unchanged, conflicts, failed, notWritten };
    };
    const preview = await runCli(['undo', journal, '--dry-run', '--json'], { cwd: dir.path });
    expect(preview.code, show(preview)).toBe(0);
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    // The writes the killed run journaled but never committed: the resumed run wrote those rows
    // again, undo restores that newer write first, and they then hold their before-image.
    expect(counts(undo)).toMatchObject({ unchanged: inFlight, conflicts: 0, failed: 0 });
    expect(counts(preview)).toEqual(counts(undo));
    expect(dumpSqlite(db).rows.veo3_video_generations).toEqual(before.rows.veo3_video_generations);
  });

  it('killed while writing the end line, after the run cleared its checkpoint in the database: --resume goes over it from the first page', async () => {
    const { dir, db, journal, spec } = fresh();
    // The end line (after a writes and a results line for each of the 3 pages): half of it is
    // written, then the process is killed.
    const killed = await runCli(['run', spec, '--journal', journal], {
      cwd: dir.path,
      env: { NODE_OPTIONS: `--import=${KILL_MID_APPEND}`, DATAFIX_TEST_JOURNAL_KILL_AT: 'end:1' },
    });
    expect(killed.code, show(killed)).toBe(137);
    expect(readFileSync(journal, 'utf8')).toMatch(/\{"type":"end"[^\n]*$/);
    // Every page was done: the database holds no checkpoint any more.
    expect(sqliteAll(db, "SELECT name FROM sqlite_master WHERE name = '_datafix_checkpoints'")).toEqual([]);
    const fixed = dumpSqlite(db);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(resumed.stderr).toContain(`resuming from the first page: sqlite ${db} holds no checkpoint of this run`);
    expect(jsonSummary(resumed)).toMatchObject({ updated: 0, failed: 0 });
    expect(dumpSqlite(db).rows.veo3_video_generations).toEqual(fixed.rows.veo3_video_generations);
  });

  it('a damaged line in the middle: undo refuses before its first restore and says nothing was restored', async () => {
    const { dir, db, journal, spec } = fresh();
    const afterRun = await liveRun(dir, journal, spec, db);
    const lines = readFileSync(journal, 'utf8').split('\n');
    const middle = Math.floor(lines.length / 2);
    const original = lines[middle] as string;
    lines[middle] = original.slice(0, 40);
    writeFileSync(journal, lines.join('\n'));

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(2);
    expect(undo.stderr).toContain(
      `error DF703: ${journal}:${middle + 1} is damaged (not a complete JSON line); the journal cannot be trusted, so nothing was restored (undo checks the whole journal before writing anything)`,
    );
    expect(jsonSummary(undo)).toMatchObject({ error: { code: 'DF703' } });
    expect(dumpSqlite(db)).toEqual(afterRun);

    // Mended, the same journal undoes completely.
    lines[middle] = original;
    writeFileSync(journal, lines.join('\n'));
    const again = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(again.code, show(again)).toBe(0);
    expect(jsonSummary(again)).toMatchObject({ restored: updatable.length, conflicts: 0 });
  });

  /** Edits the journal line of updatable[10] to name updatable[11] instead; returns its index. */
  function pointKeyElsewhere(lines: string[]): number {
    const index = lines.findIndex((l) => l.includes(`"id":"${updatable[10]}"`));
    lines[index] = (lines[index] as string).replace(`"id":"${updatable[10]}"`, `"id":"${updatable[11]}"`);
    return index;
  }

  it('a hand-edited key (pointing at another record) fails its checksum: undo refuses, nothing restored', async () => {
    const { dir, db, journal, spec } = fresh();
    const afterRun = await liveRun(dir, journal, spec, db);
    const lines = readFileSync(journal, 'utf8').split('\n');
    const index = pointKeyElsewhere(lines);
    writeFileSync(journal, lines.join('\n'));

    const undo = await runCli(['undo', journal], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(2);
    expect(undo.stderr).toContain(
      `error DF705: ${journal}:${index + 1} does not match its checksum: it was edited, moved, or copied from another journal, so nothing was restored`,
    );
    expect(dumpSqlite(db)).toEqual(afterRun);
  });

  it('a removed outcome line breaks the chain too: undo refuses, nothing restored', async () => {
    const { dir, db, journal, spec } = fresh();
    const afterRun = await liveRun(dir, journal, spec, db);
    const lines = readFileSync(journal, 'utf8').split('\n');
    const index = lines.findIndex((l) => l.startsWith('{"type":"results"'));
    expect(index).toBeGreaterThan(0);
    lines.splice(index, 1);
    writeFileSync(journal, lines.join('\n'));
    const undo = await runCli(['undo', journal], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(2);
    expect(undo.stderr).toContain(`error DF705: ${journal}:${index + 1} does not match its checksum`);
    expect(dumpSqlite(db)).toEqual(afterRun);
  });

  it('a header edited to format 1, which has no checksums, to hide an edited key: undo refuses, nothing restored', async () => {
    const { dir, db, journal, spec } = fresh();
    const afterRun = await liveRun(dir, journal, spec, db);
    const lines = readFileSync(journal, 'utf8').split('\n');
    lines[0] = (lines[0] as string).replace(/"format":\d+/, '"format":1');
    pointKeyElsewhere(lines);
    writeFileSync(journal, lines.join('\n'));
    const undo = await runCli(['undo', journal], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(2);
    expect(undo.stderr).toContain(
      `error DF705: ${journal}:1 carries a checksum, but the header says format 1, which has none: the header was edited, so nothing was restored`,
    );
    expect(dumpSqlite(db)).toEqual(afterRun);
  });

  it('a journal cut short at a line boundary: undo says it has no end line and restores every write it holds', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = dumpSqlite(db);
    await liveRun(dir, journal, spec, db);
    const lines = readFileSync(journal, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    // The end line and the outcomes of the last batch go: no checksum can tell this from a kill.
    let cut = lines.length - 1;
    while (cut > 0 && !(lines[cut - 1] as string).startsWith('{"type":"writes"')) cut--;
    expect(lines.length - cut).toBeGreaterThan(1);
    writeFileSync(journal, `${lines.slice(0, cut).join('\n')}\n`);
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(undo.stderr).toContain(
      `note: ${journal} has no end line: the run was stopped (killed, interrupted, out of disk) or the journal was cut short. Undo restores every write the journal holds; if lines were cut from its end, the writes they recorded are not restored`,
    );
    // The writes whose outcomes were cut are checked against the database, and restored too.
    expect(jsonSummary(undo)).toMatchObject({ restored: updatable.length, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db).rows.veo3_video_generations).toEqual(before.rows.veo3_video_generations);
  });

  it.each([
    [
      'a writes line whose count disagrees with its writes',
      (lines: Record<string, unknown>[]) => {
        const i = lines.findIndex((l) => l.type === 'writes');
        lines[i] = { ...lines[i], count: (lines[i]?.count as number) + 1 };
      },
      'a writes line without a valid seq, count or writes',
    ],
    [
      'a line per write (the format-4 kind) in a format-5 journal',
      (lines: Record<string, unknown>[]) => {
        const i = lines.findIndex((l) => l.type === 'writes');
        lines.splice(i, 1, ...perRecordJournalLines([lines[i] as Record<string, unknown>]));
      },
      'a write line in a journal of format 5',
    ],
    [
      'a results line for a write no line journaled',
      (lines: Record<string, unknown>[]) => {
        const i = lines.findIndex((l) => l.type === 'results');
        lines[i] = { ...lines[i], count: 1, results: [{ seq: 999_999, status: 'applied' }] };
      },
      'an outcome for write 999999, which is not journaled before it',
    ],
  ])('%s, checksums made to match: undo refuses it as damaged (DF703), nothing restored', async (_what, edit, why) => {
    const { dir, db, journal, spec } = fresh();
    const afterRun = await liveRun(dir, journal, spec, db);
    const lines = jsonLines(journal);
    edit(lines);
    writeFileSync(journal, sealedJournalText(lines));
    const undo = await runCli(['undo', journal], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(2);
    expect(undo.stderr).toMatch(new RegExp(`error DF703: ${journal}:\\d+ is damaged \\(${why.replace(/[()]/g, '\\$&')}\\)`));
    expect(dumpSqlite(db)).toEqual(afterRun);
  });

  it('a format-1 journal (no checksums) is undone only with --unverified (DF707 without), with a note that it could not be verified', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = dumpSqlite(db);
    await liveRun(dir, journal, spec, db);
    // Format 1 as older datafix versions wrote it: a line per write and per outcome, no `sum`.
    const v1 = perRecordJournalLines(jsonLines(journal)).map((l) => JSON.stringify(l.type === 'header' ? { ...l, format: 1 } : l));
    const old = dir.file('v1.journal.jsonl');
    writeFileSync(old, `${v1.join('\n')}\n`);
    // Edited and stripped of its checksums, a journal reads the same: the user must vouch for it.
    const afterRun = dumpSqlite(db);
    const refused = await runCli(['undo', old, '--json'], { cwd: dir.path });
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain(`error DF707: ${old} is a format-1 journal: its lines carry no checksums`);
    expect(refused.stderr).toContain('run undo again with --unverified');
    expect(dumpSqlite(db)).toEqual(afterRun);
    const undo = await runCli(['undo', old, '--unverified', '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(undo.stderr).toContain(
      `note: ${old} is a format-1 journal (written before journals carried checksums): its lines cannot be verified against edits, so undo trusts them as written`,
    );
    expect(undo.stderr).not.toContain('has no end line');
    expect(jsonSummary(undo)).toMatchObject({ restored: updatable.length, conflicts: 0 });
    expect(dumpSqlite(db).rows.veo3_video_generations).toEqual(before.rows.veo3_video_generations);
  });

  it('a record changed between undo reading it and writing its restore keeps the other writer’s value (conflict)', async () => {
    const { dir, db, journal, spec } = fresh();
    const before = generationIds(db);
    await liveRun(dir, journal, spec, db);
    let target = '';
    const summary = await undoJournal(journal, {
      dryRun: false,
      beforeRestore: (writes) => {
        if (target) return;
        target = String(writes[0]?.key.id);
        // Another application, on its own connection, in the window between read and write.
        const other = new Database(db);
        try {
          other.prepare("UPDATE veo3_video_generations SET media_generation_id = 'OTHER-WRITER' WHERE id = ?").run(target);
        } finally {
          other.close();
        }
      },
    });
    expect(summary).toMatchObject({ total: updatable.length, restored: updatable.length - 1, conflicts: 1, failed: 0 });
    expect(updatable).toContain(target);
    const ids = generationIds(db);
    expect(ids.get(target)?.mgid).toBe('OTHER-WRITER');
    for (const [id, was] of before) if (id !== target) expect(ids.get(id), id).toEqual(was);
  });
});

describe('journal faults and undo checks on DynamoDB (fixes/i2v-thumbnails.yaml)', () => {
  let dynamo: RunningDynalite;
  const VIDEOS = 250;
  let data: ReturnType<typeof videoDataset>;

  beforeAll(async () => {
    dynamo = await startDynalite();
    data = videoDataset(VIDEOS);
  });
  afterAll(async () => {
    await dynamo?.stop();
  });

  const freshTable = seededTables(
    () => dynamo.endpoint,
    () => data.items,
    'media-jfault',
  );

  const changedPks = (before: RawItem[], after: RawItem[]) => {
    const was = new Map(before.map((i) => [pkOf(i), JSON.stringify(i)]));
    return after
      .filter((i) => was.get(pkOf(i)) !== JSON.stringify(i))
      .map(pkOf)
      .sort();
  };

  /**
   * The i2v fix reading 20 videos a page: each page's journal batch is a few KiB, so a 24 KiB
   * limit lets the first batches in and stops a later one (the shipped 200 would not fit once).
   */
  const smallPagesSpec = (dir: TempDir): string => i2vSpecWithPageSize(dir, 20);

  /** A live run whose journal hits a real 24 KiB file size limit part-way (exit 2, DF704). */
  async function runIntoFileSizeLimit(dir: TempDir, env: Record<string, string | undefined>, journal: string, spec: string) {
    const run = await runCli(['run', spec, '--journal', journal], { cwd: dir.path, env, fileSizeLimitKiB: 24 });
    expect(run.code, show(run)).toBe(2);
    expect(run.stderr).toContain(`error DF704: cannot write the journal ${journal}: the file size limit was reached (EFBIG).`);
    expect(run.stderr).toContain(`datafix undo ${journal}`);
    expect(statSync(journal).size).toBeLessThanOrEqual(24 * 1024);
    return run;
  }

  it('an fsync that fails (EIO) on the first batch stops the run before any of its writes is sent: no item changed', async () => {
    const table = await freshTable();
    const dir = tmp();
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('i2v.journal.jsonl');
    // 1 header, 2 the journal's directory, 3 the first batch: DynamoDB makes each write durable
    // as it lands, so nothing of that batch may be sent.
    let syncs = 0;
    const { fsyncSync } = journalFs;
    vi.spyOn(journalFs, 'fsyncSync').mockImplementation((fd) => {
      if (++syncs === 3) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
      fsyncSync(fd);
    });
    const spec = smallPagesSpec(dir);
    const run = runPlanSafely(loadPlan(spec, { env: dynamoEnv(table, dynamo.endpoint) }), {
      dryRun: false,
      cwd: dir.path,
      specFile: spec,
      journalPath: journal,
    });
    const err = (await run.catch((e: unknown) => e)) as DatafixError;
    expect(err).toBeInstanceOf(DatafixError);
    expect(err.code).toBe('DF704');
    expect(err.message).toContain('the disk reported an I/O error (EIO)');
    vi.restoreAllMocks();
    expect(syncs).toBe(3);
    expect(journaledKeys(journal, 'PK')).toEqual([]);
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
  });

  it('a journal that hits the file size limit stops the run: only journaled items changed, undo restores all', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, dynamo.endpoint);
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('i2v.journal.jsonl');
    await runIntoFileSizeLimit(dir, env, journal, smallPagesSpec(dir));

    const keys = journaledKeys(journal, 'PK');
    // Some batches made it, the one that did not fit was never sent.
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.length).toBeLessThan(data.updatable.length);
    expect(changedPks(before, await scanRaw(dynamo.endpoint, table))).toEqual([...keys].sort());

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path, env });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ total: keys.length, restored: keys.length, conflicts: 0, failed: 0 });
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
  });

  it('after the file size limit and a torn 200 KB last line, --resume finishes the run and undo restores all', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, dynamo.endpoint);
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('i2v.journal.jsonl');
    const spec = smallPagesSpec(dir);
    await runIntoFileSizeLimit(dir, env, journal, spec);
    const journaled = journaledKeys(journal, 'PK').length;
    appendFileSync(journal, tornWriteLine(journaled + 1, 200_000));

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(readFileSync(journal, 'utf8')).not.toContain('"torn"');
    expect(journaledKeys(journal, 'PK').sort()).toEqual([...data.updatable].sort());
    expect(changedPks(before, await scanRaw(dynamo.endpoint, table))).toEqual([...data.updatable].sort());

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path, env });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: data.updatable.length, conflicts: 0, failed: 0 });
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
  });

  it('an item changed between undo reading it and writing its restore keeps the other writer’s value (conflict)', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, dynamo.endpoint);
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('i2v.journal.jsonl');
    const run = await runCli(['run', I2V_FIX, '--journal', journal], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);

    let target = '';
    const client = rawClient(dynamo.endpoint);
    try {
      const summary = await undoJournal(journal, {
        dryRun: false,
        beforeRestore: async (writes) => {
          if (target) return;
          target = String(writes[0]?.key.PK);
          await client.send(
            new UpdateItemCommand({
              TableName: table,
              Key: { PK: { S: target }, SK: { S: 'METADATA' } },
              UpdateExpression: 'SET thumbnailUrl = :v',
              ExpressionAttributeValues: { ':v': { S: 'https://other-writer.example/x.jpg' } },
            }),
          );
        },
      });
      expect(summary).toMatchObject({ total: data.updatable.length, restored: data.updatable.length - 1, conflicts: 1, failed: 0 });
    } finally {
      client.destroy();
    }
    expect(data.updatable).toContain(target);
    const after = await scanRaw(dynamo.endpoint, table);
    expect(after.find((i) => pkOf(i) === target)?.thumbnailUrl).toEqual({ S: 'https://other-writer.example/x.jpg' });
    expect(after.filter((i) => pkOf(i) !== target)).toEqual(before.filter((i) => pkOf(i) !== target));
  });
});
