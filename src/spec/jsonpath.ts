/**
 * JSONPath is limited to navigation: `$`, `.name`, `['name']`, `[0]`, `[*]`, `..` and slices.
 * Filters `?()` and scripts `()` are refused here, and the engine runs jsonpath-plus with
 * `eval: false` as a second line of defence, so spec text can never become running code.
 */
import { JSONPath } from 'jsonpath-plus';
import { FORBIDDEN_SEGMENTS } from './refs.js';

export interface JsonPathProblem {
  readonly code: 'DF203' | 'DF204';
  readonly message: string;
}

export function checkJsonPath(path: string): JsonPathProblem | undefined {
  if (!path.startsWith('$')) return { code: 'DF203', message: `JSONPath \`${path}\` must start with $` };
  if (/[?()]/.test(path.replace(/\[(['"]).*?\1\]/g, ''))) {
    return {
      code: 'DF204',
      message: `JSONPath \`${path}\` uses a filter or script expression; these are refused because they run code. Use plain paths and skip conditions instead`,
    };
  }
  let depth = 0;
  let quote: string | undefined;
  for (const ch of path) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (depth < 0 || depth > 1) break;
  }
  if (depth !== 0 || quote) return { code: 'DF203', message: `JSONPath \`${path}\` has unbalanced brackets or quotes` };
  for (const seg of JSONPath.toPathArray(path).slice(1)) {
    if (FORBIDDEN_SEGMENTS.has(seg)) return { code: 'DF203', message: `JSONPath \`${path}\`: \`${seg}\` is not allowed` };
    if (/^[~^@$]|^@/.test(seg) || seg.includes('`')) {
      return { code: 'DF203', message: `JSONPath \`${path}\`: \`${seg}\` is not supported; use names, [n], [*] and ..` };
    }
  }
  return undefined;
}
