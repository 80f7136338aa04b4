/** Validation of fix test files, with the same diagnostics (code, path, file:line:col) as specs. */
import { basename, dirname, resolve } from 'node:path';
import { DatafixError, type Diagnostic } from '../errors.js';
import { compileSpec } from '../spec/compile.js';
import { type LoadedSpec, loadSpecFile } from '../spec/load.js';
import { schemaValidator } from '../spec/schema-validator.js';
import { toDiagnostics } from '../spec/validate.js';

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
  // Compiled once up front so that a broken fix is one clear error, not one per case.
  compileSpec(fixSpec, { skipEnv: true });
  return { loaded, specFile, fixSpec };
}
