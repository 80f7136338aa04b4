/**
 * User and environment errors end a run with exit 2, a message naming the file or target, the
 * cause and what to do (with `file:line:col` when the fault is a spec value), never an internal
 * error with a stack, and nothing left behind: no lock, journal, state or plan file, and the
 * database byte-identical. Permissions are real: when the tests run as root, the CLI is started
 * as the unprivileged `nobody` user so that file modes apply to it.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVeo3Database } from '../../src/demo/sqlite-sample.js';
import { BIN, type CliResult, runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, rawClient, seedItems, startDynalite } from '../helpers/dynalite.js';
import { startCountingProxy } from '../helpers/proxy.js';
import { sha256File, type TempDir, useTempDirs } from '../helpers/tmp.js';
import { cliEnv, dynamoEnv, I2V_FIX, jsonSummary, SYNC_FIX, scanRaw, show, videoDataset } from './support.js';

const tmp = useTempDirs();

/** The unprivileged user the CLI runs as when the tests run as root (root ignores file modes). */
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

/**
 * Runs the built CLI with `cwd` as working directory, as `nobody` when the test runs as root.
 * The whole temp dir is handed to that user first, so only the modes a test sets take effect.
 */
function runAsUser(dir: TempDir, args: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): Promise<CliResult> {
  if (asRoot) chownTree(dir.path, NOBODY);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir.path,
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function chownTree(path: string, uid: number): void {
  chownSync(path, uid, uid);
  if (statSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n), uid);
}

