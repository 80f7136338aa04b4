/**
 * Acceptance 5: `datafix plan SPEC --out PLAN` records what a fix would change, record by record;
 * `datafix apply PLAN` writes exactly that where each record still holds its planned
 * before-image. A record changed by hand since the plan is reported as drifted and left exactly as
 * the hand edit left it; every other record ends as the test data says the fix leaves it. A plan refuses to be
 * applied to another target or after the spec changed, and `apply --dry-run` writes nothing.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type RunningDynalite, rawClient, startDynalite } from '../helpers/dynalite.js';
import { expectOracleState, scanAll } from '../helpers/i2v-oracle.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import { createDb, sqliteTarget } from '../sqlite/fixtures.js';
import {
  createGeneratedVeo3Db,
  dumpSqlite,
  dynamoEnv,
  generationIds,
  I2V_FIX,
  jsonLines,
  jsonSummary,
  lockFiles,
  pkOf,
  type RawItem,
  SYNC_FIX,
  scanRaw,
  seededTables,
  show,
  sqliteExec,
  startCli,
  videoDataset,
  waitFor,
} from './support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });

/**
 * The plan `lines` with line `at` changed by `edit`, its checksums chained again as datafix
 * would (a careful forger).
 */
function forgedPlan(lines: readonly string[], at: number, edit: (change: Record<string, unknown>) => void): string {
  let sum = '';
  return lines
    .map((l, i) => {
      const { sum: _s, ...obj } = JSON.parse(l) as Record<string, unknown>;
      if (i === at) edit(obj);
      const body = JSON.stringify(obj);
      sum = createHash('sha256').update(sum).update('\n').update(body).digest('hex').slice(0, 32);
      return `${body.slice(0, -1)},"sum":"${sum}"}`;
    })
    .join('\n')
    .concat('\n');
}

