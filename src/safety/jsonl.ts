/**
 * What journals and saved plans share: JSON Lines read as a stream, and field values encoded
 * exactly, with `{ "$absent": true }` for a field that did not exist.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { isDeepStrictEqual } from 'node:util';
import { fromJsonSafe, toJsonSafe } from '../plan/values.js';

const ABSENT = { $absent: true };

export function encodeValue(value: unknown): unknown {
  return value === undefined ? ABSENT : toJsonSafe(value);
}

/** Whether a value is exactly `{ "$absent": true }`: a map holding `$absent` among other keys is a map. */
export function isAbsentMarker(value: unknown): boolean {
  return isDeepStrictEqual(value, ABSENT);
}

export function decodeValue(value: unknown): unknown {
  if (isAbsentMarker(value)) return undefined;
  return fromJsonSafe(value);
}

/** The file's non-blank lines in file order, as text with their 1-based line numbers; lines of any length. */
export async function* readTextLines(path: string): AsyncGenerator<{ text: string; line: number }> {
  const rl = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  for await (const text of rl) {
    n++;
    if (text.trim() !== '') yield { text, line: n };
  }
}

/** Parsed lines in file order; `onBadLine` says what an unparsable line (1-based) becomes, or throws. */
export async function* readJsonLines<T>(path: string, onBadLine: (line: number) => T): AsyncGenerator<T> {
  for await (const { text, line } of readTextLines(path)) {
    let parsed: T;
    try {
      parsed = JSON.parse(text) as T;
    } catch {
      parsed = onBadLine(line);
    }
    yield parsed;
  }
}

/**
 * The checksum of a journal or plan line: sha256 (first 32 hex digits) of the previous line's checksum,
 * a newline, and this line's JSON without its `sum`. The header's previous checksum is empty, so
 * every line is bound to its journal, its position and everything before it.
 */
export function chainSum(previous: string, body: string): string {
  return createHash('sha256').update(previous).update('\n').update(body).digest('hex').slice(0, 32);
}

export const SUM_SUFFIX = /,"sum":"([0-9a-f]{32})"\}$/;

/** Splits a checksummed line into its body (the JSON it was summed over) and its checksum. */
export function splitSum(text: string): { body: string; sum: string } | undefined {
  const m = SUM_SUFFIX.exec(text);
  return m?.[1] ? { body: `${text.slice(0, m.index)}}`, sum: m[1] } : undefined;
}

/** A line's JSON with its checksum chained from `previous` appended as `sum`; returns both. */
export function withSum(previous: string, obj: unknown): { text: string; sum: string } {
  const body = JSON.stringify(obj);
  const sum = chainSum(previous, body);
  return { text: `${body.slice(0, -1)},"sum":"${sum}"}`, sum };
}

/**
 * Offset just after the file's last newline (0 if it has none), found by reading back from the
 * end in chunks: where a file of lines torn by a crash or a full disk is cut back to before more
 * lines are appended.
 */
export function endOfLastCompleteLine(fd: number, size: number): number {
  const chunk = Buffer.alloc(1 << 16);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - chunk.length);
    const n = readSync(fd, chunk, 0, end - start, start);
    const nl = chunk.subarray(0, n).lastIndexOf(10);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}
