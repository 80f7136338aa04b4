/**
 * `datafix test`: runs a fix's own test cases on embedded engines. Each case seeds a fresh
 * target with `given`, does a dry run (which must change nothing and predict the live run), then
 * a live run, and compares the summary, the per-record outcomes and every record afterwards with
 * `expect`. Records a case does not list must come out unchanged.
 */
import { createAdapter } from '../adapters/registry.js';
import type { LocalDynamo } from '../demo/local-dynamo.js';
import type { RecordEvent, RunSummary } from '../engine/events.js';
import { parseJsonExactly } from '../engine/extract.js';
import { runFix } from '../engine/run.js';
import { DatafixError, type Diagnostic, formatDiagnostic } from '../errors.js';
import { compileSpec } from '../language/compile.js';
import type { LoadedSpec } from '../language/load.js';
import { locateInSpec } from '../language/locate.js';
import { deepEqual, formatValue, fromJsonSafe } from '../plan/values.js';
import { isAbsentMarker } from '../safety/jsonl.js';
import { createDynamoTarget, createSqliteTarget, type EmbeddedTarget } from './embedded.js';
import { declarationsOf, loadTestFile, locateInTestFile, placeholderTarget } from './schema.js';
import { type Declarations, givenTagProblems, type Item, recordKeyId, type TableDecl, type Tables } from './tables.js';

export interface FixTestCaseSpec {
  name: string;
  env?: Record<string, string>;
  /** This case's table layouts; each replaces the file's declaration of the same table. */
  tables?: Record<string, TableDecl>;
  given: Tables;
  expect: {
    summary?: Partial<Pick<RunSummary, 'total' | 'updated' | 'skipped' | 'failed' | 'reasons'>>;
    records?: Tables;
    outcomes?: { key: Item; outcome: RecordEvent['outcome']; reason?: string }[];
  };
}

export interface FixTestFileSpec {
  fix?: string;
  /** Table layouts every case uses (a case may replace one). */
  tables?: Record<string, TableDecl>;
  cases: FixTestCaseSpec[];
}

export interface CaseResult {
  readonly name: string;
  readonly passed: boolean;
  /** Readable differences between expected and actual, one per line. */
  readonly problems: readonly string[];
}

export interface FileResult {
  readonly file: string;
  readonly fix: string;
  readonly cases: readonly CaseResult[];
  /** Set when the test file or its fix could not be loaded; no case ran. */
  readonly diagnostics?: readonly Diagnostic[];
}

/** The timestamp every case runs at, so `{{ now }}` in expectations is exact. */
const NOW_TEXT = '{{ now }}';

export class FixTestRunner {
  private dynamo: LocalDynamo | undefined;

  async runFile(file: string): Promise<FileResult> {
    let loaded: LoadedSpec | undefined;
    let specFile: string;
    let fixSpec: LoadedSpec;
    try {
      ({ loaded, specFile, fixSpec } = loadTestFile(file));
    } catch (err) {
      if (err instanceof DatafixError) {
        return {
          file,
          fix: '',
          cases: [],
          diagnostics: err.diagnostics.length
            ? err.diagnostics
            : [{ code: err.code, severity: 'error', message: err.message, file, line: 1, col: 1 }],
        };
      }
      throw err;
    }
    const data = loaded.data as FixTestFileSpec;
    const cases: CaseResult[] = [];
    for (const [i, c] of data.cases.entries()) cases.push(await this.runCase(fixSpec, c, i, declarationsOf(data, i), loaded));
    return { file, fix: specFile, cases };
  }

