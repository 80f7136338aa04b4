/**
 * Module-resolution hooks for `hold-cli-load.mjs` (they run on Node's hooks thread): the resolution
 * of `…/cli/main.js` writes the mark file and never completes.
 */
import { writeFileSync } from 'node:fs';

let mark;

/** Receives the mark file's path from `register`. */
export function initialize(data) {
  mark = data.mark;
}

/** Resolves every module as Node does, except the CLI's main module. */
export async function resolve(specifier, context, nextResolve) {
  if (/\/cli\/main\.js$/.test(specifier)) {
    writeFileSync(mark, 'held\n');
    return new Promise(() => {});
  }
  return nextResolve(specifier, context);
}
