/**
 * What a person running a long fix sees: progress with the total, a percentage and an ETA (the
 * preview pass too), a failed step never drawn as a success, `--quiet`, `--diff-file`, a bounded
 * number of record lines in a terminal, and a resumed run that says what it resumes and sums up
 * the whole run. Terminal behaviour runs in a real pseudo-terminal (util-linux `script`); every
 * expected number is read from the test's own data, not from datafix.
 */
import { copyFileSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapter } from '../../src/adapters/registry.js';
import { loadPlan } from '../../src/api.js';
import { runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, startCountingProxy } from '../helpers/proxy.js';
import { HAS_SCRIPT, inTerminal, NO_SCRIPT } from '../helpers/terminal.js';
import { sha256File, useTempDirs } from '../helpers/tmp.js';
import {
  createGeneratedVeo3Db,
  dynamoEnv,
  generationIds,
  i2vSpecWithPageSize,
  jsonLines,
  jsonSummary,
  killLeftoverProcesses,
  markItemsSpec,
  onlyState,
  SYNC_FIX,
  show,
  sqliteAll,
  startCli,
  videoDataset,
  waitFor,
} from '../safety/support.js';

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });
killLeftoverProcesses();

it('util-linux `script` is installed, to give the CLI a pseudo-terminal', () => {
  expect(HAS_SCRIPT, NO_SCRIPT).toBe(true);
});

/** Occurrences of `pattern` (global) in `text`. */
const count = (text: string, pattern: RegExp) => [...text.matchAll(pattern)].length;

