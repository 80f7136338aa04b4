/**
 * Usage text and command-line errors in datafix's own words. clipanion parses the command line;
 * its help names every option value `#0`, hides required options from a command's usage line,
 * reports a missing required option as "Command not found", lists some candidates twice and reads
 * `--limit -1` as an option named `-1`. This module renders what it knows instead: each value
 * named, required options shown, one suggestion per candidate, and `error DF0xx: …` lines.
 */
import { Cli, type Command, type Definition } from 'clipanion';
import { DatafixError } from '../errors.js';

/** What each option's value is, shown in place of clipanion's `#0`. */
const VALUE_NAMES: Readonly<Record<string, string>> = {
  '--backend': 'BACKEND',
  '--concurrency': 'N',
  '--diff-file': 'PATH',
  '--dir': 'DIR',
  '--env': 'NAME',
  '--format': 'FORMAT',
  '--journal': 'PATH',
  '--limit': 'N',
  '--older-than': 'AGE',
  '--out': 'PATH',
  '--sample-db': 'PATH',
  '--segment': 'I',
  '--total-segments': 'N',
};

/** `--diff-file` → `DIFF_FILE` for an option not in the table: never a bare `#0`. */
function valueName(option: string): string {
  return VALUE_NAMES[option] ?? option.replace(/^-+/, '').replace(/-/g, '_').toUpperCase();
}

/** Replaces every `--option #0` (also `--yes,-y #0`) in clipanion text with the value's name. */
export function nameValues(text: string): string {
  return text.replace(
    /(--[a-z][a-z0-9-]*)((?:,-[a-zA-Z])?) #0/g,
    (_m, name: string, alias: string) => `${name}${alias} ${valueName(name)}`,
  );
}

/** One option of a command, as its help lists it. */
interface OptionInfo {
  /** Every spelling: `--yes`, `-y`. */
  readonly names: readonly string[];
  /** `--out PATH`, `--dry-run`. */
  readonly shown: string;
  readonly takesValue: boolean;
  readonly required: boolean;
  readonly description: string;
}

interface CommandInfo {
  /** `run`, `runs prune`. */
  readonly path: string;
  /** `SPEC`, `PATH...`: the positional arguments. */
  readonly positionals: readonly string[];
  readonly options: readonly OptionInfo[];
}

