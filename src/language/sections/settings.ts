/**
 * The sections that read the environment: `target` and `run`. Only these expand `${VAR}`; every
 * other value in a spec is compared or written as it is written (see `literalValueProblem`).
 */
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import type { RunPlan, TargetPlan } from '../../plan/types.js';
import { type EnvSource, interpolateEnv } from '../env.js';
import type { PathSegment } from '../load.js';
import type { FixSpec } from '../types.js';
import type { CompileScope } from './scope.js';

/** How the environment is read; see `CompileOptions` in ../compile.ts. */
export interface SettingsOptions {
  readonly env?: EnvSource;
  readonly skipEnv?: boolean;
  readonly target?: TargetPlan;
}

const DEFAULT_PAGE = { sqlite: 1000, dynamodb: 100 } as const;

/** Expands `${VAR}` in a settings value (deeply), reporting unset or empty variables as DF301. */
class Interpolator {
  missing = false;
  constructor(
    private readonly scope: CompileScope,
    private readonly options: SettingsOptions,
  ) {}

  expand(value: unknown, path: PathSegment[]): unknown {
    if (this.options.skipEnv) return value;
    if (typeof value === 'string') {
      const r = interpolateEnv(value, this.options.env ?? process.env);
      if (r.missing.length > 0) {
        this.missing = true;
        for (const { name, empty } of r.missing) {
          this.scope.error(
            'DF301',
            path,
            empty
              ? `environment variable ${name} is set but empty; give it a value (\`${name}=\` with nothing after it counts as no value), or a default with \${${name}:-value}`
              : `environment variable ${name} is not set; set it, give a default with \${${name}:-value}, or load it with --env NAME`,
          );
        }
      }
      return r.value;
    }
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.expand(v, [...path, k]);
      return out;
    }
    return value;
  }

  /** A whole number ≥ `min` from a spec or environment value; DF302 (undefined) otherwise. */
  count(value: unknown, path: PathSegment[], min: number): number | undefined {
    if (typeof value === 'number') return value;
    if (this.options.skipEnv && typeof value === 'string' && value.includes('${')) return undefined;
    const text = String(value).trim();
    if (/^[0-9]+$/.test(text) && Number(text) >= min && Number.isSafeInteger(Number(text))) return Number(text);
    this.scope.error('DF302', path, `\`${text}\` (from the environment) is not a whole number ≥ ${min}`);
    return undefined;
  }
}

/**
 * Compiles `target` (or takes `options.target` for fix tests on embedded engines) and `run`.
 * `run` is compiled lazily by the returned function so its diagnostics keep their place after
 * the other sections'.
 */
export function compileSettings(fix: FixSpec, scope: CompileScope, options: SettingsOptions): { target: TargetPlan; run: () => RunPlan } {
  const backend = scope.backend;
  const env = new Interpolator(scope, options);
  let target: TargetPlan;
  if (options.target) {
    if (options.target.backend !== backend) {
      scope.error('DF205', ['target'], `this fix targets ${backend}; it cannot run on ${options.target.backend}`, true);
    }
    target = options.target;
  } else if (backend === 'sqlite') {
    const t = env.expand(fix.target.sqlite, ['target', 'sqlite']) as { path: string; busyTimeoutMs?: unknown };
    const busy = env.count(t.busyTimeoutMs ?? 5000, ['target', 'sqlite', 'busyTimeoutMs'], 0);
    let path = t.path;
    if (path === '~' || path.startsWith('~/')) path = homedir() + path.slice(1);
    if (!options.skipEnv && !env.missing && path.trim() === '')
      scope.error('DF302', ['target', 'sqlite', 'path'], 'database path is empty');
    target = { backend, path: path && !options.skipEnv ? resolve(path) : path, busyTimeoutMs: busy ?? 5000 };
  } else {
    const t = env.expand(fix.target.dynamodb, ['target', 'dynamodb']) as { table: string; region?: string; endpoint?: string };
    if (!options.skipEnv && !env.missing && !t.table) scope.error('DF302', ['target', 'dynamodb', 'table'], 'table name is empty');
    const endpoint = t.endpoint?.trim() ? t.endpoint.trim() : undefined;
    if (endpoint && !options.skipEnv && !isHttpUrl(endpoint)) {
      // Only a bare host[:port] is shown: anything with a scheme, a path or a user part may hide a
      // password where no parser finds it (`http://admin:pw`, `admin:pw%40host`).
      const shown = /^[A-Za-z0-9.-]+(?::[0-9]+)?$/.test(endpoint)
        ? `, got \`${endpoint}\``
        : ' (the value is not shown: it may hold credentials)';
      scope.error('DF302', ['target', 'dynamodb', 'endpoint'], `endpoint must be an http(s) URL such as http://localhost:8000${shown}`);
    }
    target = { backend, table: t.table, region: t.region?.trim() || 'us-east-1', ...(endpoint ? { endpoint } : {}) };
  }

  const run = (): RunPlan => {
    const runSpec = (env.expand(fix.run ?? {}, ['run']) ?? {}) as Record<string, unknown>;
    const readerPageSize = fix.source.pageSize ?? fix.source.query?.pageSize ?? fix.source.scan?.pageSize;
    return {
      concurrency: env.count(runSpec.concurrency ?? 10, ['run', 'concurrency'], 1) ?? 10,
      batchSize: env.count(runSpec.batchSize ?? 1000, ['run', 'batchSize'], 1) ?? 1000,
      pageSize: readerPageSize ?? env.count(runSpec.pageSize ?? DEFAULT_PAGE[backend], ['run', 'pageSize'], 1) ?? DEFAULT_PAGE[backend],
      ...(runSpec.limit !== undefined ? { limit: env.count(runSpec.limit, ['run', 'limit'], 1) ?? 0 } : {}),
    };
  };
  return { target, run };
}

/**
 * Whether `text` is an http(s) URL as the SDK will parse it (WHATWG URL). A value that only looks
 * like one (`http://user:pw/x@host`, a bad port) would be printed wherever the target is shown,
 * where no URL parser could find and strip its credentials.
 */
function isHttpUrl(text: string): boolean {
  if (!/^https?:\/\/[^\s]+$/i.test(text)) return false;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
