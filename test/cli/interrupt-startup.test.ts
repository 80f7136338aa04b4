/**
 * Ctrl-C from the CLI's first moment (in a real pseudo-terminal from util-linux `script`), and in
 * commands that have no stop handler of their own: the entry installs its handler before loading
 * anything else, so the process never dies silently; it says nothing was written and exits 130.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctrlCNothingWritten, HAS_SCRIPT, inTerminal, NO_SCRIPT } from '../helpers/terminal.js';
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

/** Holds the CLI's import of its commands once the entry's first stop handler is in place. */
const HOLD_CLI_LOAD = fileURLToPath(new URL('../helpers/hold-cli-load.mjs', import.meta.url));

describe('plan while it waits for a DynamoDB endpoint that does not answer', () => {
  it('Ctrl-C: "interrupted: nothing was written.", exit 130, no plan written', async () => {
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const out = dir.file('mark.plan.jsonl');
    const accepted = sockets.size;
    const run = inTerminal(['plan', spec, '--out', out], { cwd: dir.path, env: silentEnv() });
    await waitFor('plan to connect', () => sockets.size > accepted, { timeoutMs: 30_000, intervalMs: 5 });
    await ctrlCNothingWritten(run);
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
  // process silently. A preload holds the import of the CLI in that window and says when it is
  // there, so the press lands in it on a loaded machine too (timing it by the process's CPU did not).
  it("Ctrl-C after the entry's first stop handler, before the command is loaded: says nothing was written, exit 130, no lock", async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    createGeneratedVeo3Db(db, 100);
    const before = readFileSync(db);
    const mark = dir.file('held');
    const run = inTerminal(['run', SYNC_FIX, '--yes'], {
      cwd: dir.path,
      env: { VEO3_DB_PATH: db, NODE_OPTIONS: `--import=${HOLD_CLI_LOAD}`, DATAFIX_TEST_HOLD_MARK: mark },
    });
    await waitFor('the CLI to be held before its commands load', () => existsSync(mark), { timeoutMs: 30_000, intervalMs: 5 });
    await ctrlCNothingWritten(run);
    expect(lockFiles(dir.path)).toEqual([]);
    expect(readFileSync(db).equals(before)).toBe(true);
  });
});