describe('saved plans on SQLite (fixes/sync-media-generation-ids.yaml)', () => {
  let template: string;
  let updatable: string[];
  /** The id each row must end with, as the data generator wrote it. */
  let expected: Map<string, string | null>;
  let seededIds: Map<string, { mgid: string | null; updatedAt: string | null }>;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ updatable, expected } = createGeneratedVeo3Db(template, 1000));
    seededIds = generationIds(template);
  });

  function copy() {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    return { dir, db, env: { VEO3_DB_PATH: db } };
  }

  it('plan, edit one planned row by hand, apply: that row is drifted and kept as edited; every other row ends with its expected id', async () => {
    const { dir, db, env } = copy();
    const plan = dir.file('sync.plan.jsonl');
    const hash = sha256File(db);
    const planned = await runCli(['plan', SYNC_FIX, '--out', plan, '--json'], { cwd: dir.path, env });
    expect(planned.code, show(planned)).toBe(0);
    expect(jsonSummary(planned)).toMatchObject({ dryRun: true, updated: updatable.length });
    expect(planned.stderr).toContain(`plan written to ${plan}: ${updatable.length} change(s). Apply with: datafix apply ${plan}\n`);
    // Settings from --env: the hint carries it, or apply would look at another target.
    dir.write('.env.t', `VEO3_DB_PATH=${env.VEO3_DB_PATH}\n`);
    const viaEnv = await runCli(['plan', SYNC_FIX, '--env', 't', '--out', dir.file('env.plan.jsonl')], { cwd: dir.path });
    expect(viaEnv.stdout + viaEnv.stderr).toContain(`Apply with: datafix apply ${dir.file('env.plan.jsonl')} --env t\n`);
    // Planning writes nothing.
    expect(sha256File(db)).toBe(hash);

    const lines = jsonLines(plan);
    expect(lines[0]).toMatchObject({
      type: 'plan',
      fix: 'sync-media-generation-ids',
      specFile: SYNC_FIX,
      target: { backend: 'sqlite', path: db },
    });
    const changes = lines.filter((l) => l.type === 'change');
    expect(changes.map((c) => (c.key as { id: string }).id).sort()).toEqual([...updatable].sort());
    for (const c of changes) {
      const fields = c.fields as { name: string; before: unknown; after: unknown }[];
      expect(fields.map((f) => f.name)).toEqual(['media_generation_id', 'updated_at']);
      expect(fields[0]?.before).toBeNull();
    }

    const victim = updatable[7] as string;
    sqliteExec(db, "UPDATE veo3_video_generations SET media_generation_id = 'SET-BY-HAND' WHERE id = ?", victim);
    const edited = dumpSqlite(db).rows.veo3_video_generations?.find((r) => r.id === victim);

    const applied = await runCli(['apply', plan, '--json'], { cwd: dir.path, env });
    expect(applied.code, show(applied)).toBe(1);
    expect(jsonSummary(applied)).toEqual({
      plan,
      fix: 'sync-media-generation-ids',
      dryRun: false,
      total: updatable.length,
      applied: updatable.length - 1,
      drifted: 1,
      failed: 0,
      durationMs: expect.any(Number),
    });
    expect(applied.stderr).toContain(`! drifted veo3_video_generations id=${victim} (changed since the plan was made)`);
    expect(lockFiles(dir.path)).toEqual([]);

    expect(dumpSqlite(db).rows.veo3_video_generations?.find((r) => r.id === victim)).toEqual(edited);
    const ids = generationIds(db);
    expect(ids.size).toBe(expected.size);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(id === victim ? 'SET-BY-HAND' : want);
    // updated_at changed exactly on the rows the plan applied.
    const touched = [...ids].filter(([id, v]) => v.updatedAt !== seededIds.get(id)?.updatedAt).map(([id]) => id);
    expect(touched.sort()).toEqual(updatable.filter((id) => id !== victim).sort());

    // A live apply is journaled like a run: undo restores what it wrote.
    const journal = /journal (\S+\.journal\.jsonl) \(undo with/.exec(applied.stderr)?.[1] as string;
    expect(journal).toBeDefined();
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ restored: updatable.length - 1, conflicts: 0 });
    // The apply finished: its journal says so, and undo does not report a stopped run.
    expect(undo.stderr).not.toContain('has no end line');
  });

  it('a plan cut short is refused by apply (DF733) and nothing is written; a killed plan leaves the earlier plan file whole', async () => {
    const { dir, db, env } = copy();
    const plan = dir.file('sync.plan.jsonl');
    const planned = await runCli(['plan', SYNC_FIX, '--out', plan, '--json'], { cwd: dir.path, env });
    expect(planned.code, show(planned)).toBe(0);
    const whole = readFileSync(plan, 'utf8');

    // Copied while being written, or truncated in transit: the first half of its lines.
    const cut = dir.file('cut.plan.jsonl');
    const lines = whole.split('\n');
    writeFileSync(cut, `${lines.slice(0, Math.floor(lines.length / 2)).join('\n')}\n`);
    const before = dumpSqlite(db);
    const applied = await runCli(['apply', cut, '--json'], { cwd: dir.path, env });
    expect(applied.code, show(applied)).toBe(2);
    expect(applied.stderr).toContain(
      `error DF733: ${cut} is incomplete (it does not end with the summary line datafix plan writes last); nothing was applied`,
    );
    expect(jsonSummary(applied)).toMatchObject({ error: { code: 'DF733' } });
    expect(dumpSqlite(db)).toEqual(before);
    expect(lockFiles(dir.path)).toEqual([]);

    // A second plan to the same file, killed once it has started writing: the first stays as it was.
    const again = startCli(['plan', SYNC_FIX, '--out', plan], { cwd: dir.path, env });
    await waitFor('the plan to start writing', () => existsSync(`${plan}.partial`) && statSync(`${plan}.partial`).size > 0, {
      intervalMs: 2,
    });
    again.child.kill('SIGKILL');
    expect((await again.done).code).toBe(137);
    expect(readFileSync(plan, 'utf8')).toBe(whole);
  });

  it('plan exits 1 when records failed, as its dry run does; the plan holds the rest, and apply writes them', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    const { expected, updatable } = createGeneratedVeo3Db(db, 140, { invalidJsonEvery: 10 });
    const env = { VEO3_DB_PATH: db };
    const plan = dir.file('p.plan.jsonl');
    const dry = await runCli(['run', SYNC_FIX, '--dry-run', '--json'], { cwd: dir.path, env });
    const planned = await runCli(['plan', SYNC_FIX, '--out', plan, '--json'], { cwd: dir.path, env });
    expect(dry.code, show(dry)).toBe(1);
    expect(planned.code, show(planned)).toBe(1);
    const { durationMs: _a, ...predicted } = jsonSummary(dry);
    const { durationMs: _b, ...summary } = jsonSummary(planned);
    expect(summary).toEqual(predicted);
    expect(summary).toMatchObject({ updated: updatable.length, reasons: { invalid_json: 14 } });
    const applied = await runCli(['apply', plan, '--json'], { cwd: dir.path, env });
    expect(applied.code, show(applied)).toBe(0);
    const ids = generationIds(db);
    for (const [id, want] of expected) expect(ids.get(id)?.mgid, id).toBe(want);
  });

  it('plan --out never overwrites what is not a plan: the database, a journal, the spec (DF741, each byte-identical)', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    const env = { VEO3_DB_PATH: db };
    const journal = dir.file('run.journal.jsonl');
    const run = await runCli(['run', SYNC_FIX, '--limit', '5', '--journal', journal], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    const spec = dir.write('fix.yaml', readFileSync(SYNC_FIX, 'utf8'));
    for (const out of [db, journal, spec]) {
      const before = sha256File(out);
      const r = await runCli(['plan', spec, '--out', out], { cwd: dir.path, env });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain(
        `error DF741: cannot write the plan ${out}: it exists and is not a datafix plan, so it is never overwritten`,
      );
      expect(sha256File(out), out).toBe(before);
    }
    // Nor what sits at <out>.partial, where the plan is written first: a symlink to the database,
    // another file. And a FIFO at --out is refused without waiting on it.
    const linked = dir.file('review.jsonl');
    symlinkSync(db, `${linked}.partial`);
    const notes = dir.write('notes.txt.partial', 'mine\n');
    const fifo = dir.file('fifo.jsonl');
    spawnSync('mkfifo', [fifo]);
    const dbBefore = sha256File(db);
    for (const [out, message] of [
      [linked, `${linked}.partial exists and is not an unfinished datafix plan, so it is never overwritten`],
      [dir.file('notes.txt'), `${notes} exists and is not an unfinished datafix plan`],
      [fifo, `cannot write the plan ${fifo}: it exists and is not a datafix plan`],
    ] as const) {
      const r = await runCli(['plan', spec, '--out', out], { cwd: dir.path, env });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toContain('error DF741: cannot write the plan');
      expect(r.stderr).toContain(message);
    }
    expect(sha256File(db)).toBe(dbBefore);
    expect(readFileSync(notes, 'utf8')).toBe('mine\n');
    // An earlier plan is replaced, as before.
    const plan = dir.file('p.plan.jsonl');
    for (let i = 0; i < 2; i++) expect((await runCli(['plan', spec, '--out', plan], { cwd: dir.path, env })).code).toBe(0);
  });

  it("plan --out, run --diff-file and run --journal refuse the database's own -journal, -wal and -shm files, and write nothing", async () => {
    const { dir, db, env } = copy();
    const hash = sha256File(db);
    const cases: [string[], string][] = [
      [['plan', SYNC_FIX, '--out', `${db}-journal`], 'DF741'],
      [['run', SYNC_FIX, '--dry-run', '--diff-file', `${db}-wal`], 'DF747'],
      [['run', SYNC_FIX, '--journal', `${db}-shm`], 'DF701'],
    ];
    for (const [args, code] of cases) {
      const r = await runCli(args, { cwd: dir.path, env });
      expect(r.code, show(r)).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${code}.*it is the database's own -(journal|wal|shm) file`));
    }
    expect(existsSync(`${db}-journal`) || existsSync(`${db}-wal`) || existsSync(`${db}-shm`)).toBe(false);
    expect(sha256File(db)).toBe(hash);
  });

  it('an edited plan is refused before anything is written: a changed value (checksum), and a change the spec cannot make (DF734)', async () => {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    const env = { VEO3_DB_PATH: db };
    const plan = dir.file('p.plan.jsonl');
    expect((await runCli(['plan', SYNC_FIX, '--out', plan], { cwd: dir.path, env })).code).toBe(0);
    const lines = readFileSync(plan, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    const at = lines.findIndex((l) => l.startsWith('{"type":"change"'));
    const before = dumpSqlite(db);
    const forged = (edit: (change: Record<string, unknown>) => void) => forgedPlan(lines, at, edit);
    const cases: [string, string, string][] = [
      [
        'value edited by hand',
        lines
          .map((l, i) => (i === at ? l.replace(/"after":"MG-/, '"after":"EDITED-') : l))
          .join('\n')
          .concat('\n'),
        'does not match its checksum',
      ],
      [
        'another table',
        forged((c) => {
          c.table = 'app_settings';
        }),
        'changes table app_settings, which the spec does not update',
      ],
      [
        'a field the spec never names',
        forged((c) => {
          (c.fields as { name: string }[])[0] = { ...(c.fields as object[])[0], name: 'status' } as { name: string };
        }),
        'changes field status, which the spec neither sets nor touches',
      ],
      [
        'a fill-only field planned over a value',
        forged((c) => {
          const f = (c.fields as { name: string; before: unknown }[]).find((x) => x.name === 'media_generation_id');
          if (f) f.before = 'KEEP-ME';
        }),
        'overwrites media_generation_id, which the spec only fills where it is absent',
      ],
    ];
    // Stripped of its checksums and called format 1 (which had none), an edited plan is no plan.
    const stripped = lines
      .map((l, i) => {
        const { sum: _s, ...obj } = JSON.parse(l) as Record<string, unknown>;
        return JSON.stringify(
          i === 0 ? { ...obj, format: 1 } : i === at ? JSON.parse(JSON.stringify(obj).replace(/"after":"MG-/, '"after":"EVIL-')) : obj,
        );
      })
      .join('\n');
    writeFileSync(plan, `${stripped}\n`);
    const downgraded = await runCli(['apply', plan], { cwd: dir.path, env });
    expect(downgraded.code, show(downgraded)).toBe(2);
    expect(downgraded.stderr).toContain(`error DF730: ${plan} is not a datafix plan (formats 2)`);
    expect(dumpSqlite(db)).toEqual(before);
    for (const [what, text, message] of cases) {
      writeFileSync(plan, text);
      const r = await runCli(['apply', plan], { cwd: dir.path, env });
      expect(r.code, `${what}: ${show(r)}`).toBe(2);
      expect(r.stderr, what).toContain(`error DF734: ${plan}:${at + 1} ${message}: the plan was edited, so nothing was applied`);
      expect(dumpSqlite(db), what).toEqual(before);
    }
  });

  it('a plan made through a symlink is refused after the link points at another database (DF732)', async () => {
    const dir = tmp();
    const staging = dir.file('staging.db');
    const prod = dir.file('prod.db');
    copyFileSync(template, staging);
    copyFileSync(template, prod);
    const link = dir.file('current.db');
    symlinkSync(staging, link);
    const env = { VEO3_DB_PATH: link };
    const plan = dir.file('p.plan.jsonl');
    expect((await runCli(['plan', SYNC_FIX, '--out', plan], { cwd: dir.path, env })).code).toBe(0);
    rmSync(link);
    symlinkSync(prod, link);
    const before = dumpSqlite(prod);
    const r = await runCli(['apply', plan], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain('error DF732: this plan was made for');
    expect(dumpSqlite(prod)).toEqual(before);
  });

  it('apply refuses another target, a changed spec; apply --dry-run writes nothing', async () => {
    const { dir, db, env } = copy();
    const spec = dir.write('sync.yaml', readFileSync(SYNC_FIX, 'utf8'));
    const plan = dir.file('p.jsonl');
    const planned = await runCli(['plan', spec, '--out', plan], { cwd: dir.path, env });
    expect(planned.code, show(planned)).toBe(0);
    const hash = sha256File(db);

    // The environment points the spec at another database.
    const other = dir.file('other.db');
    copyFileSync(template, other);
    const otherHash = sha256File(other);
    const elsewhere = await runCli(['apply', plan, '--json'], { cwd: dir.path, env: { VEO3_DB_PATH: other } });
    expect(elsewhere.code, show(elsewhere)).toBe(2);
    expect(elsewhere.stderr).toContain(`error DF732: this plan was made for sqlite ${db}, but the spec now points at sqlite ${other}`);
    expect(jsonSummary(elsewhere)).toMatchObject({ error: { code: 'DF732' } });
    expect(sha256File(other)).toBe(otherHash);
    expect(sha256File(db)).toBe(hash);

    // Dry run: reports what still matches, writes nothing.
    sqliteExec(db, "UPDATE veo3_video_generations SET media_generation_id = 'HAND' WHERE id = ?", updatable[0]);
    const handHash = sha256File(db);
    const dry = await runCli(['apply', plan, '--dry-run', '--json'], { cwd: dir.path, env });
    expect(dry.code, show(dry)).toBe(1);
    expect(jsonSummary(dry)).toMatchObject({ dryRun: true, total: updatable.length, applied: updatable.length - 1, drifted: 1 });
    expect(dry.stderr).toContain(`~ would apply veo3_video_generations id=${updatable[1]}`);
    expect(sha256File(db)).toBe(handHash);

    // The spec changed since the plan was made.
    writeFileSync(spec, readFileSync(spec, 'utf8').replace('Fills only rows', 'Fills (edited) only rows'));
    const changed = await runCli(['apply', plan, '--json'], { cwd: dir.path, env });
    expect(changed.code, show(changed)).toBe(2);
    expect(changed.stderr).toContain(`error DF731: ${spec} changed since this plan was made`);
    expect(sha256File(db)).toBe(handHash);
  });
});

describe('forged plans of create and remove fixes', () => {
  const FAMILY =
    'CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT, role TEXT); ' +
    'CREATE TABLE kids (id INTEGER PRIMARY KEY, parent_id INTEGER, name TEXT, legacy TEXT); ' +
    "INSERT INTO parents VALUES (1, 'p1', NULL); " +
    "INSERT INTO kids VALUES (10, 1, 'k10', 'old10'), (11, 7, 'k11', 'old11')";
  const createParents =
    'source: { as: kid, table: kids }\n' +
    'create:\n  table: parents\n  key: { id: "{{ kid.parent_id }}" }\n  set: { name: "for {{ kid.name }}" }\n';
  const removeLegacy = 'source: { as: kid, table: kids }\nupdate:\n  key: { id: "{{ kid.id }}" }\n  remove: [legacy]\n';

  it.each([
    [
      'a create that also writes a field the spec neither keys nor sets',
      createParents,
      (c: Record<string, unknown>) => {
        (c.fields as object[]).push({ name: 'role', before: null, after: 'admin', guard: 'absent' });
      },
      'creates field role, which the spec neither keys nor sets',
    ],
    [
      'a removal that writes a value instead',
      removeLegacy,
      (c: Record<string, unknown>) => {
        const f = (c.fields as { name: string; after: unknown }[]).find((x) => x.name === 'legacy');
        if (f) f.after = 'EVIL';
      },
      'writes legacy, which the spec only removes',
    ],
  ])('%s, checksums made to match: apply refuses it (DF734) and writes nothing', async (_what, body, edit, message) => {
    const dir = tmp();
    const db = dir.file('family.db');
    createDb(db, FAMILY);
    const spec = dir.write('fix.yaml', `name: forged\n${sqliteTarget(db)}${body}`);
    const plan = dir.file('p.plan.jsonl');
    const made = await runCli(['plan', spec, '--out', plan], { cwd: dir.path });
    expect(made.code, show(made)).toBe(0);
    const lines = readFileSync(plan, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
    const at = lines.findIndex((l) => l.startsWith('{"type":"change"'));
    expect(at).toBe(1);
    const before = dumpSqlite(db);
    writeFileSync(plan, forgedPlan(lines, at, edit));
    const r = await runCli(['apply', plan], { cwd: dir.path });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF734: ${plan}:${at + 1} ${message}: the plan was edited, so nothing was applied`);
    expect(dumpSqlite(db)).toEqual(before);
  });
});

describe('saved plans on DynamoDB (fixes/i2v-thumbnails.yaml)', () => {
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  let data: ReturnType<typeof videoDataset>;
  let seeded: RawItem[];

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startCountingProxy(dynamo.endpoint);
    data = videoDataset(300);
    seeded = await scanRaw(dynamo.endpoint, await freshTable());
  });
  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  const freshTable = seededTables(
    () => dynamo.endpoint,
    () => data.items,
    'media-plan',
  );

  async function setThumbnail(table: string, pk: string, url: string): Promise<void> {
    const client = rawClient(dynamo.endpoint);
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { PK: { S: pk }, SK: { S: 'METADATA' } },
          UpdateExpression: 'SET thumbnailUrl = :u',
          ExpressionAttributeValues: { ':u': { S: url } },
        }),
      );
    } finally {
      client.destroy();
    }
  }

  it('plan, set a thumbnailUrl on one planned video by hand, apply: drifted and kept as edited; the rest as the fix’s rules say', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, proxy.endpoint);
    const plan = dir.file('i2v.plan.jsonl');

    proxy.reset();
    const planned = await runCli(['plan', I2V_FIX, '--out', plan, '--json'], { cwd: dir.path, env });
    expect(planned.code, show(planned)).toBe(0);
    expect(jsonSummary(planned)).toMatchObject({ updated: data.updatable.length });
    expect(proxy.counts().UpdateItem ?? 0).toBe(0);
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(seeded);
    const changes = jsonLines(plan).filter((l) => l.type === 'change');
    expect(changes.map((c) => (c.key as { PK: string }).PK).sort()).toEqual([...data.updatable].sort());

    const victim = 'MEDIA#v00016'; // kind 0: planned to get both thumbnail fields
    expect(data.updatable).toContain(victim);
    await setThumbnail(table, victim, 'https://hand.example.com/v00016.jpg');
    const edited = (await scanRaw(dynamo.endpoint, table)).find((i) => pkOf(i) === victim);

    // apply --dry-run first: it sees the drift and writes nothing.
    proxy.reset();
    const dry = await runCli(['apply', plan, '--dry-run', '--json'], { cwd: dir.path, env });
    expect(dry.code, show(dry)).toBe(1);
    expect(jsonSummary(dry)).toMatchObject({ dryRun: true, applied: data.updatable.length - 1, drifted: 1 });
    expect(proxy.counts().UpdateItem ?? 0).toBe(0);

    const applied = await runCli(['apply', plan, '--json'], { cwd: dir.path, env });
    expect(applied.code, show(applied)).toBe(1);
    expect(jsonSummary(applied)).toMatchObject({ total: data.updatable.length, applied: data.updatable.length - 1, drifted: 1, failed: 0 });
    expect(applied.stderr).toContain(`! drifted PK=${victim} SK=METADATA (changed since the plan was made)`);

    expect((await scanRaw(dynamo.endpoint, table)).find((i) => pkOf(i) === victim)).toEqual(edited);
    // Every other item as the fix's rules (the test oracle) say, over the data as seeded.
    const others = <T extends { PK?: unknown }>(items: T[]) => items.filter((i) => i.PK !== victim);
    expect(expectOracleState(others(data.items), others(await scanAll(dynamo.endpoint, table)))).toBe(data.updatable.length - 1);
  });

  // A second live apply of the same plan writes nothing: it must say so (drifted, exit 1) as its
  // dry run does, and its journal must not claim the first apply's writes as its own (or undo of
  // the no-op apply would revert them).
  it('a plan applied a second time: the live apply reports what its dry run predicts', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, proxy.endpoint);
    const plan = dir.file('twice.plan.jsonl');
    expect((await runCli(['plan', I2V_FIX, '--out', plan], { cwd: dir.path, env })).code).toBe(0);
    const first = await runCli(['apply', plan, '--json'], { cwd: dir.path, env });
    expect(first.code, show(first)).toBe(0);
    expect(jsonSummary(first)).toMatchObject({ applied: data.updatable.length, drifted: 0 });

    const dry = await runCli(['apply', plan, '--dry-run', '--json'], { cwd: dir.path, env });
    const live = await runCli(['apply', plan, '--json'], { cwd: dir.path, env });
    const { durationMs: _a, dryRun: _b, ...predicted } = jsonSummary(dry);
    const { durationMs: _c, dryRun: _d, ...actual } = jsonSummary(live);
    expect(predicted).toMatchObject({ applied: 0, drifted: data.updatable.length });
    expect(actual).toEqual(predicted);
    expect(live.code).toBe(dry.code);
    // Each says why: the record holds this plan's own values, not someone else's.
    for (const r of [dry, live]) {
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('! drifted'));
      expect(lines).toHaveLength(data.updatable.length);
      for (const l of lines) expect(l).toMatch(/\(already holds the planned values \(this plan was applied before\)\)$/);
    }
  });

  it('apply refuses when the environment points the spec at another table, naming both', async () => {
    const table = await freshTable();
    const otherTable = await freshTable();
    const dir = tmp();
    const plan = dir.file('i2v.plan.jsonl');
    const planned = await runCli(['plan', I2V_FIX, '--out', plan], { cwd: dir.path, env: dynamoEnv(table, proxy.endpoint) });
    expect(planned.code, show(planned)).toBe(0);

    proxy.reset();
    const refused = await runCli(['apply', plan, '--json'], { cwd: dir.path, env: dynamoEnv(otherTable, proxy.endpoint) });
    expect(refused.code, show(refused)).toBe(2);
    expect(refused.stderr).toContain(
      `error DF732: this plan was made for dynamodb ${table} (${proxy.endpoint}), but the spec now points at dynamodb ${otherTable} (${proxy.endpoint})`,
    );
    expect(proxy.counts().UpdateItem ?? 0).toBe(0);
    expect(await scanRaw(dynamo.endpoint, otherTable)).toEqual(seeded);
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(seeded);
  });
});