  private async runCase(
    fixSpec: LoadedSpec,
    c: FixTestCaseSpec,
    index: number,
    declared: Declarations,
    testFile: LoadedSpec,
  ): Promise<CaseResult> {
    const givenAt = `/cases/${index}/given`;
    const problems: string[] = [];
    const now = new Date('2030-01-01T00:00:00.000Z');
    let embedded: EmbeddedTarget | undefined;
    try {
      const tagProblems = givenTagProblems(c.given, givenAt);
      if (tagProblems.length) throw new DatafixError('spec', 'DF515', 'given: values that are not what they say', tagProblems);
      const placeholder = placeholderTarget(fixSpec);
      const plan = compileSpec(fixSpec, { env: { ...c.env }, target: placeholder });
      if (placeholder.backend === 'sqlite') {
        const { default: Database } = await import('better-sqlite3');
        // SQLite holds exact integers as 64-bit integers; other exact decimals only as REAL.
        const given = fromJsonSafe(c.given, (t) => (/^-?[0-9]+$/.test(t) ? BigInt(t) : Number(t))) as Tables;
        embedded = createSqliteTarget(plan, given, Database, declared, givenAt);
      } else {
        const { NumberValue } = await import('@aws-sdk/lib-dynamodb');
        const given = fromJsonSafe(c.given, (t) => NumberValue.from(t)) as Tables;
        embedded = await createDynamoTarget(plan, given, await this.server(), declared, givenAt);
      }
      const before = await embedded.snapshot();

      const target = embedded;
      const run = async (dryRun: boolean) => {
        const events: RecordEvent[] = [];
        const adapter = await createAdapter(target.plan.target, { readonly: dryRun });
        try {
          await adapter.check(target.plan);
          const summary = await runFix(target.plan, adapter, {
            dryRun,
            now,
            retryBaseMs: 5,
            onEvent: (e) => {
              if (e.type === 'record') events.push(e);
            },
          });
          return { summary, events };
        } finally {
          await adapter.close();
        }
      };

      const dry = await run(true);
      const afterDry = await embedded.snapshot();
      for (const line of tableDiff(before, afterDry, embedded.keys)) problems.push(`dry run changed data: ${line}`);
      const live = await run(false);
      const after = await embedded.snapshot();

      const counts = (s: RunSummary) => ({ total: s.total, updated: s.updated, skipped: s.skipped, failed: s.failed, reasons: s.reasons });
      if (!deepEqual(counts(dry.summary), counts(live.summary))) {
        problems.push(
          `dry run counts ${JSON.stringify(counts(dry.summary))} differ from the live run's ${JSON.stringify(counts(live.summary))}`,
        );
      }
      for (const [field, want] of Object.entries(c.expect.summary ?? {})) {
        const got = (live.summary as unknown as Record<string, unknown>)[field];
        if (!deepEqual(got, want)) problems.push(`summary.${field}: expected ${formatValue(want, 400)}, got ${formatValue(got, 400)}`);
      }
      for (const o of c.expect.outcomes ?? []) {
        const want = fromJsonSafe(o.key) as Item;
        const hit = live.events.find((e) => Object.entries(want).every(([k, v]) => deepEqual(e.key[k], v)));
        const label = `outcome of ${keyText(want)}`;
        if (!hit) problems.push(`${label}: expected ${o.outcome}${o.reason ? ` (${o.reason})` : ''}, but no such record was read`);
        else if (hit.outcome !== o.outcome || (o.reason !== undefined && hit.reason !== o.reason)) {
          problems.push(
            `${label}: expected ${o.outcome}${o.reason ? ` (${o.reason})` : ''}, got ${hit.outcome}${hit.reason ? ` (${hit.reason})` : ''}`,
          );
        }
      }
      problems.push(...recordProblems(c.expect.records ?? {}, before, after, embedded.keys, now.toISOString(), placeholder.backend));
    } catch (caught) {
      // A problem with the test file's own tables points at its line; one found against the
      // embedded target points into the fix, like a run's would.
      const err = locateInSpec(locateInTestFile(caught, testFile), fixSpec.file);
      const display = (text: string) => embedded?.display(text) ?? text;
      if (err instanceof DatafixError) {
        problems.push(
          ...(err.diagnostics.length
            ? err.diagnostics.map(
                (d) => display(formatDiagnostic(d)) + (d.code === 'DF402' ? ' (in a fix test: declare it under `tables`)' : ''),
              )
            : [display(`${err.code} ${err.message}`)]),
        );
      } else {
        problems.push(display(`error: ${(err as Error).stack ?? String(err)}`));
      }
    } finally {
      await embedded?.dispose();
    }
    return { name: c.name ?? `case ${index + 1}`, passed: problems.length === 0, problems };
  }

  private async server(): Promise<LocalDynamo> {
    if (!this.dynamo) {
      const { startLocalDynamo } = await import('../demo/local-dynamo.js');
      this.dynamo = await startLocalDynamo();
    }
    return this.dynamo;
  }

  async close(): Promise<void> {
    await this.dynamo?.stop();
    this.dynamo = undefined;
  }
}

