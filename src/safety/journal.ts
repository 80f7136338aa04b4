/**
 * The run journal: one JSON line per event, appended and fsynced. Every write's before-image is
 * on disk before the write is sent, so whatever happens to the process, `datafix undo` knows
 * what each touched field held. Values are exact: DynamoDB big numbers, sets and binary, and
 * SQLite integers beyond 2^53 are tagged (`$number`, `$set`, `$binary`), absent fields `$absent`.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { WriteRequest, WriteResult } from '../adapters/types.js';
import type { RunSummary } from '../engine/events.js';
import type { WriteJournal } from '../engine/run.js';
import { DatafixError } from '../errors.js';
import type { TargetPlan, WriteAction } from '../plan/types.js';
import { toJsonSafe } from '../plan/values.js';
import { chainSum, decodeValue, encodeValue, endOfLastCompleteLine, readTextLines, SUM_SUFFIX, splitSum, withSum } from './jsonl.js';
import { writeFully } from './write-fully.js';

/**
 * 5: one line per batch: a `writes` line holds every write of a batch (numbered on from its
 * `seq`) and a `results` line every outcome of one. Per-record lines cost a JSON document and a
 * checksum each; a light fix spent a fifth of its run on them (docs/performance.md). Deletes
 * and creates as in 4. A datafix that reads only formats 1–4 refuses these journals.
 * 4: as 3; a write line may carry `action` (`delete`: the record was deleted and its fields are
 * its whole before-image; `create`: it was created from its fields). Written only by fixes that
 * delete or create, so a datafix that reads formats 1–3 refuses such a journal rather than
 * undoing a delete as an update.
 * 3: as 2; a map that has the shape of a value tag (one key starting with `$`) is written as
 * `{ "$map": {...} }`. A datafix that reads only formats 1 and 2 would restore such a map as the
 * wrapper itself, so it refuses these journals instead.
 * 2: every line carries `sum`, a checksum chained from the header (see `chainSum`), so an edited,
 * moved, removed or foreign line is detected before undo writes anything.
 * 1: no checksums; still readable and undoable, without that verification.
 * Journals of formats 1–4 are still continued on resume in their own format.
 */
export const JOURNAL_FORMAT = 5;
/** The first format whose writes may delete or create records. */
export const JOURNAL_FORMAT_WHOLE_RECORDS = 4;
/** The first format that journals a batch on one line. */
const JOURNAL_FORMAT_BATCHED = 5;
/** Formats this version reads (and continues on resume). */
const READABLE_FORMATS = [1, 2, 3, 4, 5];

export interface JournalHeader {
  readonly type: 'header';
  readonly format: number;
  readonly fix: string;
  readonly specFile: string;
  readonly specChecksum: string;
  readonly target: TargetPlan;
  /** The run this journal belongs to (resume checks it); absent in journals of saved-plan applies. */
  readonly runId?: string;
  /** The directory whose `.datafix/` holds the run's state, so undo of a copy still finds it. */
  readonly stateDir?: string;
  readonly startedAt: string;
  readonly datafixVersion: string;
}

export interface JournalField {
  readonly name: string;
  /** What the field held before; `undefined` when it was absent. */
  readonly before: unknown;
  readonly after: unknown;
}

export interface JournalWrite {
  readonly seq: number;
  /** Absent: an update of `fields`. `delete`/`create`: the whole record was deleted/created. */
  readonly action?: WriteAction;
  readonly table?: string;
  readonly key: Record<string, unknown>;
  readonly fields: readonly JournalField[];
  /**
   * `applied`: the run recorded the write as made. `unknown`: the run stopped (crash, journal
   * write failure) between sending it and recording its outcome. `not written`: the run recorded
   * that the backend did not make it (conflict, not found, failed).
   */
  readonly outcome: 'applied' | 'unknown' | 'not written';
  /** A create the backend reported with the whole record as stored (SQLite): see `WriteResult`. */
  readonly stored?: Record<string, unknown>;
}

/** One write as journaled: the record's key and, per field, its before-image and new value. */
interface WriteEntry {
  action?: WriteAction;
  table?: string;
  key: unknown;
  fields: { name: string; before: unknown; after: unknown }[];
}

/** One write's outcome as journaled; `stored`: a created record as the backend stored it. */
interface ResultEntry {
  seq: number;
  status: WriteResult['status'];
  stored?: unknown;
}

