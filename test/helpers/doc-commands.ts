/**
 * Runs commands as a page of the docs shows them: each line through bash, in order, in one shell
 * (so `export` carries over), with `npx datafix` running this checkout's built CLI (as `npx`
 * does in a clone after `npm ci`) and any other `npx` refused, so a page cannot depend on
 * something a clean clone lacks.
 */
import { spawn } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv } from '../safety/support.js';
import { BIN, REPO_ROOT } from './cli.js';
import { TIME_SCALE } from './time-scale.js';

/**
 * Copies into `dir` what a clean clone holds for the docs' commands: the shipped fixes and the
 * schemas (nothing a test run or a build could have added). Returns `dir`.
 */
export function cleanCloneIn(dir: string): string {
  for (const d of ['fixes', 'schemas']) cpSync(join(REPO_ROOT, d), join(dir, d), { recursive: true });
  return dir;
}

/** The lines of every fenced block of `lang` (```sh) in a Markdown text, without comment-only lines. */
export function fencedCommands(markdown: string, lang = 'sh'): string[] {
  const blocks = [...markdown.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1] as string);
  return blocks.flatMap((b) => b.split('\n')).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
}

/** A line's command without its trailing `# comment` and surrounding blanks. */
export function withoutComment(line: string): string {
  return line.replace(/\s+#\s.*$/, '').trim();
}

export interface LineResult {
  readonly command: string;
  readonly code: number;
  /** Everything the line printed, stdout and stderr interleaved as written. */
  readonly output: string;
}

/**
 * Runs `lines` in one bash process in `cwd`. Returns each line's exit code and output; a line that
 * fails does not stop the ones after it (as a reader typing them would go on).
 */
export function runLines(
  lines: readonly string[],
  options: { cwd: string; env?: Readonly<Record<string, string | undefined>>; timeoutMs?: number },
): Promise<LineResult[]> {
  const marker = `::datafix-doc-line-${process.pid}::`;
  const script = [
    // One stream: a line's stderr lands between its own markers, in the order it was written.
    'exec 2>&1',
    `npx() { if [ "$1" = datafix ]; then shift; "${process.execPath}" "${BIN}" "$@"; else echo "npx $1: not available in a clean clone" >&2; return 127; fi; }`,
    ...lines.flatMap((l, i) => [`echo "${marker}start ${i}"`, l, `echo "${marker}end ${i} $?"`]),
  ].join('\n');
  // As the CLI tests run it: CI=true, no colours, the test's own variables on top.
  const env = cliEnv(options.env);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let all = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      all += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.timeoutMs ?? 120_000) * TIME_SCALE);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve(
        lines.map((command, i) => {
          const start = all.indexOf(`${marker}start ${i}\n`);
          const end = new RegExp(`${marker.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}end ${i} (\\d+)\\n`).exec(all);
          const output = start < 0 || !end ? '' : all.slice(start + `${marker}start ${i}\n`.length, end.index);
          return { command, code: end ? Number(end[1]) : -1, output };
        }),
      );
    });
  });
}