/** Every file below `dir` except the ones the test made, so "nothing left behind" is one assertion. */
function filesBelow(dir: string, made: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (!made.includes(p)) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Exit 2, the code and every fragment in stderr, no stack and no internal error. */
function expectEnvError(r: CliResult, code: string, ...fragments: string[]): void {
  expect(r.code, show(r)).toBe(2);
  expect(r.stderr).toContain(code);
  for (const f of fragments) expect(r.stderr).toContain(f);
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

/** A temp dir with a writable VEO3 database of five fixable rows; returns it, the db and its hash. */
function sqliteWorkspace(): { dir: TempDir; db: string; hash: string } {
  const dir = tmp();
  chmodSync(dir.path, 0o755);
  const db = dir.file('veo3.db');
  createVeo3Database(
    db,
    Array.from({ length: 5 }, (_, i) => ({
      id: `g${i}`,
      raw_response: JSON.stringify({ operations: [{ mediaGenerationId: `M${i}` }] }),
      media_generation_id: null,
    })),
  );
  return { dir, db, hash: sha256File(db) };
}

/** The line and column (1-based) where `needle` first starts in `text`. */
function lineColOf(text: string, needle: string): { line: number; col: number } {
  const at = text.indexOf(needle);
  if (at < 0) throw new Error(`${needle} not in the spec`);
  const before = text.slice(0, at).split('\n');
  return { line: before.length, col: (before[before.length - 1] as string).length + 1 };
}

describe('SQLite live run: environment errors stop before anything is written', () => {
  it('a `.datafix` that is a file: DF740 naming it; no journal, state or lock; database unchanged', async () => {
    const { dir, db, hash } = sqliteWorkspace();
    const blocker = dir.write('.datafix', 'not a directory\n');
    const r = await runAsUser(dir, ['run', SYNC_FIX], { VEO3_DB_PATH: db });
    expectEnvError(r, 'DF740', join(dir.path, '.datafix'), 'is a file, not a directory');
    expect(filesBelow(dir.path, [db, blocker])).toEqual([]);
    expect(sha256File(db)).toBe(hash);
  });

  it('a `.datafix` the user cannot write: DF740; no journal, state or lock; database unchanged', async () => {
    const { dir, db, hash } = sqliteWorkspace();
    mkdirSync(dir.file('.datafix'));
    if (asRoot) chownTree(dir.path, NOBODY);
    chmodSync(dir.file('.datafix'), 0o555);
    const r = await runAsUser(dir, ['run', SYNC_FIX], { VEO3_DB_PATH: db });
    chmodSync(dir.file('.datafix'), 0o755);
    expectEnvError(r, 'DF740', join(dir.path, '.datafix'), 'not writable');
    expect(filesBelow(dir.path, [db])).toEqual([]);
    expect(sha256File(db)).toBe(hash);
  });

  it('a `.datafix/runs` the user cannot write (`.datafix` writable): DF740 naming it, with what to do; nothing left behind', async () => {
    const { dir, db, hash } = sqliteWorkspace();
    mkdirSync(dir.file('.datafix/runs'), { recursive: true });
    if (asRoot) chownTree(dir.path, NOBODY);
    chmodSync(dir.file('.datafix/runs'), 0o555);
    const r = await runAsUser(dir, ['run', SYNC_FIX], { VEO3_DB_PATH: db });
    chmodSync(dir.file('.datafix/runs'), 0o755);
    expectEnvError(
      r,
      'DF740',
      `${join(dir.path, '.datafix', 'runs')} is not writable`,
      'run datafix from a directory you can write to, or make it writable',
    );
    expect(filesBelow(dir.path, [db])).toEqual([]);
    expect(sha256File(db)).toBe(hash);
  });

  it('a read-only database file: DF415 naming the file and the cause; nothing written', async () => {
    const { dir, db, hash } = sqliteWorkspace();
    if (asRoot) chownTree(dir.path, NOBODY);
    chmodSync(db, 0o444);
    const r = await runAsUser(dir, ['run', SYNC_FIX], { VEO3_DB_PATH: db });
    expectEnvError(r, 'DF415', db, 'the file is read-only', '--dry-run');
    expect(filesBelow(dir.path, [db])).toEqual([]);
    expect(sha256File(db)).toBe(hash);
    // Looking is still allowed: a dry run of the read-only file works and writes nothing.
    const dry = await runAsUser(dir, ['run', SYNC_FIX, '--dry-run', '--json'], { VEO3_DB_PATH: db });
    expect(dry.code, show(dry)).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ total: 5, updated: 5 });
    expect(sha256File(db)).toBe(hash);
  });

  it("a database in a directory the user cannot write (SQLite's rollback journal goes there): DF415", async () => {
    const { dir, hash } = sqliteWorkspace();
    const sub = dir.file('ro');
    mkdirSync(sub);
    const db = join(sub, 'veo3.db');
    writeFileSync(db, readFileSync(dir.file('veo3.db')));
    if (asRoot) chownTree(dir.path, NOBODY);
    chmodSync(sub, 0o555);
    const r = await runAsUser(dir, ['run', SYNC_FIX], { VEO3_DB_PATH: db });
    chmodSync(sub, 0o755);
    expectEnvError(r, 'DF415', db, `its directory ${sub} is not writable`);
    expect(filesBelow(dir.path, [db, dir.file('veo3.db')])).toEqual([]);
    expect(sha256File(db)).toBe(hash);
  });

  const badTargets: { name: string; make: (dir: TempDir) => string; why: string }[] = [
    { name: 'a missing database file', make: (dir) => dir.file('nope.db'), why: 'not found' },
    {
      name: 'a directory given as the database',
      make: (dir) => {
        mkdirSync(dir.file('adir'));
        return dir.file('adir');
      },
      why: 'is not a file',
    },
    {
      name: 'a file that is not a SQLite database',
      make: (dir) => dir.write('notes.db', 'just some text, not SQLite\n'.repeat(200)),
      why: 'it is not a SQLite database',
    },
  ];
  for (const c of badTargets) {
    it(`${c.name}: DF410 naming the path; live and dry run alike; nothing left behind`, async () => {
      const dir = tmp();
      chmodSync(dir.path, 0o755);
      const path = c.make(dir);
      const made = existsSync(path) && statSync(path).isFile() ? [path] : [];
      const before = made.map((p) => sha256File(p));
      for (const args of [
        ['run', SYNC_FIX],
        ['run', SYNC_FIX, '--dry-run'],
      ]) {
        const r = await runAsUser(dir, args, { VEO3_DB_PATH: path });
        expectEnvError(r, 'DF410', path, c.why);
        expect(filesBelow(dir.path, made)).toEqual([]);
      }
      expect(made.map((p) => sha256File(p))).toEqual(before);
    });
  }

  it('an unreadable spec: DF007 with file:line:col, the cause and what to do', async () => {
    const { dir, db } = sqliteWorkspace();
    const spec = dir.write('fix.yaml', readFileSync(SYNC_FIX, 'utf8'));
    if (asRoot) chownTree(dir.path, NOBODY);
    chmodSync(spec, 0o000);
    const r = await runAsUser(dir, ['run', spec], { VEO3_DB_PATH: db });
    expectEnvError(r, 'DF007', `${spec}:1:1`, 'permission denied', 'make it readable');
    expect(filesBelow(dir.path, [db, spec])).toEqual([]);
  });

  it('--journal under a file, or in a directory the user cannot write: DF701; no lock or state', async () => {
    const { dir, db, hash } = sqliteWorkspace();
    const file = dir.write('afile', 'x');
    mkdirSync(dir.file('locked'));
    if (asRoot) chownTree(dir.path, NOBODY);
    chmodSync(dir.file('locked'), 0o555);
    const cases = [
      { journal: join(file, 'run.journal.jsonl'), why: `${file} is a file, not a directory` },
      { journal: dir.file('locked', 'sub', 'run.journal.jsonl'), why: `${dir.file('locked')} is not writable` },
    ];
    for (const c of cases) {
      const r = await runAsUser(dir, ['run', SYNC_FIX, '--journal', c.journal], { VEO3_DB_PATH: db });
      expectEnvError(r, 'DF701', c.journal, c.why);
      expect(filesBelow(dir.path, [db, file])).toEqual([]);
    }
    chmodSync(dir.file('locked'), 0o755);
    expect(sha256File(db)).toBe(hash);
  });
});

