/** `datafix demo`: the shipped fixes on sample data, phase by phase, as a user would run them. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSpecFile } from '../api.js';
import { createVeo3Database } from '../demo/sqlite-sample.js';
import { plainReporter } from './progress.js';

const FIXES = new URL('../../fixes/', import.meta.url);

const PHASES = [
  { title: 'dry run: shows each proposed change, writes nothing', dryRun: true },
  { title: 'live run: makes exactly those changes', dryRun: false },
  { title: 'rerun: nothing left to do', dryRun: false },
] as const;

export async function runDemo(o: { out: NodeJS.WritableStream; err: NodeJS.WritableStream; keep: boolean }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'datafix-demo-'));
  try {
    const dbPath = join(dir, 'veo3-automation.db');
    createVeo3Database(dbPath);
    const spec = fileURLToPath(new URL('sync-media-generation-ids.yaml', FIXES));
    o.out.write(`\n=== SQLite: fixes/sync-media-generation-ids.yaml on a sample database (${dbPath})\n`);
    for (const phase of PHASES) {
      o.out.write(`\n--- ${phase.title}\n`);
      const reporter = plainReporter({ specFile: 'fixes/sync-media-generation-ids.yaml', dryRun: phase.dryRun, verbose: false, out: o.out, err: o.out });
      const { summary } = await runSpecFile(spec, {
        dryRun: phase.dryRun,
        compile: { env: { ...process.env, VEO3_DB_PATH: dbPath } },
        onPlan: (p) => reporter.onPlan(p),
        onConnected: (t) => reporter.onConnected(t),
        onEvent: (e) => reporter.onEvent(e),
      });
      await reporter.end({ summary });
    }
    o.out.write('\nThe row gen-008 holds truncated JSON: it fails with reason invalid_json on every run, and a live run exits 1 so that it gets looked at.\n');
  } finally {
    if (o.keep) o.out.write(`\nsample data kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
