/**
 * Reads a spec file into plain data plus a way to point back into the YAML text. YAML is parsed
 * in its safest form: the core schema (no custom tags), no merge keys, unique keys, no aliases,
 * and every parser warning is an error, because a spec that parses "with a warning" may mean
 * something other than what its reviewer read.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { DatafixError, type Diagnostic } from '../errors.js';

/** A spec larger than this is not a hand-written fix; refusing it bounds parse time and memory. */
export const MAX_SPEC_BYTES = 1024 * 1024;
/** Deeper nesting than any real spec needs; keeps recursive walks far from the stack limit. */
export const MAX_SPEC_DEPTH = 64;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export type PathSegment = string | number;

export interface Location {
  readonly line: number;
  readonly col: number;
}

export interface LoadedSpec {
  readonly file: string;
  readonly text: string;
  readonly data: unknown;
  /** sha256 of the file's bytes: a plan or journal records it to notice an edited spec. */
  readonly checksum: string;
  /** Where a value (or, with `key`, its key) sits in the file; falls back to the nearest parent. */
  locate(path: readonly PathSegment[], options?: { key?: boolean }): Location;
}

export function loadSpecFile(file: string): LoadedSpec {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file; check the path'
        : code === 'EISDIR'
          ? 'it is a directory; give the path of a .yaml spec file'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied; make it readable by the user running datafix'
            : String(code ?? err);
    throw new DatafixError('usage', 'DF007', `cannot read spec ${file}: ${why}`, [
      { code: 'DF007', severity: 'error', file, line: 1, col: 1, message: `cannot read spec: ${why}` },
    ]);
  }
  return loadSpecText(bytes.toString('utf8'), file, bytes);
}

export function loadSpecText(text: string, file: string, bytes: Buffer = Buffer.from(text, 'utf8')): LoadedSpec {
  const checksum = createHash('sha256').update(bytes).digest('hex');
  const fail = (diags: Diagnostic[]): never => {
    throw new DatafixError('spec', diags[0]?.code ?? 'DF001', `${file}: invalid spec`, diags);
  };
  if (bytes.length > MAX_SPEC_BYTES) {
    fail([diag('DF006', `spec is ${bytes.length} bytes; the limit is ${MAX_SPEC_BYTES}. Split the data out of the spec`, file, 1, 1)]);
  }

  const lineCounter = new LineCounter();
  const at = (offset: number): Location => {
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, col: pos.col };
  };
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, {
      lineCounter,
      schema: 'core',
      merge: false,
      uniqueKeys: true,
      strict: true,
      prettyErrors: false,
      version: '1.2',
      // YAML 1.1 tags (!!timestamp, !!binary, !!set, !!omap) would build values the spec's
      // reader does not see in the text; unresolved, they are warnings, and so errors here.
      resolveKnownTags: false,
    });
  } catch (err) {
    return fail([diag('DF006', `spec could not be parsed (${(err as Error).message}); it is probably nested too deeply`, file, 1, 1)]);
  }

  const diags: Diagnostic[] = [];
  for (const e of doc.errors) {
    const { line, col } = at(e.pos[0]);
    if (/Maximum call stack/i.test(e.message)) {
      // The parser gave out before the depth check could run: say what is wrong with the spec.
      diags.push(diag('DF006', `spec is nested more than ${MAX_SPEC_DEPTH} levels deep`, file, line, col));
    } else diags.push(diag('DF001', `YAML syntax error: ${firstLine(e.message)}`, file, line, col));
  }
  for (const w of doc.warnings) {
    const { line, col } = at(w.pos[0]);
    diags.push(diag('DF002', `YAML warning treated as an error: ${firstLine(w.message)}`, file, line, col));
  }
  const yamlDirective = doc.directives?.yaml;
  if (yamlDirective?.explicit && yamlDirective.version !== '1.2') {
    diags.push(diag('DF005', `%YAML ${yamlDirective.version} is not supported; specs are YAML 1.2. Remove the %YAML line`, file, 1, 1));
  }
  if (diags.length === 0) {
    checkTree(doc.contents as Node | null, 0, file, at, diags);
  }
  if (diags.length > 0) fail(diags);

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 0 });
  } catch (err) {
    fail([diag('DF006', `spec could not be read: ${firstLine((err as Error).message)}`, file, 1, 1)]);
  }

  const locate = (path: readonly PathSegment[], options: { key?: boolean } = {}): Location => {
    let node: unknown = doc.contents;
    let best: Location = { line: 1, col: 1 };
    const rangeOf = (n: unknown): Location | undefined => {
      const range = (n as { range?: [number, number, number] } | null)?.range;
      return range ? at(range[0]) : undefined;
    };
    best = rangeOf(node) ?? best;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return best;
        if (last && options.key) return rangeOf(pair.key) ?? best;
        node = pair.value;
        best = rangeOf(node) ?? rangeOf(pair.key) ?? best;
      } else if (isSeq(node)) {
        node = node.items[Number(seg)];
        if (node === undefined) return best;
        best = rangeOf(node) ?? best;
      } else {
        return best;
      }
    }
    return best;
  };

  return { file, text, data, checksum, locate };
}

