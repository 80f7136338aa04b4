/** Validation of fix test files, with the same diagnostics (code, path, file:line:col) as specs. */
import { basename, dirname, resolve } from 'node:path';
import { DatafixError, type Diagnostic } from '../errors.js';
import { compileSpec } from '../language/compile.js';
import { type LoadedSpec, loadSpecFile } from '../language/load.js';
import { schemaValidator } from '../language/schema-validator.js';
import { toDiagnostics } from '../language/validate.js';
import type { TargetPlan } from '../plan/types.js';
import { type Declarations, DYNAMO_TARGET_TABLE, declarationProblems, type TableDecl } from './tables.js';

export function validateTestFile(file: LoadedSpec): Diagnostic[] {
  const validate = schemaValidator('fix-test');
  if (validate(file.data)) return [];
  return toDiagnostics(validate.errors ?? [], file).map((d) => ({ ...d, code: d.code.replace(/^DF1/, 'DF5') }));
}

/** A fix test file and the fix it tests, both loaded and checked. */
export interface LoadedTestFile {
  readonly loaded: LoadedSpec;
  /** The fix: `fix:` in the test file, relative to it, else NAME.yaml beside NAME.test.yaml. */
  readonly specFile: string;
  readonly fixSpec: LoadedSpec;
}

/**
 * Loads a fix test file and checks it without running a case: its YAML, its own schema (codes
 * DF5xx), and the fix it names, which must load and compile (environment variables need not be
 * set). What `datafix test` checks before running, and what `datafix validate` checks of a
 * `*.test.yaml`.
 * @throws DatafixError with the diagnostics of the test file or of the fix (file:line:col).
 */
export function loadTestFile(file: string): LoadedTestFile {
  const loaded = loadSpecFile(file);
  const diags = validateTestFile(loaded);
  if (diags.length) throw new DatafixError('spec', diags[0]?.code ?? 'DF500', `${file}: invalid test file`, diags);
  const data = loaded.data as { fix?: string };
  const specFile = resolve(dirname(file), data.fix ?? basename(file).replace(/\.test\.ya?ml$/, '.yaml'));
  const fixSpec = loadSpecFile(specFile);
  // Compiled once up front so a broken fix is one clear error, not one per case; so are table
  // declarations that do not fit it (each reported once, at its line).
  const plan = compileSpec(fixSpec, { skipEnv: true, target: placeholderTarget(fixSpec) });
  const tables = loaded.data as TestFileTables;
  // A file-level declaration is checked with every case; each problem is reported once.
  const found = new Map<string, Diagnostic>();
  for (const i of tables.cases.keys()) {
    for (const d of declarationProblems(plan, declarationsOf(tables, i))) found.set(`${d.path}\u0000${d.message}`, d);
  }
  const problems = [...found.values()];
  if (problems.length) {
    throw locateInTestFile(new DatafixError('spec', problems[0]?.code ?? 'DF514', `${file}: tables do not fit the fix`, problems), loaded);
  }
  return { loaded, specFile, fixSpec };
}

/** The `tables` of a test file and of its cases. */
interface TestFileTables {
  readonly tables?: Record<string, TableDecl>;
  readonly cases: readonly { readonly tables?: Record<string, TableDecl> }[];
}

/** A placeholder target: the embedded one replaces it once the plan says what to create. */
export function placeholderTarget(fixSpec: LoadedSpec): TargetPlan {
  return (fixSpec.data as { target: Record<string, unknown> }).target.sqlite
    ? { backend: 'sqlite', path: ':embedded:', busyTimeoutMs: 5000 }
    : { backend: 'dynamodb', table: DYNAMO_TARGET_TABLE, region: 'us-east-1' };
}

/** The tables case `index` runs on: the file's declarations, each replaced by the case's own. */
export function declarationsOf(data: TestFileTables, index: number): Declarations {
  const declared = new Map<string, { decl: TableDecl; at: string }>();
  for (const [name, decl] of Object.entries(data.tables ?? {})) declared.set(name, { decl, at: `/tables/${name}` });
  for (const [name, decl] of Object.entries(data.cases[index]?.tables ?? {}))
    declared.set(name, { decl, at: `/cases/${index}/tables/${name}` });
  return declared;
}

/** `err` with its diagnostics about the test file itself (`/cases/…`, `/tables/…`) located in it. */
export function locateInTestFile(err: unknown, testFile: LoadedSpec | undefined): unknown {
  if (!(err instanceof DatafixError) || testFile === undefined) return err;
  const ours = (d: Diagnostic) => d.file === undefined && d.path !== undefined && /^\/(cases|tables)\//.test(d.path);
  if (!err.diagnostics.some(ours)) return err;
  const diagnostics = err.diagnostics.map((d): Diagnostic => {
    if (!ours(d)) return d;
    const { line, col } = testFile.locate((d.path as string).split('/').slice(1));
    return { ...d, file: testFile.file, line, col };
  });
  return new DatafixError(err.category, err.code, err.message, diagnostics);
}
