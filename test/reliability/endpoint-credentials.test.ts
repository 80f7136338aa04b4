/**
 * Credentials inside an endpoint URL (`http://user:password@host:port`, `?token=…`) never appear in
 * what datafix prints or stores: not in stdout or stderr, not in the journal header, the state or
 * lock files, nor in a saved plan. The run itself still works through such an endpoint.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redactText } from '../../src/adapters/redact.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { inTerminal } from '../helpers/terminal.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, show } from '../safety/support.js';
import { expectOracleState, I2V_FIX, i2vDataset, oracleCounts, scanAll } from './support.js';

const tmp = useTempDirs();
const PASSWORD = 'pa55-SECRET-in-url';
const USER = 'ops-USERNAME';
const TOKEN = 'tok-SECRET-in-query';
let dynamo: RunningDynalite;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo?.stop();
});

/** `base` with user info and a token query string added. */
function withCredentials(base: string): string {
  const url = new URL(base);
  url.username = USER;
  url.password = PASSWORD;
  url.search = `?token=${TOKEN}`;
  return url.toString();
}

/** Every file under `dir` with its text. */
function allFiles(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push({ path: p, text: readFileSync(p, 'latin1') });
    }
  };
  walk(dir);
  return out;
}

function expectNoCredentials(where: string, text: string): void {
  for (const secret of [PASSWORD, USER, TOKEN]) expect(text, where).not.toContain(secret);
}

