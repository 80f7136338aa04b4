// Renders the top-level help (`datafix`, `--help`, `-h`) of the built CLI, plain and in colour,
// into dist/cli/help-text.json with a digest of what it was rendered from; bin/datafix.js prints
// it without loading the CLI while the digest still matches (src/cli/help-text.ts). Runs after
// `tsc -b tsconfig.build.json`.
import { writeFileSync } from 'node:fs';
import { helpSourcesDigest } from '../dist/cli/help-text.js';
import { renderHelp } from '../dist/cli/main.js';

const cliDir = new URL('../dist/cli/', import.meta.url);
const file = { sources: helpSourcesDigest(cliDir), plain: renderHelp(false), colored: renderHelp(true) };
writeFileSync(new URL('help-text.json', cliDir), `${JSON.stringify(file)}\n`);