type Line =
  | JournalHeader
  // Formats 1–4: a line per write and per outcome.
  | ({ type: 'write'; seq: number } & WriteEntry)
  | ({ type: 'result' } & ResultEntry)
  // Format 5: a line per batch; its writes are numbered seq, seq + 1, …; `count` is the number
  // of writes, up front so that a reader that only counts (`datafix runs`) parses no values.
  // Either `writes` (an entry per write) or, where every write of the batch updates the same
  // fields of the same table, `table`, `fields` (their names) and `rows`: per write its key, then
  // each field's before-image and new value, in the order of `fields`.
  | { type: 'writes'; seq: number; count: number; writes?: WriteEntry[]; table?: string; fields?: string[]; rows?: unknown[][] }
  | { type: 'results'; count: number; results: ResultEntry[] }
  | { type: 'resume'; at: string }
  | { type: 'end'; at: string; summary: RunSummary; interrupted: boolean };

/**
 * The file operations the journal's durability rests on. Tests replace them to produce the
 * faults no real filesystem here produces on demand (ENOSPC, EIO, EDQUOT); nothing else does.
 */
export const journalFs = { writeSync, fsyncSync };

/**
 * Makes a new journal's directory entry durable: fsyncs its directory and, when mkdir created
 * directories for it (`firstCreated`, the topmost one), each of those and the directory above
 * them. Without it a power loss can keep the target's writes (SQLite fsyncs its own files) and
 * lose the journal's name, and with it every before-image (fsync(2): "Calling fsync() does not
 * necessarily ensure that the entry in the directory containing the file has also reached disk.
 * For that an explicit fsync() on a file descriptor for the directory is also needed").
 * A file system that cannot fsync a directory (EINVAL, ENOTSUP) is left as it is.
 * @throws the file system's error otherwise (EIO, ENOSPC), for the caller to report.
 */
