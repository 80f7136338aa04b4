/**
 * The JSON Lines reader and value encoding shared by journals and saved plans, in-process (so
 * mutation testing sees it): lines come back in file order whatever their line endings, blank
 * lines are no records, a bad line is reported by its 1-based number, and every value a
 * before-image can hold survives the round trip, "field did not exist" included.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chainSum, decodeValue, encodeValue, endOfLastCompleteLine, readJsonLines, splitSum, withSum } from '../../src/safety/jsonl.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

async function collect<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

describe('readJsonLines', () => {
  it('yields each line parsed, in order, skipping blank and whitespace-only lines; CRLF and LF alike', async () => {
    const file = tmp().write('a.jsonl', '{"n":1}\r\n\r\n   \n{"n":2}\n\t\n[3]\r\n"four"');
    expect(await collect(readJsonLines(file, () => 'bad'))).toEqual([{ n: 1 }, { n: 2 }, [3], 'four']);
  });

  it('an unparsable line becomes what onBadLine returns for its 1-based line number, in place', async () => {
    const file = tmp().write('b.jsonl', '{"n":1}\n\n{"n":\n{"n":4}\n{torn');
    const bad: number[] = [];
    const got = await collect(
      readJsonLines(file, (line) => {
        bad.push(line);
        return { bad: line };
      }),
    );
    expect(got).toEqual([{ n: 1 }, { bad: 3 }, { n: 4 }, { bad: 5 }]);
    expect(bad).toEqual([3, 5]);
  });

  it('onBadLine may throw: reading stops with its error', async () => {
    const file = tmp().write('c.jsonl', '{"n":1}\nnot json\n{"n":3}\n');
    const seen: unknown[] = [];
    await expect(
      (async () => {
        for await (const x of readJsonLines(file, (line) => {
          throw new Error(`line ${line} is corrupt`);
        }))
          seen.push(x);
      })(),
    ).rejects.toThrow('line 2 is corrupt');
    expect(seen).toEqual([{ n: 1 }]);
  });

  it('an empty file yields nothing', async () => {
    expect(await collect(readJsonLines(tmp().write('d.jsonl', ''), () => 'bad'))).toEqual([]);
  });
});

describe('encodeValue / decodeValue', () => {
  it('a field that did not exist is written as {"$absent":true} and read back as absent', () => {
    expect(encodeValue(undefined)).toEqual({ $absent: true });
    expect(JSON.stringify(encodeValue(undefined))).toBe('{"$absent":true}');
    expect(decodeValue({ $absent: true })).toBeUndefined();
    expect(decodeValue(JSON.parse('{"$absent":true}'))).toBeUndefined();
  });

  it('null, "", 0, false and maps that only look like the marker stay what they are', () => {
    for (const v of [null, '', 0, false, 'x', { $absent: false }, { $absent: 'true' }, { $absent: 1 }, [1, null, '']]) {
      const line = JSON.stringify(encodeValue(v));
      expect(decodeValue(JSON.parse(line)), line).toEqual(v);
    }
  });

  it('maps shaped like a value tag ($number, $set, $binary, $absent, $map) read back as those maps', () => {
    const maps = [
      { $number: '5' },
      { $set: ['a'] },
      { $binary: 'AAE=' },
      { $absent: true },
      { $absent: true, other: 1 },
      { $map: { $number: '7' } },
      [{ $number: '9' }],
      { nested: { $set: [] } },
    ];
    for (const v of maps) {
      const line = JSON.stringify(encodeValue(v));
      expect(decodeValue(JSON.parse(line)), line).toEqual(v);
    }
    // The tags themselves still mean what they say.
    expect(decodeValue({ $set: ['a'] })).toEqual(new Set(['a']));
    expect(decodeValue({ $map: { $set: ['a'] } })).toEqual({ $set: ['a'] });
  });

  it('binary, sets and numbers beyond a double survive a trip through JSON text', () => {
    const before = { bin: new Uint8Array([0, 159, 255]), tags: new Set(['a', 'b']), list: [{ k: 'v' }] };
    const back = decodeValue(JSON.parse(JSON.stringify(encodeValue(before)))) as typeof before;
    expect(back.bin).toEqual(new Uint8Array([0, 159, 255]));
    expect(back.tags).toEqual(new Set(['a', 'b']));
    expect(back.list).toEqual([{ k: 'v' }]);
  });
});

describe('line checksums', () => {
  it('a line ends in its chained checksum and splits back into the JSON it was summed over', () => {
    const obj = { kind: 'write', key: { id: 1 } };
    const { text, sum } = withSum('prev', obj);
    expect(text).toBe(`{"kind":"write","key":{"id":1},"sum":"${sum}"}`);
    expect(splitSum(text)).toEqual({ body: '{"kind":"write","key":{"id":1}}', sum });
    expect(sum).toBe(chainSum('prev', '{"kind":"write","key":{"id":1}}'));
  });

  it('a record value holding its own `sum` key of 32 hex digits does not pass for the line checksum', () => {
    // A before-image may hold any map; only the line's last key is its checksum.
    const inner = '0123456789abcdef0123456789abcdef';
    const obj = { kind: 'write', before: { a: 1, sum: inner } };
    const { text, sum } = withSum('', obj);
    const split = splitSum(text);
    expect(split?.sum).toBe(sum);
    expect(JSON.parse(split?.body ?? '')).toEqual(obj);
  });

  it('a line without a checksum (journal format 1) has none to split, and is not an error', () => {
    expect(splitSum('{"kind":"write","key":{"id":1}}')).toBeUndefined();
  });
});

describe('endOfLastCompleteLine (where a torn file is cut back to)', () => {
  /** The offset for a file of `text`, read through a real file descriptor. */
  function cutPoint(text: string): number {
    const path = tmp().file('lines.jsonl');
    writeFileSync(path, text);
    const fd = openSync(path, 'r');
    try {
      return endOfLastCompleteLine(fd, Buffer.byteLength(text));
    } finally {
      closeSync(fd);
    }
  }

  it('is just after the last newline; a file without one (or empty) is cut to nothing', () => {
    expect(cutPoint('{"a":1}\n{"b":2}\n{"c":')).toBe(16);
    expect(cutPoint('{"a":1}\n')).toBe(8);
    expect(cutPoint('{"torn header')).toBe(0);
    expect(cutPoint('')).toBe(0);
  });

  it('finds the newline across 64 KiB reads: at the first byte of the last read, and only in an earlier one', () => {
    // The last read covers the final 65,536 bytes; its first byte is this newline.
    expect(cutPoint(`${'x'.repeat(9)}\n${'y'.repeat(65_535)}`)).toBe(10);
    // A torn line longer than one read: the newline is two reads back.
    expect(cutPoint(`{"a":1}\n${'z'.repeat(200_000)}`)).toBe(8);
  });
});
