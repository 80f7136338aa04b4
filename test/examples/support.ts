/**
 * What the example tests share: the path of an example, its `datafix test` file run through the
 * CLI, and case folding as docs/expressions.md says lowerAscii/upperAscii do it (every letter, by
 * Unicode rules), computed here rather than by datafix.
 */
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { show } from '../safety/support.js';

/** Absolute path of `examples/<name>`. */
export function example(name: string): string {
  return fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));
}

/** Runs `datafix test examples/<name>.test.yaml` and expects every case to pass. */
export async function expectExampleTestsPass(name: string, cases: number): Promise<void> {
  const r = await runCli(['test', example(`${name}.test.yaml`)]);
  expect(r.code, show(r)).toBe(0);
  expect(r.stdout).toContain(`${cases} passed, 0 failed`);
}

/** `s` with every letter lowercased. */
export const lowerAscii = (s: string): string => s.toLowerCase();
/** `s` with every letter uppercased. */
export const upperAscii = (s: string): string => s.toUpperCase();
