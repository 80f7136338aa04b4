/**
 * `--diff-file PATH`: a run's record lines as JSON Lines, for review with `jq` or a diff viewer,
 * instead of on the terminal. The first line is a header naming the fix, the target (without
 * credentials) and whether it was a dry run; then one line per record:
 *
 *   {"type":"record","outcome":"updated","key":{…},"target":{"table":…,"key":{…}},
 *    "changes":[{"field":"…","before":…,"after":…,"guard":"absent"}]}
 *   {"type":"record","outcome":"failed","key":{…},"reason":"invalid_json","message":"…"}
 *
 * Values are written exactly as journals and saved plans write them (`encodeValue`): a field that
 * was absent is `{"$absent":true}`, numbers beyond double precision `{"$number":"…"}`.
 */

import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, openSync, readSync, type Stats, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { redactTarget, redactText } from '../adapters/redact.js';
import type { RecordEvent } from '../engine/events.js';
import { DatafixError } from '../errors.js';
import type { FixPlan, TargetPlan } from '../plan/types.js';
import { toJsonSafe } from '../plan/values.js';
import { encodeValue, endOfLastCompleteLine } from '../safety/jsonl.js';
import { sqliteSideFile } from '../safety/preflight.js';
import { writeFully } from '../safety/write-fully.js';
import { VERSION } from '../version.js';

/** The file-system calls a diff file's lines go through; tests replace them to make the disk fill. */
export const diffFileFs = { writeSync };

/** What the header line's `type` says: an earlier diff file may be overwritten, nothing else. */
const HEADER_TYPE = 'datafix-diffs';
/** Lines are written in chunks of about this many bytes. */
const FLUSH_BYTES = 64 * 1024;

/** Whether `path` is a regular file whose first line is a diff file's header. */
function isDiffFile(path: string): boolean {
  let fd: number | undefined;
  try {
    // Not followed, and never waiting on a FIFO for a writer.
    if (!lstatSync(path).isFile()) return false;
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString('utf8');
    const first = JSON.parse(text.slice(0, text.indexOf('\n'))) as { type?: unknown };
    return first?.type === HEADER_TYPE;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function cannotWrite(path: string, why: string): DatafixError {
  return new DatafixError('usage', 'DF747', `cannot write --diff-file ${path}: ${why}`);
}

/**
 * Checks, before anything runs, that `file` can become a diff file: it does not exist, or is an
 * earlier diff file, its directory exists, and it is not one of a SQLite target's own side files.
 * @throws DatafixError DF747 naming the file and what to do.
 */
export function checkDiffFile(file: string, cwd: string, target?: TargetPlan): void {
  const path = resolve(cwd, file);
  const side = target ? sqliteSideFile(target, path) : undefined;
  if (side) throw cannotWrite(path, `${side}. Give another file`);
  let exists = false;
  try {
    exists = lstatSync(path) !== undefined;
  } catch {
    // Not there: its directory must be.
  }
  if (exists && !isDiffFile(path)) {
    throw cannotWrite(path, 'the file exists and is not an earlier diff file, so it is never overwritten. Give a new file, or remove it');
  }
  if (!exists) {
    let dir: Stats | undefined;
    try {
      dir = statSync(dirname(path));
    } catch {
      // reported below
    }
    if (!dir?.isDirectory()) throw cannotWrite(path, `its directory ${dirname(path)} does not exist. Create it, or give another file`);
  }
}

export class DiffFile {
  /** Record lines written so far. */
  records = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private fd: number | undefined;

  private constructor(
    /** The file's absolute path. */
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /**
   * Creates the file (or replaces an earlier diff file; with `resume`, appends to it) and writes
   * its header, before the run starts, so a path that cannot be written stops the run before it reads anything.
   * @throws DatafixError DF747 when `path` exists and is not a diff file (a database, a journal,
   *   anything else is never overwritten), or cannot be created (no such directory, no permission).
   */
  static open(file: string, cwd: string, plan: FixPlan, dryRun: boolean, options: { resume?: boolean } = {}): DiffFile {
    checkDiffFile(file, cwd, plan.target);
    const path = resolve(cwd, file);
    // A resumed run goes on after the lines of the part it continues (with a header of its own);
    // any other run replaces an earlier diff file.
    const mode = options.resume ? constants.O_APPEND : constants.O_TRUNC;
    let fd: number;
    try {
      // Never through a symlink: an earlier diff file is a regular file.
      // Read too when resuming: a torn last line is found by reading back from the end.
      const access = options.resume ? constants.O_RDWR : constants.O_WRONLY;
      fd = openSync(path, access | constants.O_CREAT | mode | constants.O_NOFOLLOW, 0o644);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'ENOENT'
          ? 'its directory does not exist'
          : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS'
            ? 'no permission to write there'
            : e.code === 'EISDIR'
              ? 'it is a directory'
              : (e.code ?? e.message);
      throw cannotWrite(path, `${why}. Give a file in a directory you can write to`);
    }
    if (options.resume) {
      // A full disk can have cut the last line of the part this run continues: cut it off, so the
      // file stays one JSON object per line.
      const size = fstatSync(fd).size;
      const complete = endOfLastCompleteLine(fd, size);
      if (complete < size) ftruncateSync(fd, complete);
    }
    const out = new DiffFile(path, fd);
    out.line({
      type: HEADER_TYPE,
      fix: plan.fix,
      specChecksum: plan.specChecksum,
      target: redactTarget(plan.target),
      dryRun,
      startedAt: new Date().toISOString(),
      datafixVersion: VERSION,
    });
    out.flush();
    return out;
  }

  private line(obj: unknown): void {
    const text = `${JSON.stringify(obj)}\n`;
    this.pending.push(text);
    this.pendingBytes += text.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
  }

  /** Adds one record's line. @throws DatafixError DF747 when the disk refuses the write. */
  record(e: RecordEvent): void {
    this.records++;
    this.line({
      type: 'record',
      outcome: e.outcome,
      key: toJsonSafe(e.key),
      ...(e.target
        ? {
            target: {
              ...(e.target.table !== undefined ? { table: e.target.table } : {}),
              key: toJsonSafe(e.target.key),
              ...(e.target.action ? { action: e.target.action } : {}),
            },
          }
        : {}),
      ...(e.reason ? { reason: e.reason } : {}),
      ...(e.message ? { message: redactText(e.message) } : {}),
      ...(e.changes
        ? {
            changes: e.changes.map((c) => ({
              field: c.field,
              before: encodeValue(c.before),
              after: encodeValue(c.after),
              guard: c.guard,
              ...(c.touch ? { touch: true } : {}),
              ...(c.remove ? { remove: true } : {}),
            })),
          }
        : {}),
    });
  }

  private flush(): void {
    if (this.fd === undefined || this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
    try {
      writeFully(this.fd, bytes, undefined, diffFileFs.writeSync);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw cannotWrite(
        this.path,
        `${e.code ?? e.message} (the disk is full, or over a quota or file size limit). Free space, or give another file`,
      );
    }
  }

  /** Writes what is buffered and closes the file; safe to call twice. */
  close(): void {
    if (this.fd === undefined) return;
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
