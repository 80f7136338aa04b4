/** `--env NAME`, the same for every command that takes it. */

/**
 * Loads `.env.NAME` from the working directory (never overriding variables already set) and
 * says so on stderr with how many variables it set, never their names' values. Nothing without
 * a name. Throws DatafixError DF303 (not a plain name) or DF304 (cannot read the file).
 */
export async function loadEnvOption(name: string | undefined, stderr: NodeJS.WritableStream): Promise<void> {
  if (name === undefined) return;
  const { loadEnvFile } = await import('../language/env.js');
  const names = loadEnvFile(name, process.cwd());
  stderr.write(`loaded .env.${name} (${names.length} variable(s) not already set)\n`);
}
