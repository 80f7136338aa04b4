/**
 * Ctrl-C from the CLI's first moment (in a real pseudo-terminal from util-linux `script`), and in
 * commands that have no stop handler of their own: the entry installs its handler before loading
 * anything else, so the process never dies silently; it says nothing was written and exits 130.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpuTicks } from '../helpers/proc.js';
import { CTRL_C, HAS_SCRIPT, inTerminal, NO_SCRIPT, type TerminalCli } from '../helpers/terminal.js';
import { useTempDirs } from '../helpers/tmp.js';
import { createGeneratedVeo3Db, killLeftoverProcesses, lockFiles, markItemsSpec, SYNC_FIX, startCli, waitFor } from '../safety/support.js';

const tmp = useTempDirs();
killLeftoverProcesses();

/** A loopback endpoint that accepts connections and never answers: a command waits there. */
let silent: Server;
const sockets = new Set<Socket>();

beforeAll(async () => {
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => silent?.close(() => resolve()));
});

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
});

const silentEnv = () => ({ TABLE: 'never-answered', ENDPOINT: `http://127.0.0.1:${(silent.address() as { port: number }).port}` });

/** The pid of the CLI that `script` runs (its only child: the command is exec'd). */
function cliPid(run: TerminalCli): number | undefined {
  try {
    const children = readFileSync(`/proc/${run.pid}/task/${run.pid}/children`, 'utf8').trim();
    return children ? Number(children.split(/\s+/)[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** The node binary the CLI runs under, as /proc/PID/exe names it. */
const NODE_EXECUTABLE = realpathSync(process.execPath);

/** Clock ticks per second of /proc's CPU times. */
/** The entry's first stop handler, as bin/datafix.js imports it. */
const EARLY_STOP = pathToFileURL(new URL('../../dist/cli/early-stop.js', import.meta.url).pathname).href;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * CPU time (ms) process `pid` has used, when it runs node (the shell `script` starts has exec'd
 * it); undefined before. CPU time measures how far start-up got, whatever the machine's load.
 */
function nodeCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Node itself once the shell has exec'd it: its executable, not its name (Node 24 names its
    // main thread `MainThread`, which /proc shows as the process's name).
    if (readlinkSync(`/proc/${pid}/exe`) !== NODE_EXECUTABLE) return undefined;
    return (cpuTicks(pid) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

describe('plan while it waits for a DynamoDB endpoint that does not answer', () => {
  it('Ctrl-C: "interrupted: nothing was written.", exit 130, no plan written', async () => {
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const out = dir.file('mark.plan.jsonl');
    const accepted = sockets.size;
    const run = inTerminal(['plan', spec, '--out', out], { cwd: dir.path, env: silentEnv() });
    await waitFor('plan to connect', () => sockets.size > accepted, { timeoutMs: 30_000, intervalMs: 5 });
    run.press(CTRL_C);
    const r = await run.done;
    const screen = run.screen();
    expect(r.code, screen).toBe(130);
    expect(screen).toContain('interrupted: nothing was written.');
    expect(existsSync(out)).toBe(false);
  });

  it('SIGTERM with --json: stdout holds one object saying it was interrupted, exit 130', async () => {
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const accepted = sockets.size;
    const run = startCli(['plan', spec, '--out', dir.file('mark.plan.jsonl'), '--json'], { cwd: dir.path, env: silentEnv() });
    await waitFor('plan to connect', () => sockets.size > accepted, { timeoutMs: 30_000, intervalMs: 5 });
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toContain('interrupted: nothing was written.');
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([{ interrupted: { message: 'interrupted: nothing was written' } }]);
  });
});

describe('datafix run', () => {
  // The entry installs its stop handler right after Node's own start-up; the CLI's modules and the
  // run command's own handler come some 60 ms of CPU later. Ctrl-C in between once ended the
  // process silently. The CPU a process has used once it has loaded and installed that handler as
  // the entry does is measured here (the most of three), on this machine and this Node version,
  // and Ctrl-C lands 20 and 40 ms of CPU after it. Before it, Ctrl-C is Node's own and ends the
  // process as it ends any; on some machines that moment is over 20 ms of CPU after `node -e 0`.
  const installedMs = (() => {
    let most = 0;
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { installEarlyStop } = await import(${JSON.stringify(EARLY_STOP)}); installEarlyStop([]); const u = process.cpuUsage(); console.log((u.user + u.system) / 1000)`,
        ],
        { encoding: 'utf8' },
      );
      most = Math.max(most, Number(r.stdout.trim()));
    }
    return Math.ceil(most);
  })();
  for (const afterNodeMs of [20, 40]) {
    it(`Ctrl-C ${afterNodeMs} ms of CPU after the entry's first stop handler, before the command is loaded: says nothing was written, exit 130, no lock`, async () => {
      const cpuMs = installedMs + afterNodeMs;
      const dir = tmp();
      // A real database of some thousand rows: the run lasts longer than the moment of the press.
      const db = dir.file('veo3.db');
      createGeneratedVeo3Db(db, 3000);
      const run = inTerminal(['run', SYNC_FIX, '--yes'], { cwd: dir.path, env: { VEO3_DB_PATH: db } });
      await waitFor(`node to use ${cpuMs} ms of CPU`, () => (nodeCpuMs(cliPid(run)) ?? 0) >= cpuMs, { timeoutMs: 30_000, intervalMs: 1 });
      run.press(CTRL_C);
      const r = await run.done;
      const screen = run.screen();
      expect(r.code, screen).toBe(130);
      // Before the run started: nothing written. A faster Node can be past start-up already: then
      // the run stopped cleanly with its checkpoint saved. Either way, said so.
      expect(screen).toMatch(/interrupted: nothing was written\.|interrupted: the checkpoint is saved/);
      expect(screen).not.toContain('internal error');
      expect(lockFiles(dir.path)).toEqual([]);
    });
  }
});
