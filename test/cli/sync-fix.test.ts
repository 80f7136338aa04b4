/**
 * The shipped SQLite fix, end to end through the real CLI (`node bin/datafix.js`, built in dist/),
 * on databases laid out as in FACTS.md: what a person sees (exit code, stdout, stderr, the JSON
 * summary) and what ends up in the rows.
 *
 * The expected media generation ids are derived here from the rules in FACTS.md (first operation;
 * top-level mediaGenerationId before operation.metadata.video.mediaGenerationId; the direct shape
 * before the raw-wrapped one; "" counts as missing), not copied from the tool's output.
 */
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createVeo3Database, type SampleRow, sampleRows } from '../../src/demo/sqlite-sample.js';
import { type CliResult, REPO_ROOT, runCli } from '../helpers/cli.js';
import { sha256File, type TempDir, useTempDirs } from '../helpers/tmp.js';
import { query } from '../sqlite/fixtures.js';

const FIX = 'fixes/sync-media-generation-ids.yaml';
const FIX_TEXT = readFileSync(new URL(`../../${FIX}`, import.meta.url), 'utf8');
const ORIGINAL_UPDATED_AT = '2025-06-01T10:00:00.000Z'; // createVeo3Database's default
const SUMMARY_KEYS = ['dryRun', 'durationMs', 'failed', 'fix', 'reasons', 'skipped', 'total', 'updated'];

const tmp = useTempDirs();
const shared = useTempDirs({ scope: 'file' });

interface Gen {
  id: string;
  raw_response: string | null;
  media_generation_id: string | null;
  updated_at: string;
}

// --- the data ----------------------------------------------------------------------------------

const op = (fields: Record<string, unknown>) => ({ status: 'MEDIA_GENERATION_STATUS_SUCCESSFUL', ...fields });
const nested = (id: string) => ({ operation: { metadata: { video: { mediaGenerationId: id } } } });

/**
 * Generated rows for volume, in every shape, each with the id the fix must recover (or null when
 * it must skip). Every 40th row already has an id, which must never be overwritten.
 */
