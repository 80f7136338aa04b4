/**
 * A dry run piped into a slow reader (`| less`) must not go on producing output nobody takes (and
 * hold it all in memory): the run waits for the pipe instead. Node writes to a pipe asynchronously
 * on POSIX (the "A note on process I/O" section of Node's `process` documentation): without the
 * wait, the run reads the whole table and queues every line in memory while the reader sleeps.
 * The built CLI runs over a SQLite table of 15 000 wide rows, once with stdout to a file and once
 * into a pipe nobody reads for a while. With the wait, most of the table is read (by system calls,
 * or through the memory map a dry run's connection reads by: its pages referenced again) and most
 * of the CPU used (utime + stime in /proc/PID/stat) after the reader comes back; without it,
 * almost nothing is. Peak RSS is not the measure: V8 sizes its heap by allocation rate and
 * timing, and two runs of the same kind differed by more than the output.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backpressured } from '../../src/cli/progress.js';
import { createVeo3Database } from '../../src/demo/sqlite-sample.js';
import { BIN, runCli, TIME_SCALE } from '../helpers/cli.js';
import { cpuTicks } from '../helpers/proc.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  cliEnv,
  createGeneratedVeo3Db,
  dumpSqlite,
  generationIds,
  lockFiles,
  onlyState,
  SYNC_FIX,
  sleep,
  startCli,
  waitFor,
} from '../safety/support.js';

const tmp = useTempDirs();
const ROWS = 15_000;
/** Long ids make every record's lines ~2.1 KB (32 MB in all): far more than a pipe holds (64 KiB). */
const ID_WIDTH = 2000;

/** Bytes a process has read so far through read and pread (`rchar` in /proc/PID/io). */
function bytesRead(pid: number): number {
  const m = /^rchar:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (!m) throw new Error(`no rchar in /proc/${pid}/io`);
  return Number(m[1]);
}

/**
 * Bytes of `file` a process has read through a memory map of it (as a dry run's SQLite
 * connection reads) since `forgetReferences`: the `Referenced` size of its mappings in
 * /proc/PID/smaps, the pages whose accessed bit is set.
 */
function mappedBytesReferenced(pid: number, file: string): number {
  let bytes = 0;
  let inFile = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inFile = line.endsWith(` ${file}`);
    else if (inFile && line.startsWith('Referenced:')) bytes += Number(/(\d+) kB/.exec(line)?.[1] ?? 0) * 1024;
  }
  return bytes;
}

/** Clears the accessed bit of every page of the process (/proc/PID/clear_refs, proc(5)). */
function forgetReferences(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '1');
}