function commandsOf(cli: Cli): CommandInfo[] {
  return cli.definitions().map((d: Definition) => {
    const path = d.path.replace(/^datafix\s*/, '');
    const options = d.options.map((o): OptionInfo => {
      const [spellings = '', value] = o.definition.split(' ');
      const names = spellings.split(',');
      return {
        names,
        shown: `${spellings}${value ? ` ${valueName(names[0] ?? '')}` : ''}`,
        takesValue: value !== undefined,
        required: o.required,
        description: o.description ?? '',
      };
    });
    const positionals = [...d.usage.matchAll(/<([A-Z_]+)>|(\.\.\.)/g)].map((m) => m[1] ?? 'PATH...');
    return { path, positionals, options };
  });
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

/** The candidates close to `word` (a typo, or a prefix of one), each once, closest first. */
export function closest(word: string, candidates: readonly string[]): string[] {
  const scored = [...new Set(candidates)]
    .map((c) => ({ c, d: c.startsWith(word) || word.startsWith(c) ? 0 : distance(word, c) }))
    .filter(({ c, d }) => d <= Math.max(1, Math.floor(Math.min(word.length, c.length) / 3)));
  return scored.sort((x, y) => x.d - y.d || x.c.localeCompare(y.c)).map(({ c }) => c);
}

const orList = (items: readonly string[]) =>
  items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;

/** The command an argv names (`runs prune` before `runs`), and where its arguments start. */
function commandOf(commands: readonly CommandInfo[], argv: readonly string[]): { command: CommandInfo; rest: string[] } | undefined {
  const words = argv.filter((a) => !a.startsWith('-'));
  const named = commands
    .filter((c) => c.path !== '' && c.path.split(' ').every((w, i) => words[i] === w))
    .sort((a, b) => b.path.length - a.path.length)[0];
  if (!named) return undefined;
  const rest = [...argv];
  for (const w of named.path.split(' ')) rest.splice(rest.indexOf(w), 1);
  return { command: named, rest };
}

/**
 * `--limit -1` is read by clipanion as a missing value followed by an option `-1`. A value that
 * looks like a negative number, after an option that takes a value, is bound to it
 * (`--limit=-1`), so the option's own check says what is wrong with it.
 */
export function bindNegativeValues(cli: Cli, argv: readonly string[]): string[] {
  const valued = new Set(commandsOf(cli).flatMap((c) => c.options.filter((o) => o.takesValue).flatMap((o) => o.names)));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = argv[i + 1];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (valued.has(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** typanion's "expected …" in datafix's words: `to be at least 1` → `≥ 1`. */
function expectation(expected: string): string {
  const atLeast = /^to be at least (-?\d+)$/.exec(expected);
  if (atLeast) return `≥ ${atLeast[1]}`;
  if (expected === 'a number') return 'a number';
  if (expected === 'to be an integer') return 'a whole number';
  const oneOf = /^one of (.*)$/.exec(expected);
  if (oneOf?.[1]) return `one of ${orList([...oneOf[1].matchAll(/"([^"]*)"/g)].map((m) => m[1] as string))}`;
  return expected.replace(/^to be /, '');
}

/**
 * Turns clipanion's parse error for `argv` into a DatafixError (category `usage`, exit 2) that
 * names what is wrong and what would work, or returns undefined for an error that is not about the
 * command line. Codes: DF020 unknown command, DF021 unknown option, DF022 a required argument or
 * option (or an option's value) is missing, DF023 an option's value is invalid, DF024 an argument
 * too many.
 */
export function commandLineError(cli: Cli, argv: readonly string[], err: unknown): DatafixError | undefined {
  if (!(err instanceof Error) || !('clipanion' in err)) return undefined;
  const commands = commandsOf(cli);
  const found = commandOf(commands, argv);
  const message = err.message.split('\n')[0] ?? '';
  const help = found ? `datafix ${found.command.path} --help` : 'datafix --help';
  const usage = (text: string, code: string) => new DatafixError('usage', code, `${text}${text.endsWith('?') ? '' : '.'} See ${help}`);

  const invalid = /^Invalid value for (\S+): expected (.*) \(got (.*)\)$/.exec(message);
  if (invalid) return usage(`${invalid[1]} must be ${expectation(invalid[2] as string)} (got ${invalid[3]})`, 'DF023');

  const unknownOption = /^Unsupported option name \("(.*)"\)/.exec(message);
  if (unknownOption) {
    const option = unknownOption[1] as string;
    const known = found ? found.command.options.flatMap((o) => o.names) : ['--help', '--version'];
    const near = closest(option, known);
    const where = found ? ` for datafix ${found.command.path}` : '';
    return usage(`unknown option ${option}${where}${near.length ? `; did you mean ${orList(near)}?` : ''}`, 'DF021');
  }

  const noValue = /^Not enough arguments to option (-[\w-]+)/.exec(message);
  if (noValue) {
    const name = noValue[1] as string;
    return usage(`${name} needs a value: ${name} ${valueName(name)}`, 'DF022');
  }

  if (!found) {
    const word = argv.find((a) => !a.startsWith('-'));
    if (word === undefined) return usage('no command given', 'DF020');
    const near = closest(
      word,
      commands.map((c) => c.path.split(' ')[0] as string).filter((w) => w !== ''),
    );
    return usage(`unknown command "${word}"${near.length ? `; did you mean ${orList(near.map((n) => `datafix ${n}`))}?` : ''}`, 'DF020');
  }

  const { command, rest } = found;
  const given = new Set(rest.map((a) => a.split('=')[0]));
  const missingOptions = command.options.filter((o) => o.required && !o.names.some((n) => given.has(n)));
  const positionalsGiven = rest.filter((a, i) => !a.startsWith('-') && !isOptionValue(command, rest, i)).length;
  const wanted = command.positionals.filter((p) => !p.endsWith('...'));
  const missingPositionals = wanted.slice(positionalsGiven);
  const missing = [
    ...missingPositionals,
    ...missingOptions.map((o) => `${o.shown}${o.description ? ` (${lowerFirst(o.description)})` : ''}`),
  ];
  if (missing.length > 0) return usage(`datafix ${command.path} needs ${missing.join(' and ')}`, 'DF022');
  if (positionalsGiven > wanted.length && !command.positionals.some((p) => p.endsWith('...'))) {
    const extra = rest.filter((a, i) => !a.startsWith('-') && !isOptionValue(command, rest, i)).slice(wanted.length);
    return usage(
      `datafix ${command.path} takes ${wanted.length === 0 ? 'no argument' : wanted.join(' ')}; unexpected ${extra.map((e) => `"${e}"`).join(' ')}`,
      'DF024',
    );
  }
  // Commands that take any number of paths (validate, test) report an unknown option after a
  // path as "Command not found": name the option instead.
  const knownNames = command.options.flatMap((o) => o.names);
  const stray = rest.find((a) => a.startsWith('-') && a !== '-' && !knownNames.includes(a.split('=')[0] as string));
  if (stray !== undefined) {
    const option = stray.split('=')[0] as string;
    const near = closest(option, knownNames);
    return usage(`unknown option ${option} for datafix ${command.path}${near.length ? `; did you mean ${orList(near)}?` : ''}`, 'DF021');
  }
  return usage(`cannot read the command line: ${message}`, 'DF024');
}

/** The option list of a command's help, padded again after `#0` became a name. */
function alignOptions(text: string): string {
  const line = /^ {2}(-\S+(?: #0)?) {2,}(.*)$/gm;
  const defs = [...text.matchAll(line)].map((m) => nameValues(m[1] as string));
  const width = Math.max(0, ...defs.map((d) => d.length));
  return text.replace(line, (_m, def: string, description: string) => `  ${nameValues(def).padEnd(width)}    ${description}`);
}

function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? `${s[0]?.toLowerCase()}${s.slice(1)}` : s;
}

/** Whether `args[i]` is the value of the option before it (`--env prod`). */
function isOptionValue(command: CommandInfo, args: readonly string[], i: number): boolean {
  const before = args[i - 1];
  return before !== undefined && command.options.some((o) => o.takesValue && o.names.includes(before));
}

/**
 * clipanion's Cli with datafix's usage text: option values named, and a command's required
 * options on its usage line and marked in its option list.
 */
export class DatafixCli extends Cli {
  override usage(command?: Parameters<Cli['usage']>[0], opts?: { colored?: boolean; detailed?: boolean; prefix?: string }): string {
    let text = super.usage(command, opts);
    const klass = (command && typeof command === 'object' ? command.constructor : command) as
      | (typeof Command & { paths?: string[][] })
      | null
      | undefined;
    const path = klass?.paths?.[0]?.join(' ');
    if (path !== undefined && opts?.detailed) {
      const info = commandsOf(this).find((c) => c.path === path);
      for (const o of info?.options.filter((x) => x.required) ?? []) {
        // On the usage line before the positionals, and marked in the option list.
        text = text.replace(`$ datafix ${path} `, `$ datafix ${path} ${o.shown} `);
        text = text.replace(new RegExp(`^( {2}${o.names.join(',')} #0 {2,})`, 'm'), '$1(required) ');
      }
    }
    // clipanion shows a list of arguments as a bare `...`; datafix's are paths (see commandsOf).
    text = text.replace(/^( *(?:\$ )?datafix [^\n]*) \.\.\.$/gm, '$1 [PATH ...]');
    // Named values change the width of option definitions: the option list is aligned again.
    text = alignOptions(text);
    return nameValues(text);
  }

  override error(error: Error, opts?: { colored?: boolean; command?: Command<never> | null }): string {
    return nameValues(super.error(error, opts as never));
  }
}
