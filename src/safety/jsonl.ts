/**
 * What journals and saved plans share: JSON Lines read as a stream, and field values encoded
 * exactly, with `{ "$absent": true }` for a field that did not exist.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { isDeepStrictEqual } from 'node:util';
import { fromJsonSafe, toJsonSafe } from '../plan/values.js';

const ABSENT = { $absent: true };

export function encodeValue(value: unknown): unknown {
  return value === undefined ? ABSENT : toJsonSafe(value);
}

export function decodeValue(value: unknown): unknown {
  // Exactly `{ "$absent": true }`: a map holding `$absent` among other keys is a map.
  if (isDeepStrictEqual(value, ABSENT)) return undefined;
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
