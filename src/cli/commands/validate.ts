import { Command, Option } from 'clipanion';
import * as t from 'typanion';
import { EXIT } from '../exit.js';

export class ValidateCommand extends Command {
  static override paths = [['validate']];

  static override usage = Command.Usage({
    description: 'Check specs and fix test files without running them: YAML, schema, references, JSONPaths.',
    details: `
      Checks every file named, and every \`*.yaml\`/\`*.yml\` file in each directory named. A fix
      test file (\`*.test.yaml\`) is checked as one, against its own schema, with the fix it tests;
      its cases are run by \`datafix test\`. Prints every problem as \`file:line:col code message\`
      and exits 2 if any file has an error, 0 otherwise (so \`datafix validate fixes/*.yaml\` works).

      Environment variables need not be set: \`\${VAR}\` references are checked for form, not value.

      \`--format github\` prints GitHub Actions annotations, so problems show on the PR's diff.
    `,
    examples: [
      ['Check every fix in a directory', 'datafix validate fixes'],
      ['Check one spec', 'datafix validate fixes/i2v-thumbnails.yaml'],
      ['Check specs and test files by a shell pattern', 'datafix validate fixes/*.yaml'],
      ['In a GitHub Actions workflow', 'datafix validate fixes --format github'],
    ],
  });

  targets = Option.Rest({ name: 'PATH' });
  format = Option.String('--format', 'text', {
    validator: t.isEnum(['text', 'github'] as const),
    description: 'text (default): file:line:col code message; github: GitHub Actions annotations',
  });

  override async execute(): Promise<number> {
    const { checkSpecFile } = await import('../../api.js');
    const { formatDiagnostic } = await import('../../errors.js');
    const { findSpecFiles, isTestFile } = await import('../files.js');
    const { loadTestFile } = await import('../../fixtest/schema.js');
    const { files, missing } = findSpecFiles(this.targets.length ? this.targets : ['fixes'], 'any');
    for (const m of missing) this.context.stderr.write(`error DF007: ${m}: no such file or directory\n`);
    let failed = missing.length;
    for (const file of files) {
      const result = isTestFile(file) ? checkTestFile(loadTestFile, file) : checkSpecFile(file, { skipEnv: true });
      if (result.ok) {
        if (this.format === 'text') this.context.stdout.write(`ok ${file}\n`);
        continue;
      }
      failed++;
      for (const d of result.diagnostics) {
        if (this.format === 'github') {
          // Annotation properties and messages have their own escaping rules.
          const prop = (s: string) =>
            s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/:/g, '%3A').replace(/,/g, '%2C');
          const msg = d.message.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
          this.context.stdout.write(
            `::error file=${prop(d.file ?? file)},line=${d.line ?? 1},col=${d.col ?? 1},title=${prop(`datafix ${d.code}`)}::${msg}\n`,
          );
        } else {
          this.context.stderr.write(`${formatDiagnostic(d)}\n`);
        }
      }
    }
    const total = files.length + missing.length;
    if (total === 0) {
      this.context.stderr.write('error DF007: no spec or test files found\n');
      return EXIT.invalid;
    }
    if (failed > 0) this.context.stderr.write(`${failed} of ${total} file(s) invalid\n`);
    return failed > 0 ? EXIT.invalid : EXIT.ok;
  }
}

/** A test file's check as `checkSpecFile` reports a spec's: ok, or its diagnostics. */
function checkTestFile(
  load: typeof import('../../fixtest/schema.js').loadTestFile,
  file: string,
): { ok: boolean; diagnostics: readonly import('../../errors.js').Diagnostic[] } {
  try {
    load(file);
    return { ok: true, diagnostics: [] };
  } catch (err) {
    const e = err as import('../../errors.js').DatafixError;
    if (!Array.isArray(e.diagnostics)) throw err;
    return {
      ok: false,
      diagnostics: e.diagnostics.length ? e.diagnostics : [{ code: e.code, severity: 'error', message: e.message, file, line: 1, col: 1 }],
    };
  }
}