describe('SQLite (fixes/sync-media-generation-ids.yaml, pages of 20 rows, some rows with broken JSON)', () => {
  const ROWS = 800;
  let template: string;
  let expected: Map<string, string | null>;
  let updatable: string[];
  /** What the fix reads, and of that what fails (truncated JSON), counted in the data itself. */
  let read: number;
  let failed: number;

  beforeAll(() => {
    template = shared().file('template.db');
    ({ expected, updatable } = createGeneratedVeo3Db(template, ROWS, { invalidJsonEvery: 50 }));
    const where = 'FROM veo3_video_generations WHERE raw_response IS NOT NULL AND media_generation_id IS NULL';
    [{ n: read } = { n: 0 }] = sqliteAll<{ n: number }>(template, `SELECT count(*) AS n ${where}`);
    [{ n: failed } = { n: 0 }] = sqliteAll<{ n: number }>(template, `SELECT count(*) AS n ${where} AND raw_response LIKE '%"trunc'`);
    expect(failed).toBeGreaterThan(5);
  });

  function copy() {
    const dir = tmp();
    const db = dir.file('veo3.db');
    copyFileSync(template, db);
    const spec = dir.write('sync.yaml', readFileSync(SYNC_FIX, 'utf8').replace(/pageSize: 200\b/, 'pageSize: 20'));
    return { dir, db, spec, env: { VEO3_DB_PATH: db } };
  }

  it('in a terminal the preview pass and the live run show the total SQLite counts, a percentage and an ETA; failed records end the step with ✖, never ✔', async () => {
    const { dir, spec, env } = copy();
    const run = inTerminal(['run', spec], { cwd: dir.path, env });
    await waitFor('the question', () => run.screen().includes('[y/N]'), { timeoutMs: 30_000 });
    const preview = run.screen();
    expect(preview).toMatch(
      new RegExp(
        `\\n {2}20 of ${read} read \\(${Math.floor(2000 / read)}%\\) · [0-9]+ would update · [0-9]+ skipped · [0-9]+ failed · [0-9]+/s · ETA [0-9]`,
      ),
    );
    expect(preview).toMatch(
      new RegExp(
        `✖ checked what sync-media-generation-ids would change on sqlite .*: ${read} record\\(s\\) read in .*, ${failed} failed\\n`,
      ),
    );
    expect(preview).not.toContain('✔ checked');
    run.press('y\r');
    const r = await run.done;
    const live = run.screen().slice(preview.length);
    expect(r.code, live).toBe(1);
    expect(live).toMatch(new RegExp(`\\n {2}[0-9]+ of ${read} read \\([0-9]+%\\) · [0-9]+ updated · .* · ETA [0-9]`));
    expect(live).toContain(`✖ Processed ${read} record(s) in `);
    expect(live).toContain(`: ${failed} failed\n`);
    expect(live).not.toContain('✔ Processed');
  });

  it('in a terminal a live run prints the first 20 changes and failures and says where the rest are; a dry run too', async () => {
    const { dir, db, spec, env } = copy();
    const run = inTerminal(['run', spec, '--yes'], { cwd: dir.path, env });
    const r = await run.done;
    const screen = run.screen();
    expect(r.code, screen).toBe(1);
    expect(count(screen, /^~ id=gen-\d+ updated$/gm)).toBe(20);
    expect(count(screen, /^✗ id=gen-\d+ failed: invalid_json/gm)).toBe(Math.min(20, failed));
    const journal = onlyState(dir.path)?.journal as string;
    expect(screen).toContain(
      `… ${updatable.length - 20} updated record(s) more not shown (the first 20 of each kind are above): the journal ${journal} holds every write; --diff-file PATH writes every record as JSON Lines`,
    );
    for (const [id, want] of expected) expect(generationIds(db).get(id)?.mgid, id).toBe(want);

    const dry = inTerminal(['run', spec, '--dry-run'], { cwd: dir.path, env: { VEO3_DB_PATH: template } });
    const d = await dry.done;
    const dryScreen = dry.screen();
    expect(d.code, dryScreen).toBe(1);
    expect(count(dryScreen, /^~ id=gen-\d+ would update$/gm)).toBe(20);
    expect(dryScreen).toContain(
      `… ${updatable.length - 20} change(s) more not shown (the first 20 of each kind are above): --diff-file PATH writes every record as JSON Lines; so does plain output redirected to a file (> records.txt)`,
    );

    // A terminal where nothing is drawn in place (TERM=dumb: an editor's shell) is still read by
    // a person: the same 20 lines, not one per record.
    const dumb = inTerminal(['run', spec, '--dry-run'], { cwd: dir.path, env: { VEO3_DB_PATH: template, TERM: 'dumb' } });
    await dumb.done;
    const dumbScreen = dumb.screen();
    expect(count(dumbScreen, /^~ id=gen-\d+ would update$/gm)).toBe(20);
    expect(dumbScreen).toContain(`… ${updatable.length - 20} change(s) more not shown`);
  });

  it('--quiet prints no record lines: the header, the summary and what to do next', async () => {
    const { dir, db, spec, env } = copy();
    const r = await runCli(['run', spec, '--quiet'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).not.toMatch(/^[~✗-] id=/m);
    expect(r.stdout).toMatch(new RegExp(`^Summary\\n  total     ${read}\\n  updated   ${updatable.length}\\n`, 'm'));
    expect(r.stderr).toContain('datafix sync-media-generation-ids');
    expect(r.stderr).toMatch(/journal .*\(undo with: datafix undo /);
    for (const [id, want] of expected) expect(generationIds(db).get(id)?.mgid, id).toBe(want);
    const bad = await runCli(['run', spec, '--quiet', '--verbose'], { cwd: dir.path, env });
    expect(bad.code, show(bad)).toBe(2);
    expect(bad.stderr).toContain('error DF023: --quiet prints no record lines and --verbose prints more of them');
  });

  it('--diff-file writes one JSON line per changed or failed record instead of printing it; it never overwrites another file (DF747)', async () => {
    const { dir, db, spec, env } = copy();
    const r = await runCli(['run', spec, '--dry-run', '--diff-file', 'diffs.jsonl'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).not.toMatch(/^[~✗] id=/m);
    expect(r.stderr).toContain(`record lines: ${updatable.length + failed} written to ${dir.file('diffs.jsonl')} (JSON Lines)`);
    const [header, ...records] = jsonLines(dir.file('diffs.jsonl'));
    expect(header).toMatchObject({
      type: 'datafix-diffs',
      fix: 'sync-media-generation-ids',
      dryRun: true,
      target: { backend: 'sqlite', path: db },
    });
    const updated = records.filter((l) => l.outcome === 'updated');
    expect(updated.map((l) => (l.key as { id: string }).id)).toEqual(updatable);
    for (const l of updated) {
      const id = (l.key as { id: string }).id;
      expect(l.changes, id).toEqual([
        { field: 'media_generation_id', before: null, after: expected.get(id), guard: 'absent' },
        { field: 'updated_at', before: '2025-06-01T10:00:00.000Z', after: expect.any(String), guard: 'unchanged', touch: true },
      ]);
    }
    const failures = records.filter((l) => l.outcome === 'failed');
    expect(failures).toHaveLength(failed);
    for (const l of failures) expect(l).toMatchObject({ type: 'record', reason: 'invalid_json' });
    expect(records).toHaveLength(updatable.length + failed);

    // A file that is not an earlier diff file is never overwritten, and the run does not start.
    const notes = dir.write('notes.txt', 'my notes\n');
    const hash = sha256File(db);
    for (const file of ['notes.txt', 'veo3.db', 'missing-dir/d.jsonl']) {
      const refused = await runCli(['run', spec, '--yes', '--diff-file', file], { cwd: dir.path, env });
      expect(refused.code, show(refused)).toBe(2);
      expect(refused.stderr).toContain(`error DF747: cannot write --diff-file ${dir.file(file)}: `);
    }
    expect(readFileSync(notes, 'utf8')).toBe('my notes\n');
    expect(sha256File(db)).toBe(hash);
    // An earlier diff file is replaced: now by the live run's lines.
    const again = await runCli(['run', spec, '--yes', '--diff-file', 'diffs.jsonl'], { cwd: dir.path, env });
    expect(again.code, show(again)).toBe(1);
    expect(jsonLines(dir.file('diffs.jsonl'))[0]).toMatchObject({ dryRun: false });
    expect(jsonLines(dir.file('diffs.jsonl')).filter((l) => l.outcome === 'updated')).toHaveLength(updatable.length);
  });

  it('a --diff-file the disk cannot hold stops the run with DF747, not an internal error', async () => {
    const { dir, spec, env } = copy();
    // A dry run writes no journal and no database: the diff file alone meets the 64 KiB limit.
    const r = await runCli(['run', spec, '--dry-run', '--diff-file', 'diffs.jsonl'], { cwd: dir.path, env, fileSizeLimitKiB: 64 });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF747: cannot write --diff-file ${dir.file('diffs.jsonl')}: EFBIG (the disk is full`);
    expect(r.stderr).not.toContain('internal error');
  });

  /** A live run without a terminal, stopped with SIGINT after its first checkpoint. */
  async function interrupted(spec: string, cwd: string, env: Record<string, string>, extra: string[] = []) {
    const victim = startCli(['run', spec, '--json', ...extra], { cwd, env });
    await waitFor('the first checkpoint', () => (onlyState(cwd)?.pages ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 5 });
    victim.child.kill('SIGINT');
    const stopped = await victim.done;
    expect(stopped.code, show(stopped)).toBe(130);
    const state = onlyState(cwd);
    expect(state?.records).toBeLessThan(read);
    return state as NonNullable<typeof state>;
  }

  it('a resumed run says at the start what it resumes, and its summary gives its part and the whole run', async () => {
    const { dir, spec, env } = copy();
    const state = await interrupted(spec, dir.path, env);
    const run = inTerminal(['run', spec, '--resume'], { cwd: dir.path, env });
    const r = await run.done;
    const screen = run.screen();
    expect(r.code, screen).toBe(1);
    const start = screen.indexOf(
      `resuming after ${state.records} record(s) in ${state.pages} page(s) of the run started ${state.startedAt} (last checkpoint `,
    );
    expect(start, screen).toBeGreaterThanOrEqual(0);
    expect(start).toBeLessThan(screen.search(/^(~|✗) id=/m));
    const mine = read - state.records;
    const skipped = read - updatable.length - failed;
    const summary = screen.slice(screen.indexOf('Summary'));
    expect(summary).toContain(`Summary (resumed: this run and the whole run since ${state.startedAt})`);
    expect(summary).toMatch(new RegExp(`\\n  total +${mine} +${read}\\n`));
    expect(summary).toMatch(/\n {2}updated +[0-9]+ +([0-9]+)\n/);
    expect(summary.match(/\n {2}updated +[0-9]+ +([0-9]+)\n/)?.[1]).toBe(String(updatable.length));
    expect(summary.match(/\n {2}skipped +[0-9]+ +([0-9]+)\n/)?.[1]).toBe(String(skipped));
    expect(summary.match(/\n {2}failed +[0-9]+ +([0-9]+)\n/)?.[1]).toBe(String(failed));
  });

  it('--resume --diff-file goes on after the interrupted part: one file holds every changed record once', async () => {
    const { dir, spec, env } = copy();
    await interrupted(spec, dir.path, env, ['--diff-file', 'd.jsonl']);
    const before = jsonLines(dir.file('d.jsonl')).filter((l) => l.type === 'record').length;
    expect(before).toBeGreaterThan(0);
    const r = await runCli(['run', spec, '--resume', '--diff-file', 'd.jsonl'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(1);
    const lines = jsonLines(dir.file('d.jsonl'));
    expect(lines.filter((l) => l.type === 'datafix-diffs')).toHaveLength(2);
    const updated = lines.filter((l) => l.outcome === 'updated').map((l) => (l.key as { id: string }).id);
    expect(updated.sort()).toEqual([...updatable].sort());
  });

  it('--resume --json adds the interrupted part (resumed) and the whole run (wholeRun) to the summary', async () => {
    const { dir, spec, env } = copy();
    const state = await interrupted(spec, dir.path, env);
    const r = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(1);
    const s = jsonSummary(r);
    expect(s).toMatchObject({
      total: read - state.records,
      resumed: { pages: state.pages, records: state.records, startedAt: state.startedAt, journal: state.journal },
      wholeRun: { total: read, updated: updatable.length, skipped: read - updatable.length - failed, failed },
    });
    expect((s.wholeRun as { reasons: Record<string, number> }).reasons.invalid_json).toBe(failed);
  });

  it('a state without outcome counts (written by an older datafix): the whole run gives its total only, the rest is "-"', async () => {
    const { dir, spec, env } = copy();
    const state = await interrupted(spec, dir.path, env);
    const { file, counts: _dropped, ...older } = JSON.parse(JSON.stringify(state)) as typeof state & { counts?: unknown };
    writeFileSync(file, `${JSON.stringify(older)}\n`);
    const r = await runCli(['run', spec, '--resume', '--json'], { cwd: dir.path, env });
    expect(r.code, show(r)).toBe(1);
    const s = jsonSummary(r);
    expect(s.wholeRun).toEqual({ total: read });
    expect(s.resumed).not.toHaveProperty('counts');
    expect(r.stderr).toMatch(
      new RegExp(`\\n  total +${read - state.records} +${read}\\n  updated +[0-9]+ +-\\n  skipped +[0-9]+ +-\\n  failed +[0-9]+ +-\\n`),
    );
  });
});

describe('DynamoDB', () => {
  let dynamo: RunningDynalite;
  let counted: CountingProxy;
  const ITEMS = 60;
  /** What the proxy reports as the table's ItemCount, as DynamoDB does after its periodic refresh. */
  const REPORTED = 75;

  beforeAll(async () => {
    dynamo = await startDynalite();
    // dynalite keeps no item count (it reports 0); DynamoDB refreshes its estimate about every
    // six hours. The proxy gives DescribeTable the count a real table would report.
    counted = await startCountingProxy(dynamo.endpoint, {
      fault: (r) =>
        r.operation === 'DescribeTable'
          ? { afterForward: (real) => ({ ...real, body: { Table: { ...(real.body as { Table: object }).Table, ItemCount: REPORTED } } }) }
          : undefined,
    });
  });
  afterAll(async () => {
    await counted?.stop();
    await dynamo?.stop();
  });

  it("a scan with --yes takes the table's item count as its total, labelled as an estimate", async () => {
    const table = 'scan-estimate';
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(
      dynamo.endpoint,
      table,
      Array.from({ length: ITEMS }, (_, i) => ({ PK: `ITEM#${i}`, SK: 'METADATA', n: i })),
    );
    const dir = tmp();
    const spec = markItemsSpec(dir);
    const run = inTerminal(['run', spec, '--yes'], { cwd: dir.path, env: { TABLE: table, ENDPOINT: counted.endpoint } });
    const r = await run.done;
    const screen = run.screen();
    expect(r.code, screen).toBe(0);
    expect(screen).toMatch(
      new RegExp(`\\n {2}10 of ~${REPORTED} read \\(13%, total estimated\\) · 10 updated · 0 skipped · 0 failed · [0-9]+/s · ETA ~[0-9]`),
    );
    expect(screen).toContain(`✔ Processed ${ITEMS} record(s) in `);
  });

  it("the adapter's estimate: a segment's share of the item count; none for a query, a resumed scan, or a count of 0", async () => {
    const dir = tmp();
    const env = { TABLE: 'scan-estimate-adapter', ENDPOINT: counted.endpoint };
    await createMediaTable(dynamo.endpoint, env.TABLE);
    const scan = loadPlan(markItemsSpec(dir), { env });
    const query = loadPlan(i2vSpecWithPageSize(dir, 10), { env: { ...dynamoEnv(env.TABLE, counted.endpoint), AWS_REGION: 'us-east-1' } });
    const adapter = await createAdapter(scan.target);
    try {
      expect(await adapter.count?.(scan.source, {})).toEqual({ records: REPORTED, estimate: true });
      expect(await adapter.count?.(scan.source, { segment: { index: 1, total: 4 } })).toEqual({
        records: Math.ceil(REPORTED / 4),
        estimate: true,
      });
      expect(await adapter.count?.(scan.source, { cursor: { totalSegments: 1, segments: [{ segment: 0 }] } })).toBeUndefined();
      expect(await adapter.count?.(query.source, {})).toBeUndefined();
    } finally {
      await adapter.close();
    }
    // dynalite itself reports 0 items, as a new DynamoDB table does: no estimate then.
    const direct = await createAdapter(loadPlan(markItemsSpec(dir), { env: { ...env, ENDPOINT: dynamo.endpoint } }).target);
    try {
      expect(await direct.count?.(scan.source, {})).toBeUndefined();
    } finally {
      await direct.close();
    }
  });

  it('the i2v query (no item count applies) takes its total from the preview pass', async () => {
    const data = videoDataset(40);
    const table = 'query-preview';
    await createMediaTable(dynamo.endpoint, table);
    await seedItems(dynamo.endpoint, table, data.items);
    const dir = tmp();
    const spec = i2vSpecWithPageSize(dir, 10);
    const run = inTerminal(['run', spec], { cwd: dir.path, env: dynamoEnv(table, counted.endpoint) });
    await waitFor('the question', () => run.screen().includes('[y/N]'), { timeoutMs: 30_000 });
    const preview = run.screen();
    // A query's preview has no total to show, only what it read so far.
    expect(preview).toMatch(/\n {2}10 read · [0-9]+ would update · /);
    expect(preview).toContain(`${data.updatable.length} record(s) would be updated`);
    run.press('y\r');
    const r = await run.done;
    const live = run.screen().slice(preview.length);
    expect(r.code, live).toBe(0);
    expect(live).toMatch(/\n {2}10 of 40 read \(25%\) · [0-9]+ updated · .* · ETA [0-9]/);
  });
});

it('--diff-file onto a symlink or a file without a diff header is refused like any other file (DF747)', async () => {
  const dir = tmp();
  const db = dir.file('veo3.db');
  createGeneratedVeo3Db(db, 10);
  const target = dir.write('target.txt', 'keep\n');
  symlinkSync(target, dir.file('link.jsonl'));
  writeFileSync(dir.file('empty.jsonl'), '');
  for (const file of ['link.jsonl', 'empty.jsonl']) {
    const r = await runCli(['run', SYNC_FIX, '--dry-run', '--diff-file', file], { cwd: dir.path, env: { VEO3_DB_PATH: db } });
    expect(r.code, show(r)).toBe(2);
    expect(r.stderr).toContain(`error DF747: cannot write --diff-file ${dir.file(file)}: the file exists and is not an earlier diff file`);
  }
  expect(readFileSync(target, 'utf8')).toBe('keep\n');
});