/** Refuses aliases, prototype keys, non-string keys and excessive depth, before any value is built. */
/**
 * Why a plain (unquoted) scalar would not mean what its text says, or undefined: YAML 1.2's core
 * schema reads `01234` as the number 1234, `1.10` as 1.1, `0x1F` as 31, `1e3` as 1000, `TRUE` as
 * a boolean and `~` or `NULL` as null, and a condition or a write would then use that value.
 */
function ambiguousScalar(node: unknown): string | undefined {
  if (!isScalar(node) || node.type !== 'PLAIN' || typeof node.source !== 'string') return undefined;
  const text = node.source;
  const v = node.value;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) return undefined; // DF008 says more
    return String(v) === text
      ? undefined
      : `${text} is read as the number ${String(v)}; quote it ("${text}") if it is text, or write ${String(v)}`;
  }
  if (typeof v === 'boolean') {
    return text === String(v)
      ? undefined
      : `${text} is read as the boolean ${String(v)}; quote it ("${text}") if it is text, or write ${String(v)}`;
  }
  if (v === null && (text === '~' || text === 'Null' || text === 'NULL')) {
    return `${text} is read as null; quote it ("${text}") if it is text, or write null`;
  }
  return undefined;
}

function checkTree(node: Node | null, depth: number, file: string, at: (offset: number) => Location, diags: Diagnostic[]): void {
  if (!node) return;
  const ambiguous = ambiguousScalar(node);
  if (ambiguous) {
    const range = (node as { range?: [number, number, number] }).range;
    const { line, col } = range ? at(range[0]) : { line: 1, col: 1 };
    diags.push(diag('DF009', ambiguous, file, line, col));
  }
  const where = (n: unknown): Location => {
    const range = (n as { range?: [number, number, number] }).range;
    return range ? at(range[0]) : { line: 1, col: 1 };
  };
  if (depth > MAX_SPEC_DEPTH) {
    const { line, col } = where(node);
    diags.push(diag('DF006', `spec is nested more than ${MAX_SPEC_DEPTH} levels deep`, file, line, col));
    return;
  }
  if (isAlias(node)) {
    const { line, col } = where(node);
    diags.push(diag('DF003', `YAML alias *${node.source} is not allowed in specs; write the value out`, file, line, col));
    return;
  }
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = pair.key as Node | null;
      if (isAlias(key)) {
        checkTree(key, depth + 1, file, at, diags);
        continue;
      }
      if (!isScalar(key) || (typeof key.value !== 'string' && typeof key.value !== 'number')) {
        const { line, col } = key ? where(key) : where(node);
        diags.push(diag('DF004', 'keys must be plain strings', file, line, col));
        continue;
      }
      if (
        isScalar(pair.value) &&
        typeof pair.value.value === 'number' &&
        Number.isInteger(pair.value.value) &&
        !Number.isSafeInteger(pair.value.value)
      ) {
        const { line, col } = where(pair.value);
        diags.push(
          diag(
            'DF008',
            `${String(pair.value.source ?? pair.value.value)} is too large to be held exactly; quote it as a string`,
            file,
            line,
            col,
          ),
        );
      }
      if (key.value === '<<') {
        const { line, col } = where(key);
        diags.push(diag('DF004', 'merge keys (<<) are not supported; write the keys out', file, line, col));
      } else if (FORBIDDEN_KEYS.has(String(key.value))) {
        const { line, col } = where(key);
        diags.push(diag('DF004', `key \`${String(key.value)}\` is not allowed`, file, line, col));
      }
      checkTree(pair.value as Node | null, depth + 1, file, at, diags);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      if (isScalar(item) && typeof item.value === 'number' && Number.isInteger(item.value) && !Number.isSafeInteger(item.value)) {
        const { line, col } = where(item);
        diags.push(
          diag('DF008', `${String(item.source ?? item.value)} is too large to be held exactly; quote it as a string`, file, line, col),
        );
      }
      checkTree(item as Node | null, depth + 1, file, at, diags);
    }
  }
}

function diag(code: string, message: string, file: string, line: number, col: number): Diagnostic {
  return { code, severity: 'error', message, file, line, col };
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