describe('credentials in the endpoint URL', () => {
  it('a live run, a saved plan and its apply work through the URL and store or print none of it', async () => {
    const items = i2vDataset(27);
    const expected = oracleCounts(items);
    const endpoint = withCredentials(dynamo.endpoint);
    const dir = tmp();
    const env = (table: string) => dynamoEnv(table, endpoint);

    await createMediaTable(dynamo.endpoint, 'creds-run');
    await seedItems(dynamo.endpoint, 'creds-run', items);
    const run = await runCli(['run', I2V_FIX, '--verbose'], { cwd: dir.path, env: env('creds-run') });
    expect(run.code, show(run)).toBe(0);
    // The target line names the endpoint, without its credentials.
    expect(run.stderr).toContain(`target  dynamodb creds-run (${dynamo.endpoint})`);
    expect(expectOracleState(items, await scanAll(dynamo.endpoint, 'creds-run'))).toBe(expected.updated);

    await createMediaTable(dynamo.endpoint, 'creds-plan');
    await seedItems(dynamo.endpoint, 'creds-plan', items);
    const planFile = dir.file('creds.plan.jsonl');
    const plan = await runCli(['plan', I2V_FIX, '--out', planFile], { cwd: dir.path, env: env('creds-plan') });
    expect(plan.code, show(plan)).toBe(0);
    const apply = await runCli(['apply', planFile, '--json'], { cwd: dir.path, env: env('creds-plan') });
    expect(apply.code, show(apply)).toBe(0);
    expect(JSON.parse(apply.stdout)).toMatchObject({ applied: expected.updated, drifted: 0, failed: 0 });
    expect(expectOracleState(items, await scanAll(dynamo.endpoint, 'creds-plan'))).toBe(expected.updated);

    const files = allFiles(dir.path);
    // A journal and state file for the run, a journal for the apply, and the plan.
    expect(files.filter((f) => f.path.endsWith('.journal.jsonl'))).toHaveLength(2);
    expect(files.filter((f) => f.path.endsWith('.state.json'))).toHaveLength(1);
    expect(files.some((f) => f.path === planFile)).toBe(true);
    for (const r of [run, plan, apply]) {
      expectNoCredentials('stdout', r.stdout);
      expectNoCredentials('stderr', r.stderr);
    }
    for (const f of files) expectNoCredentials(f.path, f.text);
  });

  it('an unreachable endpoint with credentials: exit 2 naming the endpoint without them; nothing stored', async () => {
    const dir = tmp();
    const endpoint = withCredentials('http://127.0.0.1:9');
    for (const args of [
      ['run', I2V_FIX],
      ['run', I2V_FIX, '--dry-run'],
      ['plan', I2V_FIX, '--out', dir.file('p.jsonl')],
    ]) {
      const r = await runCli(args, { cwd: dir.path, env: dynamoEnv('media', endpoint) });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain('DF410');
      expect(r.stderr).toContain('http://127.0.0.1:9');
      expectNoCredentials('stdout', r.stdout);
      expectNoCredentials('stderr', r.stderr);
    }
    expect(allFiles(dir.path)).toEqual([]);
  });

  it('a spec error about a malformed endpoint does not print its credentials, whatever its shape', async () => {
    const dir = tmp();
    for (const endpoint of [
      `ftp://${USER}:${PASSWORD}@host/x?token=${TOKEN}`,
      `${USER}:${PASSWORD}@127.0.0.1:8612`,
      `//${USER}:${PASSWORD}@host:1`,
      `http:/${USER}:${PASSWORD}@host:1`,
      `http://${USER}:${PASSWORD} x@host:1`,
      `127.0.0.1:8612?token=${TOKEN}`,
      `http://${USER}:${PASSWORD}/x@host:1`,
      `http://${USER}:${PASSWORD}#x@host:1`,
      `http://${USER}:${PASSWORD}?x@host:1`,
      `http://${USER}:${PASSWORD}`,
      `http://${USER}:${PASSWORD}/dynamodb`,
      `http://${USER}:${PASSWORD}%40127.0.0.1:8000`,
    ]) {
      const r = await runCli(['run', I2V_FIX], { cwd: dir.path, env: dynamoEnv('media', endpoint) });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain('DF302');
      expect(r.stderr).toContain(
        'endpoint must be an http(s) URL such as http://localhost:8000 (the value is not shown: it may hold credentials)',
      );
      expectNoCredentials(`stderr for ${endpoint}`, r.stderr);
    }
    // A value that cannot hold credentials is shown, to help find the mistake.
    const plain = await runCli(['run', I2V_FIX], { cwd: dir.path, env: dynamoEnv('media', 'localhost:8000') });
    expect(plain.stderr).toContain('endpoint must be an http(s) URL such as http://localhost:8000, got `localhost:8000`');
  });

  it('the task list of a terminal prints a failure without the credentials its message quotes', async () => {
    const failing = tmp().write(
      'fail.mjs',
      `const { taskListReporter } = await import(${JSON.stringify(`${REPO_ROOT}dist/cli/task-list.js`)});
const r = taskListReporter({ specFile: 'x.yaml', dryRun: true, verbose: false, out: process.stdout, err: process.stderr });
await r.end({ error: new Error(${JSON.stringify(`cannot reach http://${USER}:${PASSWORD}@127.0.0.1:9/?token=${TOKEN}#access_token=${TOKEN}`)}) });
`,
    );
    // In a terminal listr2 draws the list in place: the failed task's line.
    const drawn = inTerminal([], { cwd: tmp().path, script: failing });
    const r = await drawn.done;
    expect(r.code, drawn.screen()).toBe(0);
    expect(drawn.screen()).toContain('✖ Loading and validating x.yaml: cannot reach http://127.0.0.1:9/\n');
    expectNoCredentials('terminal', r.stdout);
    expectNoCredentials('terminal (stderr)', r.stderr);
    // Through a pipe listr2 prints a line per change instead: the failure line is cleaned too.
    const piped = spawnSync(process.execPath, [failing], { encoding: 'utf8' });
    expect(piped.status, piped.stderr).toBe(0);
    expect(piped.stdout).toContain(
      '✖ Loading and validating x.yaml [FAILED: Loading and validating x.yaml: cannot reach http://127.0.0.1:9/]\n',
    );
    expectNoCredentials('stdout', piped.stdout);
    expectNoCredentials('stderr', piped.stderr);
  });
});

describe('redactText', () => {
  it('removes user info, query string and fragment of every URL, whatever follows them', () => {
    const cases: [string, string][] = [
      [`GET http://${USER}:${PASSWORD}@h:8000/a?token=${TOKEN} failed`, 'GET http://h:8000/a failed'],
      [`see https://h/x#access_token=${TOKEN}`, 'see https://h/x'],
      [`(from http://h/?sig=${TOKEN})CD) done`, '(from http://h/ done'],
      [`"http://h/?a=1&sig=${TOKEN}" and 'https://${USER}@h2/p'`, `"http://h/" and 'https://h2/p'`],
      ['no URL here: a?b#c', 'no URL here: a?b#c'],
      ['http://plain-host:9/path stays', 'http://plain-host:9/path stays'],
    ];
    for (const [text, want] of cases) expect(redactText(text), text).toBe(want);
  });
});