describe('spec errors that need the live schema: exit 2 with file:line:col, nothing left behind', () => {
  const specWith = (dir: TempDir, update: string): { spec: string; text: string } => {
    const text = readFileSync(SYNC_FIX, 'utf8').replace(
      /update:\n {2}table: veo3_video_generations\n {2}key: \{ id: "\{\{ row\.id \}\}" \}\n/,
      update,
    );
    return { spec: dir.write('fix.yaml', text), text };
  };

  it('a key that is not unique (DF403) and an unknown update.table (DF401), live and dry', async () => {
    const { dir, db, hash } = sqliteWorkspace();
    const cases = [
      {
        update: 'update:\n  table: veo3_video_generations\n  key: { prompt: "{{ row.prompt }}" }\n',
        code: 'DF403',
        at: '{ prompt',
        why: 'could match several rows',
      },
      {
        update: 'update:\n  table: no_such_table\n  key: { id: "{{ row.id }}" }\n',
        code: 'DF401',
        at: 'no_such_table',
        why: '`no_such_table` does not exist',
      },
    ];
    for (const c of cases) {
      const { spec, text } = specWith(dir, c.update);
      expect(text).toContain(c.update);
      const { line, col } = lineColOf(text, c.at);
      for (const extra of [[], ['--dry-run']]) {
        const r = await runAsUser(dir, ['run', spec, ...extra], { VEO3_DB_PATH: db });
        expectEnvError(r, c.code, `${spec}:${line}:${col}`, c.why);
        expect(filesBelow(dir.path, [db, spec])).toEqual([]);
      }
    }
    expect(sha256File(db)).toBe(hash);
  });

  it('datafix plan against a table that does not exist leaves no plan file', async () => {
    const { dir, db } = sqliteWorkspace();
    const { spec, text } = specWith(dir, 'update:\n  table: no_such_table\n  key: { id: "{{ row.id }}" }\n');
    const { line, col } = lineColOf(text, 'no_such_table');
    const out = dir.file('fix.plan.jsonl');
    const r = await runAsUser(dir, ['plan', spec, '--out', out], { VEO3_DB_PATH: db });
    expectEnvError(r, 'DF401', `${spec}:${line}:${col}`);
    expect(existsSync(out)).toBe(false);
    expect(filesBelow(dir.path, [db, spec])).toEqual([]);
  });
});