function syncDirectories(dir: string, firstCreated: string | undefined): void {
  const dirs = [dir];
  if (firstCreated !== undefined) {
    for (let d = dir; d !== firstCreated && dirname(d) !== d; d = dirname(d)) dirs.push(dirname(d));
    dirs.push(dirname(firstCreated));
  }
  for (const d of dirs) {
    const fd = openSync(d, 'r');
    try {
      journalFs.fsyncSync(fd);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * DF728: the journal at `path` ends at write `lastSeq`, but the interrupted run had journaled
 * `recordedSeq` by its last checkpoint (in the state file, or committed inside the target): lines
 * were cut from its end, at a line boundary that no checksum shows.
 */
export function journalCutError(path: string, lastSeq: number, recordedSeq: number): DatafixError {
  return new DatafixError(
    'usage',
    'DF728',
    `the journal ${path} holds writes up to ${lastSeq}, but the interrupted run had journaled ${recordedSeq} by its last checkpoint: lines were cut from its end, and the writes on them could not be undone. Nothing was resumed. Restore the journal from a copy and resume, or undo what it holds and run without --resume`,
  );
}

/** DF704: the disk did not take the journal at `path` (`err`, from write or fsync), at `stage` of the run. */
function journalDiskError(path: string, err: unknown, stage: string, again = RUN_AGAIN): DatafixError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const cause = DISK_CODES[code] ?? (err as Error).message;
  return new DatafixError(
    'config',
    'DF704',
    `cannot write the journal ${path}: ${cause}. The run stopped ${stage}; every write made so far is journaled and can be undone. Free space (or raise the limit), then ${again} or undo with: datafix undo ${path}`,
  );
}

/** How a stopped run goes on (its journal's header has a run id). */
const RUN_AGAIN = 'continue with --resume';
/** How a stopped apply of a saved plan goes on: the same apply, which leaves what it wrote as drifted. */
const APPLY_AGAIN = 'apply the plan again';

/** Errors that mean the disk cannot take the journal: the run must stop before writing data. */
const DISK_CODES: Record<string, string> = {
  ENOSPC: 'the disk is full (ENOSPC)',
  EDQUOT: 'the disk quota is exhausted (EDQUOT)',
  EIO: 'the disk reported an I/O error (EIO)',
  EFBIG: 'the file size limit was reached (EFBIG)',
};

/** A write request as journaled: its key and every field's before-image and new value, tagged exactly. */
function writeEntry(r: WriteRequest): WriteEntry {
  const e: WriteEntry = {
    key: toJsonSafe(r.key),
    fields: r.fields.map((f) => ({ name: f.name, before: encodeValue(f.before), after: encodeValue(f.value) })),
  };
  // Key order as in formats 1–4 (`action`, `table`, `key`, `fields`), so the lines read alike.
  return r.action || r.table !== undefined
    ? { ...(r.action ? { action: r.action } : {}), ...(r.table !== undefined ? { table: r.table } : {}), ...e }
    : e;
}

/**
 * A batch's `writes` line (format 5): rows under shared field names when every write updates
 * the same fields of the same table, as nearly every batch of a fix does (a light fix's journal
 * took 15 MiB instead of 27 per 100k writes, with one object per write less to build), else an
 * entry per write.
 */
function writesLine(seq: number, requests: readonly WriteRequest[]): Line {
  const head = requests[0] as WriteRequest;
  const names = head.fields.map((f) => f.name);
  const uniform = requests.every(
    (r) => !r.action && r.table === head.table && r.fields.length === names.length && r.fields.every((f, j) => f.name === names[j]),
  );
  if (!uniform) return { type: 'writes', seq, count: requests.length, writes: requests.map(writeEntry) };
  const rows = requests.map((r) => {
    const row: unknown[] = [toJsonSafe(r.key)];
    for (const f of r.fields) row.push(encodeValue(f.before), encodeValue(f.value));
    return row;
  });
  return { type: 'writes', seq, count: requests.length, ...(head.table !== undefined ? { table: head.table } : {}), fields: names, rows };
}

/**
 * The writes of a `writes` line, in either of its shapes; undefined when it holds neither in
 * full (a row of the wrong width, a field name that is not text).
 */
function batchEntries(line: Extract<Line, { type: 'writes' }>): WriteEntry[] | undefined {
  if (Array.isArray(line.writes)) return line.writes;
  const { table, fields, rows } = line;
  if (!Array.isArray(fields) || !Array.isArray(rows) || (table !== undefined && typeof table !== 'string')) return undefined;
  if (!fields.every((name) => typeof name === 'string')) return undefined;
  const width = 1 + 2 * fields.length;
  const entries: WriteEntry[] = [];
  for (const row of rows) {
    if (!Array.isArray(row) || row.length !== width) return undefined;
    entries.push({
      ...(table !== undefined ? { table } : {}),
      key: row[0],
      fields: fields.map((name, j) => ({ name, before: row[1 + 2 * j], after: row[2 + 2 * j] })),
    });
  }
  return entries;
}

/** Appends to a journal; every `intend` is durable before it returns, or it throws. */
export class JournalWriter implements WriteJournal {
  private readonly fd: number;
  private seq = 0;

  /** The number of the last write journaled so far (0 before the first). */
  get lastSeq(): number {
    return this.seq;
  }
  /**
   * The seq of each write of the batches that may still be settled: the last one, and the one
   * before it, which a pipelined run settles after journaling the next (`settle` may come once
   * per attempt, for the writes a throttled attempt left). Plain Maps, one per batch: a
   * WeakMap's ephemeron bookkeeping cost more than the journal line itself.
   */
  private seqOf: Map<WriteRequest, number>[] = [];
  /** Bytes known to be complete lines on disk: a failed append is cut back to here. */
  private size: number;
  /** The last line's checksum (format 2); undefined for a format-1 journal, which has none. */
  private lastSum: string | undefined;
  /** A line per batch (format 5), or a line per write and per outcome (a resumed older journal). */
  private readonly batched: boolean;

  private constructor(
    readonly path: string,
    fd: number,
    size: number,
    lastSum: string | undefined,
    format: number,
  ) {
    this.fd = fd;
    this.size = size;
    this.lastSum = lastSum;
    this.batched = format >= JOURNAL_FORMAT_BATCHED;
  }

  /** What DF704 tells the user to do next: resume a run, or apply a saved plan again. */
  private again = RUN_AGAIN;

  /**
   * Starts a new journal; refuses to overwrite one that exists (DF701).
   * @throws DatafixError DF704 when the header cannot be written in full.
   */
  static create(path: string, header: Omit<JournalHeader, 'type' | 'format'>): JournalWriter {
    let fd: number;
    let made = false;
    let firstCreated: string | undefined;
    try {
      // A parent that is a file (mkdir says EEXIST) is the same mistake as an unwritable
      // directory, and gets the same message; only the journal itself existing is "exists".
      firstCreated = mkdirSync(dirname(path), { recursive: true });
      made = true;
      fd = openSync(path, 'wx');
    } catch (err) {
      const why =
        made && (err as NodeJS.ErrnoException).code === 'EEXIST'
          ? 'it already exists; journals are never overwritten'
          : String((err as Error).message);
      throw new DatafixError(
        'usage',
        'DF701',
        `cannot create journal ${path}: ${why}. Give --journal a new file in a writable directory, or make ${dirname(path)} writable`,
      );
    }
    const w = new JournalWriter(path, fd, 0, '', JOURNAL_FORMAT);
    // A saved plan's apply has no run to resume (`apply` takes no --resume).
    if (header.runId === undefined) w.again = APPLY_AGAIN;
    try {
      w.append([{ type: 'header', format: JOURNAL_FORMAT, ...header }], 'before the run wrote anything');
      try {
        syncDirectories(dirname(path), firstCreated);
      } catch (err) {
        throw journalDiskError(path, err, 'before the run wrote anything', w.again);
      }
    } catch (err) {
      // An empty journal would only block a rerun with the same --journal path (DF701).
      closeSync(fd);
      rmSync(path, { force: true });
      throw err;
    }
    return w;
  }

  /**
   * Continues a journal after an interrupted run (resume), numbering on from its last write.
   * A torn last line (a crash mid-append) is cut off first, whatever its length.
   * @throws DatafixError DF724 when the journal is gone, DF703 when it is damaged before its end.
   */
  static async reopen(
    path: string,
    options: {
      /** The last write the run's state saw journaled: a journal ending before it was cut (DF728). */
      readonly recordedSeq?: number;
      /**
       * Receives the key of every write the journal records as applied (a write line followed by
       * its `applied` result), as the whole journal is checked. A write without one was not
       * committed (SQLite rolled its batch back) or is unknown (DynamoDB): the resumed run reads
       * that record again and judges it afresh.
       */
      readonly onWrite?: (key: Record<string, unknown>) => void;
    } = {},
  ): Promise<JournalWriter> {
    const { recordedSeq } = options;
    if (!existsSync(path)) {
      throw new DatafixError(
        'usage',
        'DF724',
        `the interrupted run's journal ${path} is gone, so a resumed run could not be undone as one. Run without --resume to start over (rows already fixed are skipped)`,
      );
    }
    // A crash can tear the last line mid-append; its batch was never sent (the journal is
    // written and fsynced first), so it is cut off before new lines follow it.
    const fd = openSync(path, 'r+');
    try {
      const size = fstatSync(fd).size;
      const complete = endOfLastCompleteLine(fd, size);
      if (complete < size) ftruncateSync(fd, complete);
      const check = await checkJournal(path, 'the run was not resumed', options.onWrite);
      // The state file saw writes up to `recordedSeq` journaled by its last checkpoint; a journal
      // that ends before them lost lines (cut at a line boundary, which no checksum shows), and
      // the writes on them could never be undone.
      if (recordedSeq !== undefined && check.lastSeq < recordedSeq) throw journalCutError(path, check.lastSeq, recordedSeq);
      const w = new JournalWriter(path, fd, complete, check.lastSum, check.header.format);
      w.seq = check.lastSeq;
      w.append([{ type: 'resume', at: new Date().toISOString() }], 'before the resumed run wrote anything');
      return w;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Appends whole lines and (unless `durable` is false) fsyncs them. Short writes are continued; a write or fsync that fails
   * (disk full, quota, I/O error, file size limit) cuts the file back to its last complete line
   * and throws DF704, so no caller ever goes on believing lines are on disk that are not.
   */
  private append(lines: readonly Line[], stage: string, durable = true): void {
    let text = '';
    let sum = this.lastSum;
    for (const line of lines) {
      if (sum === undefined) text += `${JSON.stringify(line)}\n`;
      else {
        const summed = withSum(sum, line);
        sum = summed.sum;
        text += `${summed.text}\n`;
      }
    }
    const bytes = Buffer.from(text, 'utf8');
    try {
      writeFully(this.fd, bytes, this.size, journalFs.writeSync);
      if (durable) journalFs.fsyncSync(this.fd);
    } catch (err) {
      try {
        ftruncateSync(this.fd, this.size);
      } catch {
        // The file keeps a torn last line; reopening and undo both recognise and ignore it.
      }
      throw journalDiskError(this.path, err, stage, this.again);
    }
    this.size += bytes.length;
    this.lastSum = sum;
  }

  intend(requests: readonly WriteRequest[]): void {
    if (requests.length === 0) return;
    // One write and one fsync per batch: every before-image of the batch is durable before any
    // of its writes is sent. Seqs are assigned only once the batch is on disk.
    const first = this.seq + 1;
    const lines: Line[] = this.batched
      ? [writesLine(first, requests)]
      : requests.map((r, i) => ({ type: 'write', seq: first + i, ...writeEntry(r) }));
    this.append(lines, 'before sending this batch (none of its writes were sent)');
    const seqs = new Map<WriteRequest, number>();
    for (const [i, r] of requests.entries()) seqs.set(r, first + i);
    this.seqOf = [this.seqOf.at(-1) ?? new Map(), seqs];
    this.seq += requests.length;
  }

  settle(requests: readonly WriteRequest[], results: readonly WriteResult[]): void {
    const entries: ResultEntry[] = [];
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i] as WriteRequest;
      const seq = this.seqOf[1]?.get(request) ?? this.seqOf[0]?.get(request);
      const result = results[i];
      const status = result?.status;
      if (seq === undefined || !status || status === 'retry') continue;
      // A created record as stored (SQLite: its defaults too), for undo to compare whole.
      entries.push(result.status === 'applied' && result.stored ? { seq, status, stored: encodeValue(result.stored) } : { seq, status });
    }
    if (entries.length === 0) return;
    // Written, not fsynced: the next batch's `intend` fsyncs the file, this line included, before
    // any of its writes is sent, and `end` fsyncs the last. A power loss before then can only
    // lose or tear this last line, which is safe: undo checks writes without an outcome against
    // the target, and a torn last line is cut off on resume and ignored by undo.
    const lines: Line[] = this.batched
      ? [{ type: 'results', count: entries.length, results: entries }]
      : entries.map((e) => ({ type: 'result', ...e }));
    this.append(lines, 'after a batch was written, before the next one', false);
  }

  end(summary: RunSummary, interrupted: boolean): void {
    this.append([{ type: 'end', at: new Date().toISOString(), summary, interrupted }], 'after its last write');
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface JournalReading {
  readonly header: JournalHeader;
  /** False for a format-1 journal: it has no checksums, so its lines could not be verified. */
  readonly verified: boolean;
  /** Write lines in the journal (every journaled record, whatever its outcome). */
  readonly writeCount: number;
  /**
   * Whether the last complete line is an `end` line. Without one the run was stopped (killed,
   * out of disk) or the journal was cut short at a line boundary, which no checksum can tell apart.
   */
  readonly ended: boolean;
  /**
   * Writes newest first, so a record written twice is restored step by step back to its first
   * before-image. Memory stays bounded by a batch of writes.
   */
  writes(): AsyncGenerator<JournalWrite>;
}

interface JournalCheck {
  readonly header: JournalHeader;
  readonly verified: boolean;
  readonly writeCount: number;
  readonly lastSeq: number;
  /** Checksum of the last complete line (format 2), to chain new lines from. */
  readonly lastSum: string | undefined;
  /** Whether the last complete line is an `end` line. */
  readonly ended: boolean;
}

/**
 * Reads the whole journal once, front to back, and checks every line: valid JSON, the right shape,
 * unique write numbers, outcomes only for journaled writes, and (format 2) each line's checksum
 * chained from the header. Only the very last line may be torn (a crash mid-append); it is ignored.
 * @param consequence what the caller has (not) done yet, for the error messages.
 * @throws DatafixError DF702 (not a journal / unreadable), DF703 (damaged line), DF705 (checksum mismatch).
 */
async function checkJournal(path: string, consequence: string, onWrite?: (key: Record<string, unknown>) => void): Promise<JournalCheck> {
  let header: JournalHeader | undefined;
  let verified = false;
  let sum: string | undefined;
  let lastSeq = 0;
  let writeCount = 0;
  let lastType: string | undefined;
  const seqs = new Set<number>();
  // Keys of writes not yet known applied, by seq (only kept when someone asks for keys).
  const writeKeys = new Map<number, unknown>();
  let pending: { text: string; line: number } | undefined;
  const damaged = (line: number, what: string) =>
    new DatafixError('usage', 'DF703', `${path}:${line} is damaged (${what}); the journal cannot be trusted, so ${consequence}`);

  const check = (text: string, lineNo: number): void => {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      throw damaged(lineNo, 'not a complete JSON line');
    }
    if (line === null || typeof line !== 'object' || Array.isArray(line)) throw damaged(lineNo, 'not a JSON object');
    if (!header) {
      if (line?.type !== 'header' || !READABLE_FORMATS.includes(line.format)) {
        throw new DatafixError('usage', 'DF702', `${path} is not a datafix journal (formats ${READABLE_FORMATS.join(', ')})`);
      }
      header = line;
      verified = line.format >= 2;
      if (verified) sum = '';
    } else if (line?.type === 'header') throw damaged(lineNo, 'a second header');
    // Format 1 has no checksums, and a format-1 journal continued on resume gets none either: a
    // checksum here means the header was edited to skip the verification.
    if (!verified && SUM_SUFFIX.test(text)) {
      throw new DatafixError(
        'usage',
        'DF705',
        `${path}:${lineNo} carries a checksum, but the header says format 1, which has none: the header was edited, so ${consequence}`,
      );
    }
    if (verified) {
      const parts = splitSum(text);
      if (!parts || chainSum(sum as string, parts.body) !== parts.sum) {
        throw new DatafixError(
          'usage',
          'DF705',
          `${path}:${lineNo} does not match its checksum: it was edited, moved, or copied from another journal, so ${consequence}`,
        );
      }
      sum = parts.sum;
    }
    const batched = (header?.format ?? 0) >= JOURNAL_FORMAT_BATCHED;
    const perRecord = line.type === 'write' || line.type === 'result';
    if ((batched && perRecord) || (!batched && (line.type === 'writes' || line.type === 'results'))) {
      throw damaged(lineNo, `a ${line.type} line in a journal of format ${header?.format}`);
    }
    const write = (seq: unknown, entry: WriteEntry): void => {
      const ok =
        typeof seq === 'number' &&
        Number.isSafeInteger(seq) &&
        seq > 0 &&
        entry !== null &&
        typeof entry === 'object' &&
        entry.key !== null &&
        typeof entry.key === 'object' &&
        Array.isArray(entry.fields) &&
        entry.fields.every((f) => f && typeof f.name === 'string' && 'before' in f && 'after' in f) &&
        (entry.action === undefined ||
          ((header?.format ?? 0) >= JOURNAL_FORMAT_WHOLE_RECORDS && ['delete', 'create'].includes(entry.action)));
      if (!ok) throw damaged(lineNo, 'a write without a valid seq, key or fields');
      if (seqs.has(seq)) throw damaged(lineNo, `write ${seq} appears twice`);
      seqs.add(seq);
      lastSeq = Math.max(lastSeq, seq);
      writeCount++;
      if (onWrite) writeKeys.set(seq, entry.key);
    };
    const result = (entry: ResultEntry): void => {
      if (entry === null || typeof entry !== 'object' || !seqs.has(entry.seq)) {
        throw damaged(lineNo, `an outcome for write ${entry?.seq}, which is not journaled before it`);
      }
      const key = writeKeys.get(entry.seq);
      if (key !== undefined && entry.status === 'applied') onWrite?.(decodeValue(key) as Record<string, unknown>);
      writeKeys.delete(entry.seq);
    };
    if (line.type === 'write') write(line.seq, line);
    else if (line.type === 'result') result(line);
    else if (line.type === 'writes') {
      const entries = batchEntries(line);
      if (!entries || entries.length === 0 || line.count !== entries.length || !Number.isSafeInteger(line.seq)) {
        throw damaged(lineNo, 'a writes line without a valid seq, count or writes');
      }
      for (const [i, entry] of entries.entries()) write(line.seq + i, entry);
    } else if (line.type === 'results') {
      if (!Array.isArray(line.results) || line.count !== line.results.length)
        throw damaged(lineNo, 'a results line without a valid count or results');
      for (const entry of line.results) result(entry);
    } else if (line.type !== 'header' && line.type !== 'resume' && line.type !== 'end') {
      throw damaged(lineNo, `unknown line type ${JSON.stringify((line as { type?: unknown })?.type)}`);
    }
    lastType = line.type;
  };

  try {
    for await (const next of readTextLines(path)) {
      // One line behind: the last line may be torn, any other must be whole.
      if (pending) check(pending.text, pending.line);
      pending = next;
    }
  } catch (err) {
    if (err instanceof DatafixError) throw err;
    throw new DatafixError('usage', 'DF702', `cannot read journal ${path}: ${(err as Error).message}`);
  }
  if (pending) {
    let parses = true;
    try {
      JSON.parse(pending.text);
    } catch {
      parses = false;
    }
    // A torn last line is what a crash mid-append leaves; its writes were never sent.
    if (parses || !header) check(pending.text, pending.line);
  }
  if (!header) throw new DatafixError('usage', 'DF702', `${path} is not a datafix journal (it has no header line)`);
  return { header, verified, writeCount, lastSeq, lastSum: verified ? sum : undefined, ended: lastType === 'end' };
}

/** The file's lines from last to first, read in chunks from the end; with 1-based line numbers. */
function* linesBackward(path: string): Generator<{ text: string; line: number }> {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let total = 0;
    const counter = Buffer.alloc(1 << 16);
    for (let pos = 0; pos < size; ) {
      const n = readSync(fd, counter, 0, counter.length, pos);
      for (let i = 0; i < n; i++) if (counter[i] === 10) total++;
      pos += n;
    }
    let line = total + 1;
    let rest = Buffer.alloc(0);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - (1 << 16));
      const chunk = Buffer.alloc(end - start);
      readSync(fd, chunk, 0, chunk.length, start);
      rest = Buffer.concat([chunk, rest]);
      end = start;
      let nl = rest.lastIndexOf(10);
      while (nl >= 0) {
        const text = rest.subarray(nl + 1).toString('utf8');
        rest = rest.subarray(0, nl);
        if (text.trim() !== '') yield { text, line };
        line--;
        nl = rest.lastIndexOf(10);
      }
    }
    if (rest.length > 0 && rest.toString('utf8').trim() !== '') yield { text: rest.toString('utf8'), line: 1 };
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a journal for undo: checks every line first (see `checkJournal`), so a damaged or edited
 * journal is refused before anything is restored.
 * @throws DatafixError DF702, DF703, DF705.
 */
export async function openJournal(path: string): Promise<JournalReading> {
  const check = await checkJournal(path, 'nothing was restored (undo checks the whole journal before writing anything)');
  return {
    header: check.header,
    verified: check.verified,
    writeCount: check.writeCount,
    ended: check.ended,
    async *writes() {
      // Reading backwards, a write's outcome comes before the write itself.
      const outcome = new Map<number, WriteResult['status']>();
      const storedOf = new Map<number, unknown>();
      let first = true;
      for (const { text, line: lineNo } of linesBackward(path)) {
        let line: Line;
        try {
          line = JSON.parse(text) as Line;
        } catch {
          // The torn last line the check allowed; anything else changed after the check.
          if (first) {
            first = false;
            continue;
          }
          throw new DatafixError('usage', 'DF703', `${path}:${lineNo} changed while undo was reading the journal`);
        }
        first = false;
        if (line.type === 'result' || line.type === 'results') {
          for (const r of line.type === 'result' ? [line] : line.results) {
            outcome.set(r.seq, r.status);
            if (r.stored !== undefined) storedOf.set(r.seq, r.stored);
          }
        } else if (line.type === 'write' || line.type === 'writes') {
          // The check read every line already: a writes line holds its writes in full.
          const entries = line.type === 'write' ? [line] : (batchEntries(line) ?? []);
          // Newest first within a batch too.
          for (let i = entries.length - 1; i >= 0; i--) {
            const entry = entries[i] as WriteEntry;
            const seq = line.seq + i;
            const status = outcome.get(seq);
            const stored = storedOf.get(seq);
            outcome.delete(seq);
            storedOf.delete(seq);
            yield {
              seq,
              ...(entry.action ? { action: entry.action } : {}),
              ...(entry.table !== undefined ? { table: entry.table } : {}),
              key: decodeValue(entry.key) as Record<string, unknown>,
              fields: entry.fields.map((f) => ({ name: f.name, before: decodeValue(f.before), after: decodeValue(f.after) })),
              outcome: status === undefined ? 'unknown' : status === 'applied' ? 'applied' : 'not written',
              ...(stored !== undefined ? { stored: decodeValue(stored) as Record<string, unknown> } : {}),
            };
          }
        }
      }
    },
  };
}