/** Waits for the child to exit; resolves with its exit code and what it wrote on stderr. */
function exited(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

describe('output backpressure', () => {
  it(
    'a dry run into a pipe nobody reads for a while stands still (reads nothing, uses no CPU) until the reader takes its output',
    async () => {
      const dir = tmp();
      const db = dir.file('big.db');
      createVeo3Database(db, []);
      const w = new Database(db);
      // One INSERT … SELECT over a recursive CTE: every fixable row in one statement.
      w.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
      INSERT INTO veo3_video_generations (id, prompt, status, raw_response, media_generation_id, created_at, updated_at)
      SELECT printf('%0${ID_WIDTH}d', i), 'p', 'completed', '{"operations":[{"mediaGenerationId":"M' || i || '"}]}', NULL,
             '2025-06-01T10:00:00.000Z', '2025-06-01T10:00:00.000Z' FROM n`);
      w.close();
      const dbBytes = statSync(db).size;
      const args = [BIN, 'run', SYNC_FIX, '--dry-run'];
      const env = cliEnv({ VEO3_DB_PATH: db });

      const outFile = dir.file('out.txt');
      const fd = openSync(outFile, 'w');
      const started = Date.now();
      const toFile = await exited(spawn(process.execPath, args, { cwd: dir.path, env, stdio: ['ignore', fd, 'pipe'] }));
      closeSync(fd);
      const fileMs = Date.now() - started;
      expect(toFile.code, toFile.stderr).toBe(0);
      const written = statSync(outFile).size;
      // Every record printed: far more output than any pipe or heap slack holds.
      expect(written).toBeGreaterThan(ROWS * ID_WIDTH);

      const piped = spawn(process.execPath, args, { cwd: dir.path, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const result = exited(piped);
      const pid = piped.pid as number;
      // The last reading taken while the process lived (/proc/PID goes with it), and the most of
      // the mapped file referenced since the reader came back (the mapping goes at the close).
      let last = { read: 0, cpu: 0 };
      let mappedAfter = 0;
      let resumed = false;
      const sampler = setInterval(() => {
        try {
          last = { read: bytesRead(pid), cpu: cpuTicks(pid) };
          if (resumed) mappedAfter = Math.max(mappedAfter, mappedBytesReferenced(pid, db));
        } catch {
          // exited between two readings
        }
      }, 5);
      piped.stdout?.pause();
      // Nobody reads for twice as long as the whole run took into the file (at least 2 s): the
      // pipe fills within the first pages of output. Without backpressure the run goes on
      // meanwhile, reading the whole table and computing every record into memory.
      await sleep(Math.max(2000, 2 * fileMs));
      const atResume = { ...last };
      // The run counted the rows before its first page, touching every page of the table: what
      // it reads through the map from here on shows as pages referenced again.
      forgetReferences(pid);
      resumed = true;
      const received: Buffer[] = [];
      piped.stdout?.on('data', (c: Buffer) => {
        received.push(c);
      });
      piped.stdout?.resume();
      const toPipe = await result;
      clearInterval(sampler);
      expect(toPipe.code, toPipe.stderr).toBe(0);
      // Every line arrived, the same as into the file; only the run's timestamp and duration differ.
      const oneRun = (text: string) =>
        text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '(now)').replace(/^ {2}duration {2}.*$/m, '  duration  (as measured)');
      expect(oneRun(Buffer.concat(received).toString('utf8'))).toBe(oneRun(readFileSync(outFile, 'utf8')));
      // It stood still while nobody read: most of the table and most of the work came after the
      // reader did (a page of 200 rows is ~400 kB of a table of ~33 MB).
      const readAfter = last.read - atResume.read + mappedAfter;
      expect(readAfter, `bytes read after the reader came back (table ${dbBytes} bytes)`).toBeGreaterThan(dbBytes / 2);
      expect(last.cpu - atResume.cpu, `CPU ticks after the reader came back (${atResume.cpu} before)`).toBeGreaterThan(atResume.cpu / 2);
    },
    60_000 * TIME_SCALE,
  );
});

describe('waiting for room in the output', () => {
  /** A stream that takes 16 bytes at a time and finishes each write on a later tick, like a pipe. */
  const slowStream = () =>
    new Writable({
      highWaterMark: 16,
      write(_chunk, _enc, done) {
        setImmediate(done);
      },
    });
  const settles = (p: Promise<void> | undefined) =>
    Promise.race([Promise.resolve(p).then(() => 'settled'), new Promise((r) => setTimeout(() => r('still waiting'), 1000 * TIME_SCALE))]);

  it('waits while the buffer is full, and goes on once it drains', async () => {
    const stream = slowStream();
    const out = backpressured(stream);
    out.write('x'.repeat(64));
    const room = out.room();
    expect(room).toBeInstanceOf(Promise);
    expect(await settles(room)).toBe('settled');
  });

  it('does not wait for a drain that already happened while the engine was busy', async () => {
    const stream = slowStream();
    const out = backpressured(stream);
    out.write('x'.repeat(64));
    // The engine awaits its writes here; the buffer empties and 'drain' fires with nobody listening.
    await new Promise<void>((r) => stream.once('drain', () => r()));
    // Waiting for a second 'drain' would never end: the process would exit 13 mid-run.
    expect(await settles(out.room())).toBe('settled');
  });

  it('asked again while it waits (a line per record, as undo asks), shares the one wait: no listeners pile up', async () => {
    const stream = slowStream();
    const out = backpressured(stream);
    const waits: (Promise<void> | undefined)[] = [];
    for (let i = 0; i < 20; i++) {
      out.write('x'.repeat(64));
      waits.push(out.room());
    }
    // Node warns (MaxListenersExceededWarning) from 11 listeners on: one set, whatever the count.
    expect(stream.listenerCount('drain')).toBe(1);
    expect(new Set(waits).size).toBe(1);
    expect(waits[0]).toBeInstanceOf(Promise);
    expect(await settles(Promise.all(waits).then(() => undefined))).toBe('settled');
  });

  it('does not wait when nothing is left to write though the stream still asks for a drain that never comes', async () => {
    // stdout on a pipe whose reader went away was seen in this state: empty, needDrain still set,
    // and no 'drain', 'close' or 'error' ever after. Waiting on events alone exited 13 mid-run.
    const stream = slowStream();
    const out = backpressured(stream);
    out.write('x'.repeat(64));
    await new Promise<void>((r) => stream.once('drain', () => r()));
    Object.defineProperty(stream, 'writableNeedDrain', { get: () => true });
    expect(stream.writableLength).toBe(0);
    expect(await settles(out.room())).toBe('settled');
  });
});

describe('a reader that goes away', () => {
  it('`datafix run | head`: the live run stops like Ctrl-C (exit 130, checkpoint, no lock); --resume fixes every row', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    const { expected } = createGeneratedVeo3Db(db, 2400); // twelve pages of 200
    const env = { VEO3_DB_PATH: db };
    const run = startCli(['run', SYNC_FIX], { cwd: dir.path, env });
    // `head -1`: read the first record line, then close the pipe.
    await waitFor('the first record line', () => run.stdout().includes('\n'), { intervalMs: 2 });
    run.child.stdout.destroy();
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain(`interrupted: the checkpoint is saved. Continue with: datafix run ${SYNC_FIX} --resume`);
    expect(r.stderr).not.toMatch(/EPIPE|at .*\.js:\d+/);
    expect(lockFiles(dir.path)).toEqual([]);
    expect(onlyState(dir.path)?.status).toBe('interrupted');

    const resumed = await runCli(['run', SYNC_FIX, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, resumed.stderr).toBe(0);
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
  });

  it('`datafix undo JOURNAL | head`: undo finishes its work, restores every row and prints no warning', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    createGeneratedVeo3Db(db, 2400);
    const before = dumpSqlite(db);
    const env = { VEO3_DB_PATH: db };
    const run = await runCli(['run', SYNC_FIX, '--json'], { cwd: dir.path, env });
    expect(run.code, run.stderr).toBe(0);
    const journal = onlyState(dir.path)?.journal as string;
    const undo = startCli(['undo', journal], { cwd: dir.path });
    await waitFor('the first restored line', () => undo.stdout().includes('\n'), { intervalMs: 2 });
    undo.child.stdout.destroy();
    const r = await undo.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Warning|EPIPE|at .*\.js:\d+/);
    expect(dumpSqlite(db)).toEqual(before);
  });
});