function generatedRows(count: number, prefix = 'vol'): { rows: SampleRow[]; expected: Map<string, string | null> } {
  const rows: SampleRow[] = [];
  const expected = new Map<string, string | null>();
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${String(i).padStart(4, '0')}`;
    const want = `${prefix.toUpperCase()}-MGID-${i}`;
    let raw: unknown;
    let result: string | null = want;
    switch (i % 6) {
      case 0:
        raw = { operations: [op({ mediaGenerationId: want })] };
        break;
      case 1:
        raw = { operations: [op(nested(want))] };
        break;
      case 2:
        raw = { raw: { operations: [op({ mediaGenerationId: want })] } };
        break;
      case 3:
        raw = { raw: { operations: [op(nested(want))] } };
        break;
      case 4:
        // An empty top-level id falls through to the nested one; the second operation is never read.
        raw = { operations: [op({ mediaGenerationId: '', ...nested(want) }), op({ mediaGenerationId: 'SECOND-OP' })] };
        break;
      default:
        raw = { operations: [op({ status: 'MEDIA_GENERATION_STATUS_FAILED' })] };
        result = null;
    }
    if (i % 40 === 39) {
      rows.push({ id, raw_response: JSON.stringify(raw), media_generation_id: `KEEP-${i}` });
    } else {
      rows.push({ id, raw_response: JSON.stringify(raw) });
      expected.set(id, result);
    }
  }
  return { rows, expected };
}

/** What FACTS.md says the fix must recover from the seed's sample rows (selected rows only). */
const SAMPLE_EXPECTED = new Map<string, string | null>([
  ['gen-001', 'CAUSJGI4-top-001'],
  ['gen-002', 'CAUSJGI4-nested-002'],
  ['gen-003', 'CAUSJGI4-raw-003'],
  ['gen-004', 'CAUSJGI4-rawnested-004'],
  ['gen-005', 'CAUSJGI4-top-wins-005'],
  ['gen-006', 'CAUSJGI4-empty-top-006'],
  ['gen-007', null],
  // gen-008 holds truncated JSON: failed, not written.
  ["gen-009'); DROP TABLE veo3_video_generations; --", 'id with \'quotes\' and "double"'],
  // gen-010 already has an id and gen-011 has no raw_response: neither is selected.
  ['gen-012', null],
]);

let volumeDb: string; // sample rows + 300 generated rows (has one invalid-JSON row)
let cleanDb: string; // 100 valid candidate rows, no invalid JSON
const volume = generatedRows(300);
const clean = generatedRows(100, 'ok');
const VOLUME_EXPECTED = new Map([...SAMPLE_EXPECTED, ...volume.expected]);

beforeAll(() => {
  const dir = shared();
  volumeDb = dir.file('volume.db');
  createVeo3Database(volumeDb, [...sampleRows(), ...volume.rows]);
  cleanDb = dir.file('clean.db');
  createVeo3Database(
    cleanDb,
    clean.rows.map((r, i) => ({
      ...r,
      media_generation_id: null,
      raw_response: JSON.stringify({ operations: [op({ mediaGenerationId: `OK-${i}` })] }),
    })),
  );
});

/** A private copy of a template database, so tests never share state. */
function copyOf(template: string, dir: TempDir = tmp()): string {
  const file = dir.file('veo3-automation.db');
  copyFileSync(template, file);
  return file;
}

function allRows(db: string): Map<string, Gen> {
  return new Map(
    query<Gen>(db, 'SELECT id, raw_response, media_generation_id, updated_at FROM veo3_video_generations').map((r) => [r.id, r]),
  );
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const stripAnsi = (s: string) => s.replace(ANSI, '');

/** `~ id=X would update` / `~ id=X updated` blocks of the human output → id → proposed value. */
function proposals(stdout: string): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const re = /^~ id=(.*) (?:would update|updated)\n {4}media_generation_id: null → (.*)$/gm;
  for (const m of stdout.matchAll(re)) out.set(m[1] as string, JSON.parse(m[2] as string));
  return out;
}

function parseJsonSummary(r: CliResult): Record<string, unknown> {
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
  expect(lines, `stdout: ${r.stdout}`).toHaveLength(1);
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

function expectNoStack(r: CliResult): void {
  const all = `${r.stdout}\n${r.stderr}`;
  expect(all).not.toMatch(/^\s+at .+[:(]/m);
  expect(all).not.toContain('internal error');
}

const run = (db: string, args: string[] = [], env: Record<string, string | undefined> = {}) =>
  runCli(['run', FIX, ...args], { env: { VEO3_DB_PATH: db, ...env } });

// --- dry run and live run ----------------------------------------------------------------------

describe('datafix run fixes/sync-media-generation-ids.yaml', () => {
  it('--dry-run shows every proposed change field by field with the summary, and leaves the file byte-identical', async () => {
    const db = copyOf(volumeDb);
    const before = sha256File(db);
    const r = await run(db, ['--dry-run']);
    // gen-008 holds invalid JSON: a failed record makes the exit status 1, also in a dry run.
    expect(r.code).toBe(1);
    expectNoStack(r);
    expect(sha256File(db)).toBe(before);

    expect(r.stdout).toContain('~ id=gen-001 would update\n    media_generation_id: null → "CAUSJGI4-top-001"\n');
    expect(r.stdout).toMatch(/^ {4}updated_at: "2025-06-01T10:00:00\.000Z" → "\d{4}-\d\d-\d\dT[\d:.]+Z" \(touch\)$/m);
    expect(r.stdout).toContain('✗ id=gen-008 failed: invalid_json');
    expect(r.stdout).toContain('Summary (dry run: nothing was written)');

    // The proposals are exactly what FACTS.md says, no more, no less.
    const wanted = new Map([...VOLUME_EXPECTED].filter(([, v]) => v !== null));
    expect(proposals(r.stdout)).toEqual(wanted);

    const selected = VOLUME_EXPECTED.size + 1; // + gen-008
    const skipped = [...VOLUME_EXPECTED.values()].filter((v) => v === null).length;
    const summary = stripAnsi(r.stdout);
    expect(summary).toMatch(new RegExp(`^ {2}total {5}${selected}$`, 'm'));
    expect(summary).toMatch(new RegExp(`^ {2}updated {3}${wanted.size} \\(would be updated\\)$`, 'm'));
    expect(summary).toMatch(new RegExp(`^ {2}skipped {3}${skipped}$`, 'm'));
    expect(summary).toMatch(/^ {2}failed {4}1$/m);
    expect(summary).toMatch(/^ {4}invalid_json +1$/m);
    expect(summary).toMatch(new RegExp(`^ {4}no_media_generation_id +${skipped}$`, 'm'));
  });

  it('the live run makes exactly the proposed changes, with one run timestamp on updated rows only, and never overwrites', async () => {
    const db = copyOf(volumeDb);
    const before = allRows(db);
    const dry = await run(db, ['--dry-run']);
    const proposed = proposals(dry.stdout);
    // Exactly the ids the sample and generated rows hold (written with the data).
    expect(proposed).toEqual(new Map([...VOLUME_EXPECTED].filter(([, v]) => v !== null)));

    const started = new Date().toISOString();
    const live = await run(db);
    const ended = new Date().toISOString();
    expect(live.code).toBe(1);
    expectNoStack(live);
    expect(live.stdout).toContain('✗ id=gen-008 failed: invalid_json');
    // The live run's own report lists the same changes as the dry run.
    expect(proposals(live.stdout)).toEqual(proposed);

    const after = allRows(db);
    expect(after.size).toBe(before.size);
    const changed = new Map<string, string | null>();
    const stamps = new Set<string>();
    for (const [id, row] of after) {
      expect(row.raw_response, id).toBe((before.get(id) as Gen).raw_response);
      if (row.media_generation_id !== before.get(id)?.media_generation_id) {
        changed.set(id, row.media_generation_id);
        stamps.add(row.updated_at);
      }
    }
    expect(changed).toEqual(proposed);
    // Fill-only: every written row held NULL before.
    expect([...changed.keys()].map((id) => before.get(id)?.media_generation_id)).toEqual([...changed.keys()].map(() => null));
    // Every other row is exactly as it was, updated_at included (gen-010's KEEP-existing-010 and
    // the generated KEEP- rows among them).
    const untouched = (rows: Map<string, Gen>) => [...rows].filter(([id]) => !changed.has(id));
    expect(untouched(after)).toEqual(untouched(before));
    expect(after.get('gen-010')?.media_generation_id).toBe('KEEP-existing-010');
    // One timestamp for the run, taken during the run.
    expect(stamps.size).toBe(1);
    const [stamp] = [...stamps] as [string];
    expect(stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(stamp >= started.slice(0, 19) && stamp <= ended).toBe(true);
  });

  // The shipped `where` never reads a row that already holds an id, so the run above cannot show
  // fill-only at work. This copy reads them too: the engine must judge them no_change (not a
  // guard conflict), and neither the engine nor the UPDATE's guard may overwrite them.
  it('fill-only with a `where` that also reads rows holding an id: those are no_change, value and updated_at kept', async () => {
    const dir = tmp();
    const db = copyOf(volumeDb, dir);
    const text = FIX_TEXT.replace(/^ {6}- isNull: media_generation_id\n/m, '');
    expect(text).not.toContain('isNull');
    const spec = dir.write('fix.yaml', text);
    const before = allRows(db);
    const held = [...before.values()].filter((r) => r.media_generation_id !== null && r.raw_response !== null);
    // gen-010 and the generated KEEP- rows whose raw_response holds an id reach the diff (i % 6 = 5
    // holds none: skipped before it).
    const withId = held.filter((r) => r.id === 'gen-010' || Number(r.id.slice(4)) % 6 !== 5);
    expect(withId.map((r) => r.id)).toEqual(['gen-010', 'vol-0039', 'vol-0079', 'vol-0159', 'vol-0199', 'vol-0279']);
    const noIdSelected = [...VOLUME_EXPECTED.values()].filter((v) => v === null).length + held.length - withId.length;
    const wanted = [...VOLUME_EXPECTED.values()].filter((v) => v !== null).length;

    const r = await runCli(['run', spec, '--json'], { cwd: dir.path, env: { VEO3_DB_PATH: db } });
    expect(r.code, r.stderr).toBe(1);
    const s = parseJsonSummary(r);
    expect(s).toMatchObject({
      total: VOLUME_EXPECTED.size + 1 + held.length,
      updated: wanted,
      skipped: noIdSelected + withId.length,
      failed: 1,
    });
    expect(s.reasons).toEqual({ invalid_json: 1, no_change: withId.length, no_media_generation_id: noIdSelected });
    const after = allRows(db);
    expect(held.map((row) => after.get(row.id))).toEqual(held);
  });

  it('a second live run updates nothing', async () => {
    const db = copyOf(volumeDb);
    expect((await run(db)).code).toBe(1);
    const snapshot = sha256File(db);
    const again = await run(db, ['--json']);
    const s = parseJsonSummary(again);
    expect(s).toMatchObject({ dryRun: false, updated: 0, failed: 1, reasons: { invalid_json: 1 } });
    // What is left: the rows with no id to recover (skipped again) and the invalid one.
    const skippedIds = [...VOLUME_EXPECTED.values()].filter((v) => v === null).length;
    expect(s).toMatchObject({ total: skippedIds + 1, skipped: skippedIds });
    expect(sha256File(db)).toBe(snapshot);
  });

  it('exits 1 when some rows hold invalid JSON and 0 when none do', async () => {
    const withBad = await run(copyOf(volumeDb));
    expect(withBad.code).toBe(1);
    const good = await run(copyOf(cleanDb));
    expect(good.code).toBe(0);
    expect(good.stdout).not.toContain('failed:');
    expect(stripAnsi(good.stdout)).toMatch(/^ {2}failed {4}0$/m);
  });

  it('--limit 25 on 100 candidate rows handles exactly 25 of them', async () => {
    const db = copyOf(cleanDb);
    const r = await run(db, ['--limit', '25', '--json']);
    expect(r.code).toBe(0);
    expect(parseJsonSummary(r)).toMatchObject({ total: 25, updated: 25, skipped: 0, failed: 0 });
    const filled = query<{ id: string }>(db, 'SELECT id FROM veo3_video_generations WHERE media_generation_id IS NOT NULL ORDER BY id');
    // The first 25 in primary-key order.
    expect(filled.map((x) => x.id)).toEqual(clean.rows.slice(0, 25).map((x) => x.id));
  });

  it("--json prints exactly one JSON object with the documented keys on stdout, everything else on stderr; dry-run counts equal the live run's", async () => {
    const db = copyOf(volumeDb);
    const dry = await run(db, ['--dry-run', '--json']);
    expect(dry.code).toBe(1);
    const drySummary = parseJsonSummary(dry);
    expect(Object.keys(drySummary).sort()).toEqual(SUMMARY_KEYS);
    expect(drySummary).toMatchObject({ fix: 'sync-media-generation-ids', dryRun: true });
    expect(typeof drySummary.durationMs).toBe('number');
    // The human-readable lines went to stderr.
    expect(dry.stderr).toContain('would update');
    expect(dry.stderr).toContain('Summary (dry run');

    const live = await run(db, ['--json']);
    expect(live.code).toBe(1);
    const liveSummary = parseJsonSummary(live);
    expect(Object.keys(liveSummary).sort()).toEqual(SUMMARY_KEYS);
    const counts = (s: Record<string, unknown>) => ({
      total: s.total,
      updated: s.updated,
      skipped: s.skipped,
      failed: s.failed,
      reasons: s.reasons,
    });
    expect(counts(liveSummary)).toEqual(counts(drySummary));
    expect(liveSummary.dryRun).toBe(false);
    // The summary's numbers match the database.
    const filled = query<{ n: number }>(db, 'SELECT count(*) AS n FROM veo3_video_generations WHERE updated_at <> ?', [
      ORIGINAL_UPDATED_AT,
    ]);
    expect(filled[0]?.n).toBe(liveSummary.updated);
  });
});

// --- exit codes and messages -------------------------------------------------------------------

describe('exit codes and errors', () => {
  it('an invalid spec exits 2 with file:line:col diagnostics and no stack', async () => {
    const dir = tmp();
    const spec = dir.write('bad.yaml', `${FIX_TEXT}bogusKey: 1\n`);
    const r = await runCli(['run', spec], { env: { VEO3_DB_PATH: copyOf(cleanDb, dir) } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`bad.yaml:${FIX_TEXT.split('\n').length}:1 DF101`);
    expectNoStack(r);
  });

  it('a spec file that does not exist exits 2 naming it', async () => {
    const dir = tmp();
    const r = await runCli(['run', dir.file('no-such-fix.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no-such-fix.yaml');
    expectNoStack(r);
  });

  it('a missing database file exits 2, names the path, and creates no file', async () => {
    const dir = tmp();
    const missing = dir.file('nowhere', 'veo3.db');
    const r = await run(missing);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toContain('DF410');
    expect(existsSync(missing)).toBe(false);
    expectNoStack(r);
  });

  it('a missing environment variable exits 2 naming it', async () => {
    const dir = tmp();
    const text = FIX_TEXT.replace(/\$\{VEO3_DB_PATH:-[^}]*\}/, '${VEO3_TEST_ONLY_DB}');
    expect(text).toContain('path: ${VEO3_TEST_ONLY_DB}');
    const spec = dir.write('fix.yaml', text);
    const r = await runCli(['run', spec], { env: { VEO3_TEST_ONLY_DB: undefined } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('VEO3_TEST_ONLY_DB');
    expect(r.stderr).toMatch(/fix\.yaml:\d+:\d+ DF301/);
    expectNoStack(r);
  });

  it.each([
    ['`run` with no SPEC', ['run']],
    ['--limit 0', ['run', FIX, '--limit', '0']],
    ['--limit abc', ['run', FIX, '--limit', 'abc']],
    ['an unknown option', ['run', FIX, '--bogus']],
    ['an unknown command', ['frobnicate']],
  ])('bad usage (%s) exits 2 with the message on stderr and nothing on stdout', async (_what, args) => {
    const dir = tmp();
    const db = copyOf(cleanDb, dir);
    const before = sha256File(db);
    const r = await runCli(args, { env: { VEO3_DB_PATH: db } });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).not.toBe('');
    expectNoStack(r);
    expect(sha256File(db)).toBe(before);
  });

  // The adapter's schema check runs under the busy timeout too: a locked database is an
  // environment error (DF411), never an internal error with a stack trace.
  it('a locked database exits 2 with DF411 and no stack trace', async () => {
    const dir = tmp();
    const db = copyOf(cleanDb, dir);
    const spec = dir.write('fix.yaml', FIX_TEXT.replace(/^( {4}path: .*)$/m, '$1\n    busyTimeoutMs: 200'));
    const { openDb } = await import('../sqlite/fixtures.js');
    const holder = openDb(db);
    holder.exec('BEGIN EXCLUSIVE');
    try {
      const r = await runCli(['run', spec], { env: { VEO3_DB_PATH: db } });
      expectNoStack(r);
      expect(r.stderr).toContain('DF411');
      expect(r.code).toBe(2);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });

  // A value nested 100 000 deep must not crash the printing of a dry run's diff: the record
  // fails on its own (DynamoDB's limit is 32 levels), the others are shown.
  it('a deeply nested value in raw_response is handled per record in a dry run, not a crash', async () => {
    const dir = tmp();
    const db = dir.file('deep.db');
    const N = 100_000;
    createVeo3Database(db, [
      { id: 'deep', raw_response: `{"operations":[{"mediaGenerationId":${'['.repeat(N)}${']'.repeat(N)}}]}` },
      { id: 'ok', raw_response: JSON.stringify({ operations: [op({ mediaGenerationId: 'OK-1' })] }) },
    ]);
    const r = await run(db, ['--dry-run']);
    expectNoStack(r);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ id=deep failed: value_too_deep');
    expect(r.stdout).toContain('~ id=ok would update');
    expect(r.stdout).toContain('Summary (dry run');
  });
});

// --- --env ------------------------------------------------------------------------------------

describe('--env NAME', () => {
  const SECRET = 'sk-live-FAKE-9f8e7d6c5b4a-do-not-print';

  it('loads .env.NAME from the working directory, and never prints a value from it', async () => {
    const dir = tmp();
    const db = copyOf(cleanDb, dir);
    dir.write('.env.staging', `# staging settings\nVEO3_DB_PATH=${db}\nSECRET_TOKEN=${SECRET}\nANOTHER_SECRET="${SECRET}-2"\n`);
    const r = await runCli(['run', `${REPO_ROOT}${FIX}`, '--env', 'staging'], {
      cwd: dir.path,
      env: { VEO3_DB_PATH: undefined, SECRET_TOKEN: undefined },
    });
    expect(r.code).toBe(0);
    expect(query(db, 'SELECT count(*) AS n FROM veo3_video_generations WHERE media_generation_id IS NULL')).toEqual([{ n: 0 }]);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    expect(r.stdout + r.stderr).not.toContain('FAKE-9f8e7d6c5b4a');
  });

  it('does not override a variable that is already set', async () => {
    const dir = tmp();
    const fromEnv = copyOf(cleanDb, dir);
    const other = tmp();
    const fromFile = copyOf(cleanDb, other);
    const fileBefore = sha256File(fromFile);
    dir.write('.env.prod', `VEO3_DB_PATH=${fromFile}\nSECRET_TOKEN=${SECRET}\n`);
    const r = await runCli(['run', `${REPO_ROOT}${FIX}`, '--env', 'prod', '--json'], {
      cwd: dir.path,
      env: { VEO3_DB_PATH: fromEnv, SECRET_TOKEN: undefined },
    });
    expect(r.code).toBe(0);
    expect(parseJsonSummary(r)).toMatchObject({ updated: 100 });
    expect(sha256File(fromFile)).toBe(fileBefore);
    expect(query(fromEnv, 'SELECT count(*) AS n FROM veo3_video_generations WHERE media_generation_id IS NOT NULL')).toEqual([{ n: 100 }]);
    expect(r.stdout + r.stderr).not.toContain(SECRET);
  });

  it('a missing .env.NAME exits 2 naming the file', async () => {
    const dir = tmp();
    const r = await runCli(['run', `${REPO_ROOT}${FIX}`, '--env', 'nope'], { cwd: dir.path });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('.env.nope');
    expectNoStack(r);
  });
});

