/**
 * Ctrl-C (in a real pseudo-terminal from util-linux `script`) and SIGTERM while DynamoDB does not
 * answer: requests still waiting shortly after the signal are cut off instead of waiting out the
 * SDK's timeouts (5 s to connect, 60 s a request, six attempts), so the command stops within about
 * a second, records nothing as written that it does not know was, keeps what a resume needs and
 * exits 130. The endpoints are real loopback servers: dynalite behind a proxy that holds chosen
 * requests unanswered, and a TCP server that accepts connections and never answers at all.
 */
import { readdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAME_STOP_MS } from '../../src/cli/early-stop.js';
import { runCli, TIME_SCALE } from '../helpers/cli.js';
import { type RunningDynalite, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { CTRL_C, HAS_SCRIPT, inTerminal, NO_SCRIPT } from '../helpers/terminal.js';
import { useTempDirs } from '../helpers/tmp.js';
import {
  journalResults,
  journalWrites,
  jsonLines,
  jsonSummary,
  killLeftoverProcesses,
  lockFiles,
  markedItems,
  markItemsSpec,
  markItemsTable,
  onlyState,
  show,
  startCli,
  waitFor,
} from '../safety/support.js';

const tmp = useTempDirs();
killLeftoverProcesses();

/** Items in the table; the mark-items fix reads them 10 a page and writes each once. */
const N = 40;
const PAGE = 10;
/** Stopped "within about a second": the grace for answers in flight plus start-up of the summary. */
const PROMPT_MS = 2500 * TIME_SCALE;

let dynamo: RunningDynalite;
let proxy: CountingProxy;
/** Operations the proxy holds unanswered until `release` (the requests are then dropped, never forwarded). */
const held = new Set<string>();
let release: (() => void) | undefined;
let releasing: Promise<never> = new Promise(() => {});
let silent: Server;
const silentSockets = new Set<Socket>();
let tables = 0;

function holdNewRequests(): void {
  releasing = new Promise<never>((_, reject) => {
    release = () => reject(new Error('dropped by the test'));
  });
  releasing.catch(() => {});
}

beforeAll(async () => {
  dynamo = await startDynalite();
  holdNewRequests();
  proxy = await startCountingProxy(dynamo.endpoint, {
    fault: (r) => (held.has(r.operation) ? { beforeForward: () => releasing } : undefined),
  });
  // Accepts every connection and never sends a byte back.
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  release?.();
  for (const s of silentSockets) s.destroy();
  await new Promise<void>((resolve) => silent?.close(() => resolve()));
  await proxy?.stop();
  await dynamo?.stop();
});

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
});

async function freshTable(): Promise<string> {
  const table = `unanswered-${++tables}`;
  await markItemsTable(dynamo.endpoint, table, N);
  return table;
}

/** Items whose copyOfN holds their n, counted in the table itself. */
async function marked(table: string): Promise<number> {
  const { items, marked } = await markedItems(dynamo.endpoint, table);
  expect(items).toBe(N);
  return marked;
}

type Stop = 'Ctrl-C' | 'SIGTERM';

/** `datafix ARGS` in a terminal (Ctrl-C, with `--yes`) or with pipes (SIGTERM). */
function start(stop: Stop, args: string[], cwd: string, env: Record<string, string>) {
  if (stop === 'Ctrl-C') {
    const run = inTerminal([...args, '--yes'], { cwd, env });
    return { run, signal: () => run.press(CTRL_C), screen: () => run.screen() };
  }
  const run = startCli(args, { cwd, env });
  return { run, signal: () => run.child.kill(stop), screen: () => run.stdout() + run.stderr() };
}

/**
 * Signals the command again and measures how long it takes to exit; first waits out
 * SAME_STOP_MS, within which a signal is the first one delivered again.
 */
