/**
 * Acceptance 1: every live run journals what it writes, and `datafix undo JOURNAL` puts the data
 * back exactly as it was, on SQLite (every row of every table, and the list of tables) and on
 * DynamoDB (every item, maps and exact numbers included, absent fields absent again). A record
 * changed by hand since the run is a conflict and keeps the hand-made value; `--dry-run` writes
 * nothing.
 */
import { appendFileSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, rawClient, seedRawItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import {
  batchWrites,
  canonicalItem,
  createGeneratedVeo3Db,
  dumpSqlite,
  dynamoEnv,
  generationIds,
  I2V_FIX,
  journalResults,
  journalWrites,
  jsonLines,
  jsonSummary,
  lockFiles,
  onlyState,
  PACKAGE_VERSION,
  pkOf,
  type RawItem,
  SYNC_FIX,
  scanRaw,
  seededTables,
  show,
  sqliteExec,
  syncSpecWithBusyTimeout,
  videoDataset,
  whileWriteLocked,
} from './support.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });

describe('journal and undo on SQLite (fixes/sync-media-generation-ids.yaml)', () => {
  let template: string;
  let expected: Map<string, string | null>;
  let updatable: string[];

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected, updatable } = createGeneratedVeo3Db(template, 600));
  });

  function fresh() {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    return { dir, db, env: { VEO3_DB_PATH: db } };
  }

  it('journals every write with its before/after, and undo restores every row of every table', async () => {
    const { dir, db, env } = fresh();
    const before = dumpSqlite(db);
    const journal = dir.file('run.journal.jsonl');

    const run = await runCli(['run', SYNC_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    const summary = jsonSummary(run);
    expect(summary).toMatchObject({ fix: 'sync-media-generation-ids', dryRun: false, updated: updatable.length, failed: 0 });
    expect(run.stderr).toContain(`journal ${journal} (undo with: datafix undo ${journal})`);

    // The run did what the fix says (so that undo has something to undo).
    const afterRun = generationIds(db);
    for (const [id, want] of expected) expect(afterRun.get(id)?.mgid, id).toBe(want);

    // The journal: a header, then per batch one line of its writes, with before/after per field,
    // and one line of their outcomes.
    const lines = jsonLines(journal);
    const header = lines[0] as Record<string, unknown>;
    expect(header).toEqual({
      type: 'header',
      format: 5,
      fix: 'sync-media-generation-ids',
      specFile: SYNC_FIX,
      specChecksum: sha256File(SYNC_FIX),
      target: { backend: 'sqlite', path: db, busyTimeoutMs: expect.any(Number) },
      startedAt: expect.stringMatching(ISO),
      datafixVersion: PACKAGE_VERSION,
      // The run's id: the state file and the target's checkpoint carry the same one.
      runId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      // Where the run's state is, so that undo of a copy of the journal finds it too.
      stateDir: dir.path,
      sum: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    const writes = journalWrites(journal);
    expect(writes).toHaveLength(updatable.length);
    expect(new Set(writes.map((w) => (w.key as { id: string }).id))).toEqual(new Set(updatable));
    // Pages of 200 rows are each one batch: a writes line and a results line per page that wrote.
    const batches = Math.ceil(updatable.length / 200);
    expect(lines.filter((l) => l.type === 'writes')).toHaveLength(batches);
    expect(lines.filter((l) => l.type === 'results')).toHaveLength(batches);
    const runTime = (writes[0] as { fields: { name: string; after: unknown }[] }).fields.find((f) => f.name === 'updated_at')?.after;
    expect(runTime).toEqual(expect.stringMatching(ISO));
    for (const w of writes) {
      const id = (w.key as { id: string }).id;
      expect(w, id).toMatchObject({ table: 'veo3_video_generations', key: { id } });
      expect(w.fields, id).toEqual([
        { name: 'media_generation_id', before: null, after: expected.get(id) },
        { name: 'updated_at', before: '2025-06-01T10:00:00.000Z', after: runTime },
      ]);
    }
    const seqs = writes.map((w) => w.seq as number);
    expect(new Set(seqs).size).toBe(seqs.length);
    const results = journalResults(journal);
    expect(results.map((r) => r.seq)).toEqual(seqs);
    expect(results.every((r) => r.status === 'applied')).toBe(true);
    expect(lines.at(-1)).toMatchObject({ type: 'end', interrupted: false, summary: { updated: updatable.length } });

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toEqual({
      journal,
      fix: 'sync-media-generation-ids',
      dryRun: false,
      total: updatable.length,
      notWritten: 0,
      restored: updatable.length,
      unchanged: 0,
      conflicts: 0,
      failed: 0,
      durationMs: expect.any(Number),
    });
    // Row for row, table for table (the run's checkpoint table included: it must be gone).
    expect(dumpSqlite(db)).toEqual(before);

    // Undoing again finds everything already as before.
    const again = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(again.code, show(again)).toBe(0);
    expect(jsonSummary(again)).toMatchObject({ restored: 0, unchanged: updatable.length, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db)).toEqual(before);
  });

  it('undo --dry-run writes nothing; a record changed by hand is a conflict and keeps the hand-made value', async () => {
    const { dir, db, env } = fresh();
    const before = dumpSqlite(db);
    const journal = dir.file('j.jsonl');
    const run = await runCli(['run', SYNC_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    const afterRun = dumpSqlite(db);

    const hash = sha256File(db);
    const dry = await runCli(['undo', journal, '--dry-run', '--json'], { cwd: dir.path });
    expect(dry.code, show(dry)).toBe(0);
    expect(jsonSummary(dry)).toMatchObject({ dryRun: true, total: updatable.length, restored: updatable.length, conflicts: 0 });
    expect(dry.stderr).toContain('dry run: nothing will be written');
    expect(sha256File(db)).toBe(hash);

    const victim = updatable[Math.floor(updatable.length / 2)] as string;
    sqliteExec(db, 'UPDATE veo3_video_generations SET media_generation_id = ? WHERE id = ?', 'HAND-EDITED', victim);

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(1);
    expect(jsonSummary(undo)).toMatchObject({ total: updatable.length, restored: updatable.length - 1, conflicts: 1, failed: 0 });
    expect(undo.stderr).toContain(`! conflict veo3_video_generations id=${victim} (changed since the run)`);

    const now = dumpSqlite(db);
    expect(now.schema).toEqual(before.schema);
    expect(now.rows.app_settings).toEqual(before.rows.app_settings);
    const rows = now.rows.veo3_video_generations as Record<string, unknown>[];
    const beforeRows = before.rows.veo3_video_generations as Record<string, unknown>[];
    const runRows = afterRun.rows.veo3_video_generations as Record<string, unknown>[];
    expect(rows).toHaveLength(beforeRows.length);
    rows.forEach((row, i) => {
      if (row.id === victim) expect(row).toEqual({ ...runRows[i], media_generation_id: 'HAND-EDITED' });
      else expect(row, String(row.id)).toEqual(beforeRows[i]);
    });
  });

  it('a journal is never overwritten: a second run with the same --journal exits 2, writes nothing and leaves no lock', async () => {
    const { dir, db, env } = fresh();
    const journal = dir.write('taken.jsonl', '{"type":"header"}\n');
    const before = dumpSqlite(db);
    const r = await runCli(['run', SYNC_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF701: cannot create journal ${journal}: it already exists; journals are never overwritten`);
    expect(dumpSqlite(db)).toEqual(before);
    expect(readFileSync(journal, 'utf8')).toBe('{"type":"header"}\n');
    expect(lockFiles(dir.path)).toEqual([]);
  });

  it('undo tolerates a last journal line torn by a crash mid-append', async () => {
    const { dir, db, env } = fresh();
    const before = dumpSqlite(db);
    const journal = dir.file('torn.jsonl');
    const run = await runCli(['run', SYNC_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    appendFileSync(journal, '{"type":"writes","seq":99999,"count":1,"writes":[{"table":"veo3_video_generations","key":{"id":"gen-0');
    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ total: updatable.length, restored: updatable.length });
    expect(dumpSqlite(db)).toEqual(before);
  });

  // Only the last line of a journal may be torn by a crash mid-append; a corrupt line before it is
  // corruption, and undo must not report success over it.
  it('undo does not report success when a journal line before the end is corrupt', async () => {
    const { dir, db, env } = fresh();
    const journal = dir.file('corrupt.jsonl');
    const run = await runCli(['run', SYNC_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    const lines = readFileSync(journal, 'utf8').split('\n');
    // A batch's writes line that is neither the first nor near the end.
    const victim = lines.findIndex((l, i) => i > 2 && l.startsWith('{"type":"writes"'));
    expect(victim).toBeLessThan(lines.length - 3);
    const [firstWrite] = batchWrites(JSON.parse(lines[victim] as string) as Record<string, unknown>);
    const id = ((firstWrite as Record<string, unknown>).key as { id: string }).id;
    lines[victim] = (lines[victim] as string).slice(0, 40);
    writeFileSync(journal, lines.join('\n'));

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    // The row whose write line was damaged is not restored…
    expect(generationIds(db).get(id)?.mgid).toBe(expected.get(id));
    // …so undo must not say everything went fine.
    expect(undo.code, show(undo)).not.toBe(0);
  });

  // Two source rows for one target row: the first (in source order) writes it, the later ones are
  // duplicate_target and write nothing; undo ends exactly at the start.
  it('two source rows updating one target row: the first writes it, the other is duplicate_target; undo restores it', async () => {
    const dir = tmp();
    const db = dir.file('app.db');
    const { default: Database } = await import('better-sqlite3');
    const conn = new Database(db);
    conn.exec(`CREATE TABLE events (id TEXT PRIMARY KEY, user_id TEXT);
      CREATE TABLE users (id TEXT PRIMARY KEY, last_event TEXT, seen_at TEXT);
      INSERT INTO users VALUES ('u1', NULL, NULL), ('u2', 'old-event', '2020-01-01');
      INSERT INTO events VALUES ('e1', 'u1'), ('e2', 'u1'), ('e3', 'u2'), ('e4', 'u2');`);
    conn.close();
    const spec = dir.write(
      'last-event.yaml',
      `name: last-event
target:
  sqlite: { path: "\${APP_DB}" }
source:
  as: ev
  table: events
  pageSize: 1
update:
  table: users
  key: { id: "{{ ev.user_id }}" }
  set: { last_event: "{{ ev.id }}" }
  touch: { seen_at: "{{ now }}" }
  overwrite: true
`,
    );
    const before = dumpSqlite(db);
    const journal = dir.file('j.jsonl');
    const run = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path, env: { APP_DB: db } });
    expect(run.code, show(run)).toBe(0);
    expect(jsonSummary(run)).toMatchObject({ updated: 2, skipped: 2, reasons: { duplicate_target: 2 } });
    expect(dumpSqlite(db).rows.users?.map((u) => u.last_event)).toEqual(['e1', 'e3']);

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(dumpSqlite(db)).toEqual(before);
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ conflicts: 0, failed: 0 });
  });

  // Write lines left without an outcome by a batch that could not commit (DF411) and then written
  // again by --resume are judged together with their re-writes: no false conflicts on undo.
  it('after a run that failed mid-way (database locked) and its --resume, undo restores everything without false conflicts', async () => {
    const dir = tmp();
    const db = dir.file('small.db');
    const { updatable: small } = createGeneratedVeo3Db(db, 70);
    const spec = syncSpecWithBusyTimeout(dir, 100);
    const env = { VEO3_DB_PATH: db };
    const before = dumpSqlite(db);

    // Another process (the app) holds the write lock: the run reads, journals its batch, and
    // cannot commit it.
    const failed = await whileWriteLocked(db, () => runCli(['run', spec, '--json'], { cwd: dir.path, env }));
    expect(failed.code, show(failed)).toBe(2);
    expect(failed.stderr).toContain('error DF411');
    expect(dumpSqlite(db)).toEqual(before);
    const state = onlyState(dir.path);
    expect(state?.status).toBe('interrupted');
    const journal = state?.journal as string;
    expect(journalWrites(journal)).toHaveLength(small.length);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(jsonSummary(resumed)).toMatchObject({ updated: small.length });

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(dumpSqlite(db)).toEqual(before);
    // The first attempt's writes never landed: they are "unchanged", not conflicts.
    expect(jsonSummary(undo)).toMatchObject({ total: 2 * small.length, restored: small.length, unchanged: small.length, conflicts: 0 });
    expect(undo.code, show(undo)).toBe(0);
  });

  it('writes journaled but never committed (database locked) do not count as updated targets on --resume', async () => {
    const dir = tmp();
    const db = dir.file('shop.db');
    const { default: Database } = await import('better-sqlite3');
    const conn = new Database(db);
    conn.exec(
      'CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, n INTEGER); CREATE TABLE users (id INTEGER PRIMARY KEY, last_order INTEGER)',
    );
    // Orders 1–9 each update their own user; order 10 updates user 1 again.
    for (let i = 1; i <= 10; i++) conn.prepare('INSERT INTO orders VALUES (?, ?, ?)').run(i, i === 10 ? 1 : i, i);
    for (let i = 1; i <= 9; i++) conn.prepare('INSERT INTO users VALUES (?, NULL)').run(i);
    conn.close();
    const spec = dir.write(
      'last-order.yaml',
      `name: last-order\ntarget:\n  sqlite: { path: "${db}", busyTimeoutMs: 100 }\nsource: { as: ord, table: orders }\nupdate:\n  table: users\n  key: { id: "{{ ord.user_id }}" }\n  set: { last_order: "{{ ord.n }}" }\n  overwrite: true\n`,
    );
    const failed = await whileWriteLocked(db, () => runCli(['run', spec, '--json'], { cwd: dir.path }));
    expect(failed.code, show(failed)).toBe(2);
    expect(failed.stderr).toContain('error DF411');
    const journal = onlyState(dir.path)?.journal as string;
    expect(journalWrites(journal)).toHaveLength(9);

    const resumed = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path });
    expect(resumed.code, show(resumed)).toBe(0);
    expect(jsonSummary(resumed)).toMatchObject({ updated: 9, skipped: 1, reasons: { duplicate_target: 1 } });
    expect(dumpSqlite(db).rows.users?.map((u) => Number(u.last_order))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('exact values survive run + undo: integers beyond 2^53, blobs, reals, present and NULL before-images', async () => {
    const dir = tmp();
    const db = dir.file('ledger.db');
    const { default: Database } = await import('better-sqlite3');
    const conn = new Database(db);
    conn.exec(`CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER, amount_new INTEGER, ratio REAL, ratio_new REAL,
      blob BLOB, blob_new BLOB, note TEXT, note_new TEXT, touched_at TEXT)`);
    const ins = conn.prepare('INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (let i = 1; i <= 6; i++) {
      const present = i % 2 === 0;
      ins.run(
        BigInt(i),
        present ? 9007199254740993n + BigInt(i) : null,
        9223372036854775807n - BigInt(i),
        present ? 0.1 + i : null,
        1 / 3 + i,
        present ? Buffer.from([0, 255, i]) : null,
        Buffer.from([i, 1, 2, 3]),
        present ? `old 'quoted' ${i}` : null,
        `new "text" ${i}`,
        present ? '2020-01-01T00:00:00.000Z' : null,
      );
    }
    conn.close();
    const spec = dir.write(
      'ledger.yaml',
      `name: ledger-exact
target:
  sqlite: { path: "\${LEDGER_DB}" }
source:
  as: row
  table: ledger
update:
  key: { id: "{{ row.id }}" }
  set:
    amount: "{{ row.amount_new }}"
    ratio: "{{ row.ratio_new }}"
    blob: "{{ row.blob_new }}"
    note: "{{ row.note_new }}"
  touch: { touched_at: "{{ now }}" }
  overwrite: true
`,
    );
    const before = dumpSqlite(db);
    const journal = dir.file('ledger.journal.jsonl');
    const run = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path, env: { LEDGER_DB: db } });
    expect(run.code, show(run)).toBe(0);
    expect(jsonSummary(run)).toMatchObject({ total: 6, updated: 6, failed: 0 });
    const afterRun = dumpSqlite(db).rows.ledger as Record<string, unknown>[];
    for (const row of afterRun) {
      expect(row.amount).toBe(row.amount_new);
      expect(row.ratio).toBe(row.ratio_new);
      expect(row.blob).toEqual(row.blob_new);
      expect(row.note).toBe(row.note_new);
    }
    const writes = journalWrites(journal);
    const second = writes.find((w) => (w.key as { id: number }).id === 2) as { fields: { name: string; before: unknown }[] };
    expect(second.fields.find((f) => f.name === 'amount')?.before).toEqual({ $number: '9007199254740995' });
    expect(second.fields.find((f) => f.name === 'blob')?.before).toEqual({ $binary: Buffer.from([0, 255, 2]).toString('base64') });

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ total: 6, restored: 6, conflicts: 0, failed: 0 });
    expect(dumpSqlite(db)).toEqual(before);
  });
});

describe('journal and undo on DynamoDB (fixes/i2v-thumbnails.yaml)', () => {
  let dynamo: RunningDynalite;
  let proxy: CountingProxy;
  const VIDEOS = 250; // two query pages of 200
  let data: ReturnType<typeof videoDataset>;

  beforeAll(async () => {
    dynamo = await startDynalite();
    proxy = await startCountingProxy(dynamo.endpoint);
    data = videoDataset(VIDEOS);
  });
  afterAll(async () => {
    await proxy?.stop();
    await dynamo?.stop();
  });

  const freshTable = seededTables(
    () => dynamo.endpoint,
    () => data.items,
    'media-undo',
  );

  it('journals every write, and undo restores every item exactly (absent fields absent again)', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, proxy.endpoint);
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('i2v.journal.jsonl');

    const run = await runCli(['run', I2V_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    expect(jsonSummary(run)).toMatchObject({ total: VIDEOS, updated: data.updatable.length, failed: 0 });
    const afterRun = await scanRaw(dynamo.endpoint, table);
    expect(afterRun).not.toEqual(before);

    const lines = jsonLines(journal);
    expect(lines[0]).toEqual({
      type: 'header',
      format: 5,
      fix: 'i2v-thumbnails',
      specFile: I2V_FIX,
      specChecksum: sha256File(I2V_FIX),
      target: { backend: 'dynamodb', table, region: 'us-east-1', endpoint: proxy.endpoint },
      startedAt: expect.stringMatching(ISO),
      datafixVersion: PACKAGE_VERSION,
      // The run's id: the state file and the target's checkpoint carry the same one.
      runId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      // Where the run's state is, so that undo of a copy of the journal finds it too.
      stateDir: dir.path,
      sum: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    const writes = journalWrites(journal);
    expect(writes.map((w) => (w.key as { PK: string }).PK).sort()).toEqual([...data.updatable].sort());
    const byPk = new Map(before.map((i) => [pkOf(i), i]));
    for (const w of writes) {
      const pk = (w.key as { PK: string }).PK;
      expect(w.key).toEqual({ PK: pk, SK: 'METADATA' });
      const old = byPk.get(pk) as RawItem;
      const fields = w.fields as { name: string; before: unknown; after: unknown }[];
      // Every field written has its before-image: absent ones as {$absent: true}.
      for (const f of fields) {
        if (f.name === 'updatedAt') expect(f.before).toBe(old.updatedAt?.S);
        else expect(f.before, `${pk} ${f.name}`).toEqual({ $absent: true });
        expect(f.after, `${pk} ${f.name}`).not.toEqual({ $absent: true });
      }
      expect(fields.map((f) => f.name)).toContain('updatedAt');
    }

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({
      fix: 'i2v-thumbnails',
      total: writes.length,
      restored: writes.length,
      unchanged: 0,
      conflicts: 0,
      failed: 0,
    });
    const restored = await scanRaw(dynamo.endpoint, table);
    expect(restored).toEqual(before);
    // Spelled out for one fully filled video: the fields it did not have are gone again.
    const filled = restored.find((i) => pkOf(i) === 'MEDIA#v00000') as RawItem;
    expect(filled.thumbnailUrl).toBeUndefined();
    expect(filled.thumbnailUrls).toBeUndefined();
  });

  it('undo --dry-run sends no write; a video changed by hand is a conflict and keeps the hand-made value', async () => {
    const table = await freshTable();
    const dir = tmp();
    const env = dynamoEnv(table, proxy.endpoint);
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('i2v.journal.jsonl');
    const run = await runCli(['run', I2V_FIX, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    const afterRun = await scanRaw(dynamo.endpoint, table);

    proxy.reset();
    const dry = await runCli(['undo', journal, '--dry-run', '--json'], { cwd: dir.path });
    expect(dry.code, show(dry)).toBe(0);
    expect(jsonSummary(dry)).toMatchObject({ dryRun: true, restored: data.updatable.length, conflicts: 0 });
    const counts = proxy.counts();
    expect(counts.UpdateItem ?? 0).toBe(0);
    expect(counts.PutItem ?? 0).toBe(0);
    expect(counts.BatchWriteItem ?? 0).toBe(0);
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(afterRun);

    // By hand: replace the thumbnailUrl the run wrote on one video.
    const victim = 'MEDIA#v00008'; // kind 0: the run filled both fields
    expect(data.updatable).toContain(victim);
    const client = rawClient(dynamo.endpoint);
    try {
      await client.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { PK: { S: victim }, SK: { S: 'METADATA' } },
          UpdateExpression: 'SET thumbnailUrl = :v',
          ExpressionAttributeValues: { ':v': { S: 'https://hand.example.com/edited.jpg' } },
        }),
      );
    } finally {
      client.destroy();
    }
    const handEdited = (await scanRaw(dynamo.endpoint, table)).find((i) => pkOf(i) === victim) as RawItem;

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(1);
    expect(jsonSummary(undo)).toMatchObject({ restored: data.updatable.length - 1, conflicts: 1, failed: 0 });
    expect(undo.stderr).toContain(`! conflict PK=${victim} SK=METADATA (changed since the run)`);
    for (const item of await scanRaw(dynamo.endpoint, table)) {
      if (pkOf(item) === victim) expect(item).toEqual(handEdited);
      else expect(item, pkOf(item)).toEqual(before.find((b) => pkOf(b) === pkOf(item)));
    }
  });

  it('exact values survive run + undo byte for byte: big numbers, string sets, present and absent before-images', async () => {
    const table = `media-exact-${Date.now()}`;
    await createMediaTable(dynamo.endpoint, table);
    const dir = tmp();
    const spec = dir.write(
      'exact.yaml',
      `name: exact-values
description: Overwrite payloads with the source's, exact values and all.
target:
  dynamodb: { table: "\${DYNAMODB_TABLE}", region: us-east-1, endpoint: "\${LOCAL_AWS_ENDPOINT}" }
source:
  as: item
  scan: { filter: { equals: { kind: target } }, pageSize: 3 }
lookups:
  src: { get: { PK: "SRC#{{ item.id }}", SK: METADATA } }
update:
  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }
  set:
    payload: "{{ src.payload }}"
    tags: "{{ src.tags }}"
    amount: "{{ src.amount }}"
  touch:
    touchedAt: "{{ now }}"
  overwrite: true
`,
    );
    const big = (text: string): { N: string } => ({ N: text });
    const targets: RawItem[] = [];
    const sources: RawItem[] = [];
    for (let i = 0; i < 8; i++) {
      const id = `t${i}`;
      const target: RawItem = { PK: { S: `T#${id}` }, SK: { S: 'METADATA' }, id: { S: id }, kind: { S: 'target' } };
      if (i % 2 === 0) {
        // Present before-images: a map holding a number beyond double precision and a string set.
        target.payload = {
          M: {
            bytes: big(`1234567890123456789012345678.00000000${i}1`),
            tags: { SS: ['old', `old-${i}`] },
            counts: { NS: ['1', `1234567890123456789012345678901234567${i}`, '-0.5'] },
            blob: { B: new Uint8Array([0, 1, 2, 255, i]) },
            nested: { L: [big('-0.000000000000000000000000000000000001'), { S: 'x' }, { NULL: true }, { BOOL: false }] },
          },
        };
        target.tags = { SS: ['keep-me', `was-${i}`] };
        target.amount = big('99999999999999999999999999999999999999');
        target.touchedAt = { S: '2020-01-01T00:00:00.000Z' };
      }
      // Odd targets have no payload, amount or touchedAt (absent before-images); some hold a NULL tags.
      if (i % 4 === 3) target.tags = { NULL: true };
      targets.push(target);
      sources.push({
        PK: { S: `SRC#${id}` },
        SK: { S: 'METADATA' },
        kind: { S: 'source' },
        payload: {
          M: {
            bytes: big(`98765432109876543210.1234567890123456${i}1`),
            tags: { SS: ['new', `new-${i}`, 'exact'] },
            counts: { NS: [`9876543210987654321098765432109876543${i}`, '2'] },
            blob: { B: new Uint8Array([255, 254, i]) },
            ratio: big('3.14159265358979323846264338327950288'),
          },
        },
        tags: { SS: [`fresh-${i}`, 'shared'] },
        amount: big(`-12345678901234567890123456789.123456${i}7`),
      });
    }
    await seedRawItems(dynamo.endpoint, table, [...targets, ...sources]);
    const before = await scanRaw(dynamo.endpoint, table);
    const journal = dir.file('exact.journal.jsonl');
    const env = dynamoEnv(table, proxy.endpoint);

    const run = await runCli(['run', spec, '--journal', journal, '--json'], { cwd: dir.path, env });
    expect(run.code, show(run)).toBe(0);
    expect(jsonSummary(run)).toMatchObject({ total: 8, updated: 8, failed: 0 });
    const afterRun = await scanRaw(dynamo.endpoint, table);
    const src = new Map(sources.map((s) => [String(s.PK?.S).replace('SRC#', 'T#'), s]));
    for (const item of afterRun.filter((i) => i.kind?.S === 'target')) {
      const s = src.get(pkOf(item)) as RawItem;
      // Copied exactly: every digit of every number, every member of every set.
      expect(item.payload, pkOf(item)).toEqual(canonicalItem(s).payload);
      expect(item.tags, pkOf(item)).toEqual(canonicalItem(s).tags);
      expect(item.amount, pkOf(item)).toEqual(s.amount);
    }

    // The journal keeps before-images exactly: tagged numbers and sets, and $absent.
    const writes = journalWrites(journal);
    const t0 = writes.find((w) => (w.key as { PK: string }).PK === 'T#t0') as { fields: { name: string; before: unknown }[] };
    expect(t0.fields.find((f) => f.name === 'amount')?.before).toEqual({ $number: '99999999999999999999999999999999999999' });
    expect(t0.fields.find((f) => f.name === 'tags')?.before).toEqual({ $set: expect.arrayContaining(['keep-me', 'was-0']) });
    const t1 = writes.find((w) => (w.key as { PK: string }).PK === 'T#t1') as { fields: { name: string; before: unknown }[] };
    expect(t1.fields.map((f) => f.before)).toEqual(t1.fields.map(() => ({ $absent: true })));
    const t3 = writes.find((w) => (w.key as { PK: string }).PK === 'T#t3') as { fields: { name: string; before: unknown }[] };
    expect(t3.fields.find((f) => f.name === 'tags')?.before).toBeNull();

    const undo = await runCli(['undo', journal, '--json'], { cwd: dir.path });
    expect(undo.code, show(undo)).toBe(0);
    expect(jsonSummary(undo)).toMatchObject({ total: 8, restored: 8, conflicts: 0, failed: 0 });
    expect(await scanRaw(dynamo.endpoint, table)).toEqual(before);
  });
});
