/**
 * `${VAR}` and `${VAR:-default}` in connection settings and run settings, so that specs carry
 * no literal endpoints or secrets. `--env NAME` loads `.env.NAME` with Node's own parser and
 * never overrides a variable that is already set.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { DatafixError } from '../errors.js';

export type EnvSource = Readonly<Record<string, string | undefined>>;

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** A `${VAR}` without a default whose variable has no value: not set at all, or set to "". */
export interface MissingEnv {
  readonly name: string;
  /** True when the variable is set but empty (`VAR=` in the shell or in a `.env` file). */
  readonly empty: boolean;
}

/**
 * Replaces every `${VAR}` / `${VAR:-default}` in `text` from `env`. A reference with no value and
 * no default becomes "" in `value` and is listed in `missing`, which tells an unset variable from
 * an empty one so that the message says which of the two the user has to fix.
 */
export function interpolateEnv(text: string, env: EnvSource): { value: string; missing: MissingEnv[] } {
  const missing: MissingEnv[] = [];
  const value = text.replace(REFERENCE, (_all, name: string, fallback: string | undefined) => {
    const v = env[name];
    // As in the shell, `:-` uses the default for an unset or empty variable.
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    missing.push({ name, empty: v === '' });
    return '';
  });
  return { value, missing };
}

/** Environment names a spec's text references, for checks that do not need their values. */
export function referencedEnvNames(text: string): string[] {
  return [...new Set([...text.matchAll(REFERENCE)].map((m) => m[1] as string))];
}

/**
 * Loads `.env.NAME` from `cwd` into `env` without overriding variables already set. Returns the
 * names it set (never the values, which may be secrets).
 */
export function loadEnvFile(name: string, cwd: string, env: Record<string, string | undefined> = process.env): string[] {
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new DatafixError('usage', 'DF303', `--env ${name}: expected a plain name such as prod or local`);
  }
  const file = resolve(cwd, `.env.${name}`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new DatafixError('config', 'DF304', `--env ${name}: cannot read ${file}; create it or run without --env`);
  }
  const parsed = parseEnv(text);
  const set: string[] = [];
  for (const [k, v] of Object.entries(parsed)) {
    if (env[k] === undefined) {
      env[k] = v;
      set.push(k);
    }
  }
  return set;
}