async function stopAndTime(cli: ReturnType<typeof start>) {
  await new Promise((resolve) => setTimeout(resolve, SAME_STOP_MS + 50));
  const at = Date.now();
  cli.signal();
  const r = await cli.run.done;
  return { code: r.code, ms: Date.now() - at, screen: cli.screen().replace(/\r/g, '') };
}

function onlyJournal(dir: string): string {
  const runs = join(dir, '.datafix/runs');
  const journals = readdirSync(runs).filter((f) => f.endsWith('.journal.jsonl'));
  expect(journals).toHaveLength(1);
  return join(runs, journals[0] as string);
}

describe('writes that get no answer', () => {
  for (const stop of ['Ctrl-C', 'SIGTERM'] as const) {
    it(`${stop}: the run stops within about a second, counts nothing it does not know, keeps a resumable checkpoint, exit 130; --resume finishes with whole-run totals equal to the table`, async () => {
      const table = await freshTable();
      const dir = tmp();
      const spec = markItemsSpec(dir);
      const env = { TABLE: table, ENDPOINT: proxy.endpoint };
      const before = proxy.counts().UpdateItem ?? 0;
      held.add('UpdateItem');
      let result: Awaited<ReturnType<typeof stopAndTime>>;
      try {
        const cli = start(stop, ['run', spec], dir.path, env);
        await waitFor('the first writes to be held', () => (proxy.counts().UpdateItem ?? 0) > before, { timeoutMs: 30_000, intervalMs: 5 });
        result = await stopAndTime(cli);
      } finally {
        held.delete('UpdateItem');
        release?.();
        holdNewRequests();
      }
      const { code, ms, screen } = result;
      expect(code, screen).toBe(130);
      expect(ms, screen).toBeLessThan(PROMPT_MS);
      expect(screen).not.toContain('internal error');
      // The first page's writes never reached the table; none is counted as made.
      expect(await marked(table)).toBe(0);
      expect(screen).toMatch(/\n {2}total +0\n {2}updated +0\n/);
      expect(screen).toContain(`interrupted: the checkpoint is saved. Continue with: datafix run ${spec} --resume`);
      expect(onlyState(dir.path)).toMatchObject({ status: 'interrupted', pages: 0, records: 0 });
      expect(lockFiles(dir.path)).toEqual([]);
      // The page's writes are journaled without an outcome: undo checks them against the table.
      const journal = onlyJournal(dir.path);
      expect(journalWrites(journal)).toHaveLength(PAGE);
      expect(journalResults(journal)).toHaveLength(0);

      const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env, timeoutMs: 60_000 });
      expect(resumed.code, show(resumed)).toBe(0);
      expect(await marked(table)).toBe(N);
      expect(jsonSummary(resumed).wholeRun).toMatchObject({ total: N, updated: N, skipped: 0, failed: 0 });
    });
  }
});

