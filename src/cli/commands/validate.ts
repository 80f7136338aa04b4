import { Command, Option } from 'clipanion';
import { EXIT } from '../exit.js';

export class ValidateCommand extends Command {
  static override paths = [['validate']];

  static override usage = Command.Usage({
    description: 'Check specs without running them: YAML, schema, references, JSONPaths.',
    details: `
      Prints every problem as \`file:line:col code message\` and exits 2 if any spec has an
      error, 0 otherwise. Environment variables need not be set: \`\${VAR}\` references are
      checked for form, not value.
    `,
    examples: [
      ['Check one spec', 'datafix validate fixes/i2v-thumbnails.yaml'],
      ['Check several', 'datafix validate fixes/*.yaml'],
    ],
  });

  specs = Option.Rest({ name: 'SPEC', required: 1 });

  override async execute(): Promise<number> {
    const { checkSpecFile } = await import('../../api.js');
    const { formatDiagnostic } = await import('../../errors.js');
    let failed = 0;
    for (const file of this.specs) {
      const result = checkSpecFile(file, { skipEnv: true });
      if (result.ok) {
        this.context.stdout.write(`ok ${file}\n`);
      } else {
        failed++;
        for (const d of result.diagnostics) this.context.stderr.write(`${formatDiagnostic(d)}\n`);
      }
    }
    if (failed > 0) this.context.stderr.write(`${failed} of ${this.specs.length} spec(s) invalid\n`);
    return failed > 0 ? EXIT.invalid : EXIT.ok;
  }
}