// --- validate, help, demo ---------------------------------------------------------------------

describe('datafix validate', () => {
  it('the shipped fix is valid: exit 0', async () => {
    const r = await runCli(['validate', FIX], { env: { VEO3_DB_PATH: undefined } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(FIX);
    expect(r.stderr).toBe('');
  });

  it('a copy with `bogusKey: 1` appended exits 2 and prints bogusKey with its line number', async () => {
    const dir = tmp();
    const spec = dir.write('copy.yaml', `${FIX_TEXT}bogusKey: 1\n`);
    const line = FIX_TEXT.split('\n').length; // the text ends with a newline: the next line
    const r = await runCli(['validate', spec]);
    expect(r.code).toBe(2);
    const out = stripAnsi(r.stdout + r.stderr);
    expect(out).toContain('bogusKey');
    expect(out).toContain(`copy.yaml:${line}:1`);
    expectNoStack(r);
  });
});

describe('help', () => {
  it('datafix --help exits 0 and lists the commands, pointing to per-command help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    const out = stripAnsi(r.stdout);
    for (const cmd of ['datafix run', 'datafix validate', 'datafix demo']) expect(out).toContain(cmd);
    expect(out).toContain('--help');
  });

  it('datafix run --help exits 0 and shows the examples', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.code).toBe(0);
    const out = stripAnsi(r.stdout);
    expect(out).toMatch(/Examples/i);
    expect(out).toContain('datafix run fixes/sync-media-generation-ids.yaml --dry-run');
    expect(out).toContain('--limit 25');
    expect(out).toContain('--json');
  });
});