describe('apply and undo whose writes get no answer', () => {
  /** Runs `args` with every UpdateItem held, stops it once one is held, and times the stop. */
  async function stopWhileHeld(stop: Stop, args: string[], cwd: string, env: Record<string, string>) {
    const before = proxy.counts().UpdateItem ?? 0;
    held.add('UpdateItem');
    try {
      const cli = start(stop, args, cwd, env);
      await waitFor('the first writes to be held', () => (proxy.counts().UpdateItem ?? 0) > before, { timeoutMs: 30_000, intervalMs: 5 });
      return await stopAndTime(cli);
    } finally {
      held.delete('UpdateItem');
      release?.();
      holdNewRequests();
    }
  }

  it('SIGTERM during apply: stops within about a second, applies and counts nothing, exit 130; apply again applies every record', async () => {
    const table = await freshTable();
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const env = { TABLE: table, ENDPOINT: proxy.endpoint };
    const plan = dir.file('mark.plan.jsonl');
    const made = await runCli(['plan', spec, '--out', plan], { cwd: dir.path, env });
    expect(made.code, show(made)).toBe(0);

    const { code, ms, screen } = await stopWhileHeld('SIGTERM', ['apply', plan], dir.path, env);
    expect(code, screen).toBe(130);
    expect(ms, screen).toBeLessThan(PROMPT_MS);
    expect(await marked(table)).toBe(0);
    expect(screen).toMatch(/Apply summary \(interrupted\)\n {2}total {4}0\n {2}applied {2}0\n/);
    expect(screen).toContain(`interrupted: 0 of ${N} planned record(s) were handled and journaled. Continue with: datafix apply ${plan}`);
    expect(lockFiles(dir.path)).toEqual([]);
    const journal = onlyJournal(dir.path);
    expect(journalWrites(journal)).toHaveLength(N);
    expect(journalResults(journal)).toHaveLength(0);
    expect(jsonLines(journal).at(-1)).toMatchObject({ type: 'end', interrupted: true });

    const again = await runCli(['apply', plan, '--journal', dir.file('again.journal.jsonl')], { cwd: dir.path, env });
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`total {4}${N}\\n {2}applied {2}${N}\\n`));
    expect(await marked(table)).toBe(N);
  });

  it('Ctrl-C during undo: stops within about a second, restores and counts nothing, exit 130; undo again restores every record', async () => {
    const table = await freshTable();
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const env = { TABLE: table, ENDPOINT: proxy.endpoint };
    const journal = dir.file('run.journal.jsonl');
    const ran = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(ran.code, show(ran)).toBe(0);
    expect(await marked(table)).toBe(N);

    const { code, ms, screen } = await stopWhileHeld('Ctrl-C', ['undo', journal], dir.path, env);
    expect(code, screen).toBe(130);
    expect(ms, screen).toBeLessThan(PROMPT_MS);
    expect(await marked(table)).toBe(N);
    expect(screen).toMatch(/Undo summary \(interrupted\)\n {2}total {7}0\n {2}not written 0\n {2}restored {4}0\n {2}unchanged {3}0\n/);
    expect(lockFiles(dir.path)).toEqual([]);

    const again = await runCli(['undo', journal], { cwd: dir.path, env });
    expect(again.code, show(again)).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`total {7}${N}\\n {2}not written 0\\n {2}restored {4}${N}\\n`));
    expect(await marked(table)).toBe(0);
  });
});

describe('an endpoint that accepts connections and never answers', () => {
  /** `datafix run` in a terminal against the silent endpoint, once it has connected there. */
  async function connectedToSilent() {
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const { port } = silent.address() as { port: number };
    const accepted = silentSockets.size;
    const cli = start('Ctrl-C', ['run', spec], dir.path, { TABLE: 'never-answered', ENDPOINT: `http://127.0.0.1:${port}` });
    await waitFor('a connection to the silent endpoint', () => silentSockets.size > accepted, { timeoutMs: 30_000, intervalMs: 5 });
    return { dir, cli };
  }

  it('Ctrl-C while the run checks the table: stops within about a second, nothing written, no lock, exit 130', async () => {
    const { dir, cli } = await connectedToSilent();
    const { code, ms, screen } = await stopAndTime(cli);
    expect(code, screen).toBe(130);
    expect(ms, screen).toBeLessThan(PROMPT_MS);
    expect(screen).toContain('interrupted: nothing was written.');
    expect(screen).not.toContain('internal error');
    expect(lockFiles(dir.path)).toEqual([]);
  });

  it('a second Ctrl-C there stops at once and names no lock: the run had taken none', async () => {
    const { dir, cli } = await connectedToSilent();
    cli.signal();
    await waitFor('the first Ctrl-C to be taken', () => cli.screen().includes('interrupt: '), { timeoutMs: 10_000, intervalMs: 5 });
    const { code, screen } = await stopAndTime(cli);
    expect(code, screen).toBe(130);
    expect(screen).toContain('stopped at once: nothing was written.');
    expect(screen).not.toContain('lock');
    expect(lockFiles(dir.path)).toEqual([]);
  });
});
