import { copyFileSync, rmSync, mkdirSync } from 'node:fs';
import { loadPlan, runSpecFile } from '../dist/index.js';
import { runPlanSafely } from '../dist/safety/session.js';
import { runBaseline } from './lib/sqlite-baseline.js';
const src = process.argv[2];
const fix = new URL('../fixes/sync-media-generation-ids.yaml', import.meta.url).pathname;
const dir = '/dev/shm/lt'; const db = `${dir}/t.db`;
const fresh = () => { rmSync(dir, { recursive: true, force: true }); mkdirSync(dir); copyFileSync(src, db); };
const compile = { env: { ...process.env, VEO3_DB_PATH: db } };
const m = async (f) => { fresh(); const t = performance.now(); const c = process.cpuUsage(); await f(); const d = process.cpuUsage(c); return `${Math.round(performance.now() - t)}/${Math.round((d.user + d.system) / 1000)}`; };
const res = { base: [], engine: [], safe: [] };
for (let i = 0; i < 4; i++) {
  res.base.push(await m(() => runBaseline(db, { write: true })));
  res.engine.push(await m(() => runSpecFile(fix, { dryRun: false, compile })));
  res.safe.push(await m(() => runPlanSafely(loadPlan(fix, compile), { dryRun: false, cwd: dir, specFile: fix })));
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(7), 'wall/cpu', v.join('  '));