describe('DynamoDB: a missing table or index, an unreachable endpoint', () => {
  let dynamo: RunningDynalite;
  beforeAll(async () => {
    dynamo = await startDynalite();
  });
  afterAll(async () => {
    await dynamo?.stop();
  });

  it('a table that does not exist: DF401 naming it; no journal, state or lock', async () => {
    const dir = tmp();
    const r = await runAsUser(dir, ['run', I2V_FIX], dynamoEnv('no-such-table', dynamo.endpoint));
    expectEnvError(r, 'DF401', '`no-such-table` does not exist');
    expect(filesBelow(dir.path, [])).toEqual([]);
  });

  it('an index that does not exist: DF402 at the index line of the spec; nothing left behind', async () => {
    const dir = tmp();
    // The media table without its GSI8 index.
    const { CreateTableCommand } = await import('@aws-sdk/client-dynamodb');
    await rawClient(dynamo.endpoint).send(
      new CreateTableCommand({
        TableName: 'no-gsi',
        AttributeDefinitions: [
          { AttributeName: 'PK', AttributeType: 'S' },
          { AttributeName: 'SK', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const { line, col } = lineColOf(readFileSync(I2V_FIX, 'utf8'), 'GSI8\n');
    for (const extra of [[], ['--dry-run']]) {
      const r = await runAsUser(dir, ['run', I2V_FIX, ...extra], dynamoEnv('no-gsi', dynamo.endpoint));
      expectEnvError(r, 'DF402', `${I2V_FIX}:${line}:${col}`, 'has no index `GSI8`');
      expect(filesBelow(dir.path, [])).toEqual([]);
    }
  });

  it('writes denied (reads allowed): the run stops at the first denial with DF408, exit 2; undo restores what it wrote', async () => {
    const table = 'writes-denied';
    await createMediaTable(dynamo.endpoint, table);
    const data = videoDataset(60);
    await seedItems(dynamo.endpoint, table, data.items);
    const before = await scanRaw(dynamo.endpoint, table);
    // A role that may read but not write, as IAM answers it: only UpdateItem is refused.
    let denying = true;
    const denied = await startCountingProxy(dynamo.endpoint, {
      fault: (r) =>
        denying && r.operation === 'UpdateItem' && r.nth > 3
          ? {
              respond: {
                status: 400,
                body: {
                  __type: 'com.amazon.coral.service#AccessDeniedException',
                  message: 'User: arn:aws:sts::123456789012:assumed-role/reader is not authorized to perform: dynamodb:UpdateItem',
                },
              },
            }
          : undefined,
    });
    try {
      const dir = tmp();
      const env = dynamoEnv(table, denied.endpoint);
      const r = await runCli(['run', I2V_FIX, '--concurrency', '1', '--json'], { cwd: dir.path, env });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain('error DF408: DynamoDB endpoint http://127.0.0.1:');
      expect(r.stderr).toContain(`denied access while trying to write to table \`${table}\``);
      expect(r.stderr).toContain('grant the caller that permission or use another role');
      // It stopped at the first denial instead of failing every record of the table one by one.
      expect(denied.counts().UpdateItem).toBe(4);
      expect(jsonSummary(r)).toMatchObject({ error: { code: 'DF408' } });

      // The permission is granted; undo connects where the run wrote (the journal's target).
      denying = false;
      const journal = /journal (\S+\.journal\.jsonl) \(undo with/.exec(r.stderr)?.[1] as string;
      const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
      expect(undo.code, show(undo)).toBe(0);
      expect(jsonSummary(undo)).toMatchObject({ restored: 3, conflicts: 0, failed: 0 });
      expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
    } finally {
      await denied.stop();
    }
  });

  it('no AWS credentials anywhere (AWS endpoint, empty profile files, no instance metadata): DF414, not DF411; nothing left behind', async () => {
    const dir = tmp();
    // The SDK's own provider chain runs for real: nothing in the environment, files that do not
    // exist, and the EC2 metadata service switched off, so it fails without any network request.
    const r = await runAsUser(dir, ['run', I2V_FIX, '--dry-run'], {
      ...dynamoEnv('media', ''),
      LOCAL_AWS_ENDPOINT: undefined,
      AWS_REGION: 'eu-west-1',
      AWS_CONFIG_FILE: dir.file('no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: dir.file('no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
      AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
      AWS_ROLE_ARN: undefined,
    });
    expectEnvError(
      r,
      'error DF414: no AWS credentials found for DynamoDB in region eu-west-1 while trying to describe table `media`',
      'set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY',
    );
    expect(r.stderr).not.toContain('DF411');
    expect(filesBelow(dir.path, [])).toEqual([]);
  });

  it('credentials DynamoDB rejects (UnrecognizedClientException): DF414 naming the endpoint; no journal, state or lock', async () => {
    await createMediaTable(dynamo.endpoint, 'creds-rejected');
    // DynamoDB's answer to an unknown access key id; dynalite accepts any key, so the answer is
    // given by a proxy in front of it, below the SDK.
    const rejecting = await startCountingProxy(dynamo.endpoint, {
      fault: () => ({
        respond: {
          status: 400,
          body: {
            __type: 'com.amazon.coral.service#UnrecognizedClientException',
            message: 'The security token included in the request is invalid.',
          },
        },
      }),
    });
    try {
      const dir = tmp();
      const r = await runAsUser(dir, ['run', I2V_FIX], {
        ...dynamoEnv('creds-rejected', rejecting.endpoint),
        AWS_ACCESS_KEY_ID: 'AKIAUNKNOWNKEY000000',
        AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
      });
      expectEnvError(
        r,
        `error DF414: DynamoDB endpoint ${rejecting.endpoint} (region us-east-1) rejected the AWS credentials (UnrecognizedClientException)`,
        'check that the credentials are valid, not expired, and meant for this account and region',
      );
      expect(r.stderr).not.toContain('DF411');
      expect(r.stderr).not.toContain('not-a-real-secret');
      expect(filesBelow(dir.path, [])).toEqual([]);
    } finally {
      await rejecting.stop();
    }
  });

  it('an unreachable endpoint: DF410 naming it; no journal, state or lock', async () => {
    const dir = tmp();
    await createMediaTable(dynamo.endpoint, 'unused');
    const r = await runAsUser(dir, ['run', I2V_FIX], dynamoEnv('unused', 'http://127.0.0.1:9'));
    expectEnvError(r, 'DF410', 'http://127.0.0.1:9', 'cannot connect');
    expect(filesBelow(dir.path, [])).toEqual([]);
  });
});
