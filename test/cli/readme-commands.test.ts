/**
 * Every command in README.md's shell blocks runs as written, in order, in a fresh copy of what a
 * clone holds (fixes/ and schemas/) with no state of its own. `npx datafix` runs this build (as
 * it does in a clone, where the package's own bin answers it), through bash, so environment
 * assignments and shell patterns (`fixes/*.yaml`) work as in the reader's shell. The reader
 * provides what the README says they provide: `.env.prod` naming a DynamoDB table (here dynalite's,
 * behind a loopback proxy that slows it down so a run can be interrupted), and the journal path a
 * run printed for `<run>`. `npm ci` and `npm test` are not run here: they install datafix and run
 * this suite.
 */
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, type CliResult, REPO_ROOT } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { killLeftoverProcesses, show, startCli, startProcess, stateFiles, videoDataset, waitFor } from '../safety/support.js';

const tmp = useTempDirs();
killLeftoverProcesses();

/** The commands of README.md's ```sh blocks, without comments, in order. */
function readmeCommands(): string[] {
  const text = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
  return blocks
    .flatMap((b) => b.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .flatMap((l) => l.split(/\s*&&\s*/));
}

/**
 * Not run here: `npm ci` and `npm test` install datafix and run this very suite; `npm link`
 * changes the machine's global packages, and test/cli/install.test.ts runs it with a temporary
 * global prefix.
 */
const NOT_RUN = ['npm ci', 'npm test', 'npm link'];

/** Commands the README runs in another repository, with `datafix` on PATH (after `npm link`). */
const ELSEWHERE = new Set(['datafix --version', 'datafix new backfill-order-country --backend sqlite', 'datafix test fixes']);

/**
 * Each command with the exit code it must end with. The sample database holds one row whose JSON
 * is cut off: that record fails (exit 1) in every run of the sync fix, as the README's exit codes
 * say.
 */
const EXPECTED: readonly [string, number][] = [
  ['npx datafix demo', 0],
  ['npx datafix demo --sample-db ./veo3-automation.db', 0],
  ['VEO3_DB_PATH=./veo3-automation.db npx datafix run fixes/sync-media-generation-ids.yaml --dry-run', 1],
  ['VEO3_DB_PATH=./veo3-automation.db npx datafix run fixes/sync-media-generation-ids.yaml', 1],
  ['VEO3_DB_PATH=./veo3-automation.db npx datafix run fixes/sync-media-generation-ids.yaml', 1],
  ['npx datafix run fixes/i2v-thumbnails.yaml --env prod --dry-run', 0],
  ['npx datafix validate fixes', 0],
  ['npx datafix validate fixes/*.yaml', 0],
  ['npx datafix run fixes/i2v-thumbnails.yaml --env prod --dry-run --json', 0],
  ['npx datafix new backfill-order-country --backend sqlite', 0],
  ['npx datafix test fixes', 0],
  ['npx datafix explain fixes/i2v-thumbnails.yaml', 0],
  ['npx datafix validate fixes --format github', 0],
  ['npx datafix schema', 0],
  ['npx datafix undo .datafix/runs/<run>.journal.jsonl', 0],
  ['npx datafix run fixes/i2v-thumbnails.yaml --env prod --resume', 0],
  ['npx datafix plan fixes/i2v-thumbnails.yaml --env prod --out p.jsonl', 0],
  ['npx datafix apply p.jsonl --env prod', 0],
  ['npx datafix runs', 0],
  ['npx datafix runs prune --older-than 30d', 0],
  ['datafix --version', 0],
  ['datafix new backfill-order-country --backend sqlite', 0],
  ['datafix test fixes', 0],
];

let dynamo: RunningDynalite;
let slow: CountingProxy;

beforeAll(async () => {
  dynamo = await startDynalite();
  slow = await startCountingProxy(dynamo.endpoint, { latencyMs: 15 });
});
afterAll(async () => {
  await slow?.stop();
  await dynamo?.stop();
});

/** Runs one README line with bash in `cwd`, `npx` answering `datafix` with this build. */
function shell(line: string, cwd: string, bin: string): Promise<CliResult> {
  return startProcess('bash', ['-c', line], { cwd, env: { PATH: `${bin}:${process.env.PATH}` }, input: '', timeoutMs: 120_000 }).done;
}

it('README.md shows exactly the commands this test runs, besides npm ci and npm test', () => {
  expect(readmeCommands().filter((c) => !NOT_RUN.includes(c))).toEqual(EXPECTED.map(([c]) => c));
  expect(readmeCommands().filter((c) => NOT_RUN.includes(c))).toEqual(['npm ci', 'npm test', 'npm link']);
});

it('every README command runs as written in a fresh clone', async () => {
  const clone = tmp();
  cpSync(join(REPO_ROOT, 'fixes'), clone.file('fixes'), { recursive: true });
  cpSync(join(REPO_ROOT, 'schemas'), clone.file('schemas'), { recursive: true });
  const bin = tmp();
  // `npx datafix` in a clone runs the package's own bin.
  writeFileSync(bin.file('npx'), `#!/bin/sh\n[ "$1" = datafix ] || exit 127\nshift\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(bin.file('npx'), 0o755);
  // After `npm link`, `datafix` itself is this build.
  writeFileSync(bin.file('datafix'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(bin.file('datafix'), 0o755);
  const elsewhere = tmp();

  // What the reader provides: a DynamoDB table in the layout the README names, and .env.prod.
  const { items } = videoDataset(600);
  await createMediaTable(dynamo.endpoint, 'media');
  await seedItems(dynamo.endpoint, 'media', items);
  writeFileSync(clone.file('.env.prod'), `DYNAMODB_TABLE=media\nAWS_REGION=us-east-1\nLOCAL_AWS_ENDPOINT=${slow.endpoint}\n`);

  let journal: string | undefined;
  for (const [command, code] of EXPECTED) {
    let line = command;
    if (line.includes('<run>')) {
      // The path the live run printed: `journal PATH (undo with: datafix undo PATH)`.
      expect(journal, 'a live run printed its journal').toBeDefined();
      line = line.replace('.datafix/runs/<run>.journal.jsonl', journal as string);
    }
    if (line.endsWith('--resume')) {
      // What --resume continues: a live run stopped with Ctrl-C after its first page.
      const victim = startCli(['run', 'fixes/i2v-thumbnails.yaml', '--env', 'prod'], { cwd: clone.path });
      const i2vPages = () => stateFiles(clone.path).find((st) => st.fix === 'i2v-thumbnails')?.pages ?? 0;
      await waitFor('the first page', () => i2vPages() >= 1, { timeoutMs: 60_000 });
      victim.child.kill('SIGINT');
      const stopped = await victim.done;
      expect(stopped.code, show(stopped)).toBe(130);
    }
    const r = await shell(line, ELSEWHERE.has(command) ? elsewhere.path : clone.path, bin.path);
    expect(r.code, `${command}\n${show(r)}`).toBe(code);
    expect(r.stderr, command).not.toContain('internal error');
    const printed = /journal (\S+) \(undo with/.exec(r.stderr)?.[1];
    if (journal === undefined && printed !== undefined) journal = printed;
  }
  // What the tour and the authoring commands left in the clone.
  expect(existsSync(clone.file('veo3-automation.db'))).toBe(true);
  expect(readdirSync(clone.file('fixes'))).toEqual(
    expect.arrayContaining(['backfill-order-country.yaml', 'backfill-order-country.test.yaml']),
  );
  expect(readdirSync(elsewhere.file('fixes')).sort()).toEqual(['backfill-order-country.test.yaml', 'backfill-order-country.yaml']);
});