describe('datafix demo', () => {
  it('exits 0 and shows a dry run, a live run and a rerun with 0 updated', async () => {
    const r = await runCli(['demo'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expectNoStack(r);
    const out = stripAnsi(r.stdout);
    expect(out).toContain('Summary (dry run: nothing was written)');
    expect(out).toContain('would update');
    expect(out).toMatch(/^~ id=gen-001 updated$/m);
    // Every fix's rerun section reports nothing updated.
    const reruns = out.split(/^--- /m).filter((s) => s.startsWith('rerun'));
    // One for each of the two fixes the demo runs: the sync fix on SQLite, the i2v fix on DynamoDB.
    expect(reruns.length).toBe(2);
    for (const section of reruns) {
      expect(section).toMatch(/^ {2}updated {3}0$/m);
      expect(section).not.toMatch(/^~ /m);
    }
    // The SQLite live run wrote what its dry run proposed.
    const sqlite = out.split(/^=== /m).find((s) => s.startsWith('SQLite')) ?? '';
    const [dryPart, livePart] = sqlite.split(/^--- live run/m);
    expect(proposals(livePart ?? '')).toEqual(proposals(dryPart ?? ''));
    expect(proposals(dryPart ?? '').size).toBe(7);
  });

  it('--sample-db writes the sample database before any run, as the README tour uses it; never over a file', async () => {
    const dir = tmp();
    const db = dir.file('veo3-automation.db');
    const r = await runCli(['demo', '--sample-db', db], { cwd: dir.path });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`sample database written to ${db}`);
    // The sample rows as generated: the sync fix has everything left to do.
    expect(query(db, 'SELECT id, media_generation_id FROM veo3_video_generations ORDER BY id')).toEqual(
      sampleRows()
        .map((row) => ({ id: row.id, media_generation_id: row.media_generation_id ?? null }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    );
    const dry = await runCli(['run', FIX, '--dry-run', '--json'], { env: { VEO3_DB_PATH: db } });
    expect(JSON.parse(dry.stdout)).toMatchObject({ total: 10, updated: 7, skipped: 2, failed: 1 });
    const hash = sha256File(db);
    const again = await runCli(['demo', '--sample-db', db], { cwd: dir.path });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`error DF742: ${db} already exists; give --sample-db a new file (it is never overwritten)`);
    expect(sha256File(db)).toBe(hash);
  });
});
