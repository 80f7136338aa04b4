// Renders the top-level help (`datafix`, `--help`, `-h`) of the built CLI, plain and in colour,
// into dist/cli/help-text.json, which bin/datafix.js prints without loading the CLI
// (src/cli/help-text.ts). Runs after `tsc -b tsconfig.build.json`.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderHelp } from '../dist/cli/main.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const file = { version, plain: renderHelp(false), colored: renderHelp(true) };
writeFileSync(new URL('../dist/cli/help-text.json', import.meta.url), `${JSON.stringify(file)}\n`);