function keyText(key: Item): string {
  return Object.entries(key)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : formatValue(v)}`)
    .join(' ');
}

/** Lines describing every record that differs between two snapshots. */
function tableDiff(a: Tables, b: Tables, keys: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const table of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const key = keys.get(table) ?? [];
    const before = new Map((a[table] ?? []).map((r) => [recordKeyId(r, key), r]));
    for (const r of b[table] ?? []) {
      const old = before.get(recordKeyId(r, key));
      before.delete(recordKeyId(r, key));
      if (!old) out.push(`${table} ${keyText(pick(r, key))}: added`);
      else if (!deepEqual(old, r)) out.push(`${table} ${keyText(pick(r, key))}: ${fieldChanges(old, r).join('; ')}`);
    }
    for (const r of before.values()) out.push(`${table} ${keyText(pick(r, key))}: deleted`);
  }
  return out;
}

function pick(r: Item, key: readonly string[]): Item {
  return Object.fromEntries(key.map((k) => [k, r[k]]));
}

function fieldChanges(a: Item, b: Item): string[] {
  const out: string[] = [];
  for (const f of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!deepEqual(a[f], b[f])) out.push(`${f}: ${formatValue(a[f], 200)} → ${formatValue(b[f], 200)}`);
  }
  return out;
}

function matches(actual: unknown, expected: unknown, now: string, backend: 'sqlite' | 'dynamodb'): boolean {
  if (expected === NOW_TEXT) return actual === now;
  // null is a NULL (SQL NULL, a DynamoDB NULL attribute); { $absent: true }, as journals and
  // plans write it, a field not there.
  if (expected === null) return actual === null;
  if (isAbsentMarker(expected)) return actual === undefined;
  // SQLite has no booleans: true and false are stored, and read back, as 1 and 0.
  if (backend === 'sqlite' && typeof expected === 'boolean') return deepEqual(actual, expected ? 1 : 0);
  if (
    typeof actual === 'string' &&
    expected !== null &&
    typeof expected === 'object' &&
    !(expected instanceof Set) &&
    !(expected instanceof Uint8Array)
  ) {
    // SQLite keeps maps and lists as JSON text, read here with every digit of its numbers.
    try {
      return deepEqual(parseJsonExactly(actual), expected);
    } catch {
      return false;
    }
  }
  return deepEqual(actual, expected);
}

function recordProblems(
  expected: Tables,
  before: Tables,
  after: Tables,
  keys: ReadonlyMap<string, readonly string[]>,
  now: string,
  backend: 'sqlite' | 'dynamodb',
): string[] {
  const out: string[] = [];
  const listed = new Set<string>();
  for (const [table, records] of Object.entries(expected)) {
    const key = keys.get(table);
    if (!key) {
      out.push(`expect.records.${table}: no such table in this test`);
      continue;
    }
    const actual = new Map((after[table] ?? []).map((r) => [recordKeyId(r, key), r]));
    for (const raw of records) {
      // `$deleted: true` beside a record's key: that record must not exist after the run.
      const { $deleted: deleted, ...rest } = raw as Item;
      const want = fromJsonSafe(rest) as Item;
      const missingKey = key.filter((k) => want[k] === undefined);
      if (missingKey.length) {
        out.push(`expect.records.${table}: a record lacks its key field(s) ${missingKey.join(', ')}`);
        continue;
      }
      const id = recordKeyId(want, key);
      listed.add(`${table}\u0000${id}`);
      const got = actual.get(id);
      const label = `${table} ${keyText(pick(want, key))}`;
      if (deleted === true) {
        if (got) out.push(`${label}: expected to be deleted, but it exists`);
        continue;
      }
      if (!got) {
        out.push(`${label}: expected to exist, but it does not`);
        continue;
      }
      for (const [field, value] of Object.entries(want)) {
        if (backend === 'sqlite' && !(field in got)) {
          // A SQLite row holds every column of its table; a name it lacks is a misspelling.
          out.push(`${label}: ${field}: \`${table}\` has no such column (it has ${Object.keys(got).join(', ')})`);
          continue;
        }
        if (!matches(got[field], value, now, backend)) {
          out.push(
            `${label}: ${field}: expected ${value === NOW_TEXT ? `the run's timestamp (${now})` : isAbsentMarker(value) ? '(absent)' : formatValue(value, 200)}, got ${formatValue(got[field], 200)}`,
          );
        }
      }
    }
  }
  // Anything not listed must be exactly as it was: a fix that writes where the test did not
  // look is caught here.
  for (const line of tableDiff(before, after, keys)) {
    const [table = '', ...rest] = line.split(' ');
    const key = keys.get(table) ?? [];
    // A deleted record is only in `before`.
    const record = [...(after[table] ?? []), ...(before[table] ?? [])].find((r) => line.startsWith(`${table} ${keyText(pick(r, key))}:`));
    if (record && listed.has(`${table}\u0000${recordKeyId(record, key)}`)) continue;
    out.push(`${table} ${rest.join(' ')} (changed, but not listed under expect.records)`);
  }
  return out;
}
