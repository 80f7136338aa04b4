/**
 * The run journal: one JSON line per event, appended and fsynced. Every write's before-image is
 * on disk before the write is sent, so whatever happens to the process, `datafix undo` knows
 * what each touched field held. Values are exact: DynamoDB big numbers, sets and binary, and
 * SQLite integers beyond 2^53 are tagged (`$number`, `$set`, `$binary`), absent fields `$absent`.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { WriteRequest, WriteResult } from '../adapters/types.js';
import type { RunSummary } from '../engine/events.js';
import type { WriteJournal } from '../engine/run.js';
import { DatafixError } from '../errors.js';
import type { TargetPlan } from '../plan/types.js';
import { toJsonSafe } from '../plan/values.js';
import { decodeValue, encodeValue, readJsonLines } from './jsonl.js';

export const JOURNAL_FORMAT = 1;

export interface JournalHeader {
  readonly type: 'header';
  readonly format: number;
  readonly fix: string;
  readonly specFile: string;
  readonly specChecksum: string;
  readonly target: TargetPlan;
  /** The run this journal belongs to (resume checks it); absent in journals of saved-plan applies. */
  readonly runId?: string;
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
  readonly table?: string;
  readonly key: Record<string, unknown>;
  readonly fields: readonly JournalField[];
}

type Line =
  | JournalHeader
  | { type: 'write'; seq: number; table?: string; key: unknown; fields: { name: string; before: unknown; after: unknown }[] }
  | { type: 'result'; seq: number; status: WriteResult['status'] }
  | { type: 'resume'; at: string }
  | { type: 'end'; at: string; summary: RunSummary; interrupted: boolean };

/** Appends to a journal; every `intend` is durable before it returns. */
export class JournalWriter implements WriteJournal {
  private readonly fd: number;
  private seq = 0;
  private readonly seqOf = new WeakMap<WriteRequest, number>();

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Starts a new journal; refuses to overwrite one that exists. */
  static create(path: string, header: Omit<JournalHeader, 'type' | 'format'>): JournalWriter {
    mkdirSync(dirname(path), { recursive: true });
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (err) {
      const why =
        (err as NodeJS.ErrnoException).code === 'EEXIST'
          ? 'it already exists; journals are never overwritten'
          : String((err as Error).message);
      throw new DatafixError('usage', 'DF701', `cannot create journal ${path}: ${why}`);
    }
    const w = new JournalWriter(path, fd);
    w.append({ type: 'header', format: JOURNAL_FORMAT, ...header }, true);
    return w;
  }

  /** Continues a journal after an interrupted run (resume), numbering on from its last write. */
  static async reopen(path: string): Promise<JournalWriter> {
    if (!existsSync(path)) {
      throw new DatafixError(
        'usage',
        'DF724',
        `the interrupted run's journal ${path} is gone, so a resumed run could not be undone as one. Run without --resume to start over (rows already fixed are skipped)`,
      );
    }
    // A crash can tear the last line mid-append; its batch was never sent (the journal is
    // written and fsynced first), so it is cut off before new lines follow it.
    const size = statSync(path).size;
    const tail = Buffer.alloc(Math.min(size, 1 << 16));
    const fdr = openSync(path, 'r');
    try {
      readSync(fdr, tail, 0, tail.length, size - tail.length);
    } finally {
      closeSync(fdr);
    }
    if (size > 0 && tail[tail.length - 1] !== 10) truncateSync(path, size - tail.length + tail.lastIndexOf(10) + 1);
    let last = 0;
    for await (const line of readLines(path)) if (line.type === 'write') last = Math.max(last, line.seq);
    const w = new JournalWriter(path, openSync(path, 'a'));
    w.seq = last;
    w.append({ type: 'resume', at: new Date().toISOString() }, true);
    return w;
  }

  private append(line: Line, sync: boolean): void {
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
    if (sync) fsyncSync(this.fd);
  }

  intend(requests: readonly WriteRequest[]): void {
    if (requests.length === 0) return;
    // One write and one fsync per batch: every before-image of the batch is durable before any
    // of its writes is sent.
    let text = '';
    for (const r of requests) {
      const seq = ++this.seq;
      this.seqOf.set(r, seq);
      const line: Line = {
        type: 'write',
        seq,
        ...(r.table !== undefined ? { table: r.table } : {}),
        key: toJsonSafe(r.key),
        fields: r.fields.map((f) => ({ name: f.name, before: encodeValue(f.before), after: encodeValue(f.value) })),
      };
      text += `${JSON.stringify(line)}\n`;
    }
    writeSync(this.fd, text);
    fsyncSync(this.fd);
  }

  settle(requests: readonly WriteRequest[], results: readonly WriteResult[]): void {
    let text = '';
    requests.forEach((r, i) => {
      const seq = this.seqOf.get(r);
      const status = results[i]?.status;
      if (seq !== undefined && status && status !== 'retry') text += `${JSON.stringify({ type: 'result', seq, status } satisfies Line)}\n`;
    });
    if (text) writeSync(this.fd, text);
  }

  end(summary: RunSummary, interrupted: boolean): void {
    this.append({ type: 'end', at: new Date().toISOString(), summary, interrupted }, true);
  }

  close(): void {
    closeSync(this.fd);
  }
}

function readLines(path: string): AsyncGenerator<Line> {
  // A crash can leave a torn line; the readers decide what one means where they meet it.
  return readJsonLines(path, (line) => ({ type: 'torn', line }) as unknown as Line);
}

export interface JournalReading {
  readonly header: JournalHeader;
  /**
   * Writes newest first, so a record written twice is restored step by step back to its first
   * before-image. Yields the writes whose outcome was `applied` or is unknown (the run died
   * between sending and recording it). Memory stays bounded by a batch of writes.
   */
  writes(): AsyncGenerator<JournalWrite>;
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

export async function openJournal(path: string): Promise<JournalReading> {
  let header: JournalHeader | undefined;
  try {
    for await (const line of readLines(path)) {
      if (line.type === 'header') header = line;
      break;
    }
  } catch (err) {
    throw new DatafixError('usage', 'DF702', `cannot read journal ${path}: ${(err as Error).message}`);
  }
  if (!header || header.format !== JOURNAL_FORMAT) {
    throw new DatafixError('usage', 'DF702', `${path} is not a datafix journal (format ${JOURNAL_FORMAT})`);
  }
  const h = header;
  return {
    header: h,
    async *writes() {
      // Reading backwards, a write's outcome comes before the write itself.
      const outcome = new Map<number, WriteResult['status']>();
      let first = true;
      for (const { text, line: lineNo } of linesBackward(path)) {
        let line: Line;
        try {
          line = JSON.parse(text) as Line;
        } catch {
          // Only the very last line can be torn (a crash mid-append); damage elsewhere means the
          // journal cannot be trusted to say what to restore.
          if (first) {
            first = false;
            continue;
          }
          throw new DatafixError('usage', 'DF703', `${path}:${lineNo} is damaged; the journal cannot be trusted, so nothing was restored`);
        }
        first = false;
        if (line.type === 'result') outcome.set(line.seq, line.status);
        else if (line.type === 'write') {
          const status = outcome.get(line.seq);
          outcome.delete(line.seq);
          if (status !== undefined && status !== 'applied') continue;
          yield {
            seq: line.seq,
            ...(line.table !== undefined ? { table: line.table } : {}),
            key: decodeValue(line.key) as Record<string, unknown>,
            fields: line.fields.map((f) => ({ name: f.name, before: decodeValue(f.before), after: decodeValue(f.after) })),
          };
        }
      }
    },
  };
}
