/** Turns the benchmark's results into the Markdown tables printed and written to docs/performance.md. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const START = '<!-- bench:start -->';
export const END = '<!-- bench:end -->';

const s = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const mib = (kb) => `${Math.round(kb / 1024)} MiB`;
const x = (r) => `${r.toFixed(2)}×`;
const n = (v) => v.toLocaleString('en-US');
const best = (runs) => runs.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
const peakRss = (runs) => Math.max(...runs.map((r) => r.maxRssKb));

function verdict(ok, aimOk) {
  if (aimOk === undefined) return ok ? 'yes' : '**no**';
  if (ok && aimOk) return 'yes (aim too)';
  if (ok) return 'yes (aim: **no**)';
  return '**no**';
}

function sqliteLabel(rows) {
  return rows >= 1_000_000 ? `${rows / 1_000_000}M` : `${rows / 1000}k`;
}

/** Derived numbers: what the targets are checked against. */
export function summarize(results) {
  const out = { sqlite: [], dynamo: undefined, coldStart: results.coldStart };
  for (const r of results.sqlite ?? []) {
    const d = best(r.runs.datafix);
    const b = best(r.runs.baseline);
    out.sqlite.push({
      rows: r.rows,
      fs: r.fs,
      rounds: r.runs.datafix.length,
      datafixMs: d.wallMs,
      baselineMs: b.wallMs,
      ratio: d.wallMs / b.wallMs,
      datafixCpuMs: d.cpuMs,
      baselineCpuMs: b.cpuMs,
      datafixProcessMs: Math.min(...r.runs.datafix.map((v) => v.processMs)),
      baselineProcessMs: Math.min(...r.runs.baseline.map((v) => v.processMs)),
      datafixRssKb: peakRss(r.runs.datafix),
      baselineRssKb: peakRss(r.runs.baseline),
      cli: r.cli,
      verified: r.verification.ok && (r.cli ? r.cli.verification.ok : true),
      expected: r.expected,
      generateMs: r.generateMs,
      fileMiB: r.fileMiB,
    });
  }
  if (results.dynamo) {
    const { sides, expected } = results.dynamo;
    const d = sides.datafix;
    const pages = d.requests.Query ?? 0;
    out.dynamo = {
      ...results.dynamo,
      speedup: sides.seed.wallMs / d.wallMs,
      perUpdated: d.totalRequests / expected.updated,
      perUpdatedWithoutPages: (d.totalRequests - pages) / expected.updated,
      seedPerUpdated: sides.seed.totalRequests / expected.updated,
      seedPerUpdatedWithoutPages: (sides.seed.totalRequests - (sides.seed.requests.Query ?? 0)) / expected.updated,
    };
  }
  return out;
}

/** The Markdown for the marked section of docs/performance.md (and the console). */
export function renderMarkdown(summary, meta) {
  const lines = [];
  const m = meta.machine;
  lines.push(
    `Last full run: ${m.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node} (${m.os}); ` +
      `mode \`${meta.mode}\`, whole benchmark ${s(meta.totalMs)}. SQLite files on ${meta.diskFs}.`,
  );
  lines.push('');
  lines.push('| Target | datafix | reference | result | target (aim) | holds |');
  lines.push('|---|---|---|---|---|---|');
  const main = summary.sqlite.find((r) => r.fs === 'disk' && r.rows === meta.primaryRows) ?? summary.sqlite[0];
  if (main) {
    lines.push(
      `| SQLite sync, ${sqliteLabel(main.rows)} rows, wall (library, best of ${main.rounds}) | ${s(main.datafixMs)} | ${s(main.baselineMs)} hand-written | ${x(main.ratio)} | ≤ 1.5× (≤ 1.2×) | ${verdict(main.ratio <= 1.5, main.ratio <= 1.2)} |`,
    );
  }
  const dy = summary.dynamo;
  if (dy) {
    lines.push(
      `| DynamoDB i2v, ${n(dy.videos)} videos @ ${dy.latencyMs} ms, wall | ${s(dy.sides.datafix.wallMs)} | ${s(dy.sides.seed.wallMs)} seed's algorithm | ${dy.speedup.toFixed(1)}× faster | ≥ 3× (≥ 10×) | ${verdict(dy.speedup >= 3, dy.speedup >= 10)} |`,
    );
    lines.push(
      `| DynamoDB requests per updated record (all / without Query pages) | ${dy.perUpdated.toFixed(3)} / ${dy.perUpdatedWithoutPages.toFixed(3)} | ${dy.seedPerUpdated.toFixed(2)} / ${dy.seedPerUpdatedWithoutPages.toFixed(2)} seed | ${n(dy.sides.datafix.totalRequests)} requests for ${n(dy.expected.updated)} updates | ≤ 1.1 (aim) | ${verdict(dy.perUpdated <= 1.1)} |`,
    );
  }
  const small = summary.sqlite.find((r) => r.fs === 'disk' && r.rows === meta.primaryRows);
  const large = summary.sqlite.find((r) => r.fs === 'disk' && r.rows > meta.primaryRows);
  if (small && large) {
    const r = large.datafixRssKb / small.datafixRssKb;
    lines.push(
      `| datafix peak RSS, ${sqliteLabel(large.rows)} vs ${sqliteLabel(small.rows)} SQLite rows | ${mib(large.datafixRssKb)} vs ${mib(small.datafixRssKb)} | hand-written: ${mib(large.baselineRssKb)} vs ${mib(small.baselineRssKb)} | ${x(r)} | ≤ 1.2× (aim) | ${verdict(r <= 1.2)} |`,
    );
  }
  const cs = summary.coldStart;
  if (cs) {
    lines.push(
      `| \`datafix --help\` cold start (median of ${cs.runs}) | ${Math.round(cs.medianMs)} ms | \`node -e 0\`: ${Math.round(cs.nodeMedianMs)} ms | +${Math.round(cs.medianMs - cs.nodeMedianMs)} ms over bare Node | < 150 ms (aim) | ${verdict(cs.medianMs < 150)} |`,
    );
  }
  lines.push('');

  if (summary.sqlite.length) {
    lines.push(
      'SQLite, `fixes/sync-media-generation-ids.yaml` vs the hand-written better-sqlite3 script (best wall of N alternating rounds; peak RSS is the highest of the rounds):',
    );
    lines.push('');
    lines.push(
      '| Rows (selected / updated) | storage | datafix wall | hand-written wall | ratio | CPU (user+sys) datafix / hand-written | datafix CLI (whole process) | CLI / hand-written process | peak RSS datafix / CLI / hand-written | same end state |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of summary.sqlite) {
      const cli = r.cli
        ? [
            `${s(r.cli.processMs)}`,
            x(r.cli.processMs / r.baselineProcessMs),
            `${mib(r.datafixRssKb)} / ${mib(r.cli.maxRssKb)} / ${mib(r.baselineRssKb)}`,
          ]
        : ['–', '–', `${mib(r.datafixRssKb)} / – / ${mib(r.baselineRssKb)}`];
      lines.push(
        `| ${n(r.rows)} (${n(r.expected.selected)} / ${n(r.expected.updated)}) | ${r.fs === 'disk' ? meta.diskFs : 'tmpfs (RAM)'} | ${s(r.datafixMs)} | ${s(r.baselineMs)} | ${x(r.ratio)} | ${s(r.datafixCpuMs)} / ${s(r.baselineCpuMs)} | ${cli[0]} | ${cli[1]} | ${cli[2]} | ${r.verified ? 'yes' : '**NO**'} |`,
      );
    }
    lines.push('');
  }
  if (dy) {
    const d = dy.sides.datafix;
    const sd = dy.sides.seed;
    lines.push(
      `DynamoDB, \`fixes/i2v-thumbnails.yaml\` vs the seed's algorithm: ${n(dy.videos)} videos (${n(dy.items)} items with jobs and source images; ${n(dy.expected.updated)} updated, ${n(dy.expected.skipped)} skipped), in-process dynalite behind a proxy adding ${dy.latencyMs} ms per request, concurrency 10 on both sides, a fresh table for every run; the seed's algorithm ran once, datafix ${dy.datafixWallMs.length} times and the median counts (all: ${dy.datafixWallMs.map(s).join(', ')}):`,
    );
    lines.push('');
    lines.push(
      '| Side | wall | requests (by operation) | requests / updated | peak in flight | peak RSS | dynalite busy | same thumbnails |',
    );
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const [name, r] of [
      ['datafix', d],
      ["seed's algorithm", sd],
    ]) {
      const ops = Object.entries(r.requests)
        .map(([k, v]) => `${k} ${n(v)}`)
        .join(', ');
      lines.push(
        `| ${name} | ${s(r.wallMs)} | ${n(r.totalRequests)} (${ops}) | ${(r.totalRequests / dy.expected.updated).toFixed(3)} | ${r.peakInFlight} | ${mib(r.maxRssKb)} | ${Math.round(r.serverBusy * 100)}% | ${dy.verification.ok ? 'yes' : '**NO**'} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

/**
 * Replaces the marked section of `file`: the lines between a line that is exactly START and a
 * line that is exactly END (markers quoted inside prose do not count). Appends one if missing.
 */
export function writeMarkedSection(file, markdown) {
  const block = `${START}\n${markdown.trim()}\n${END}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Performance\n';
  const lines = text.split('\n');
  const a = lines.findIndex((l) => l.trim() === START);
  const b = a >= 0 ? lines.findIndex((l, i) => i > a && l.trim() === END) : -1;
  const next = a >= 0 && b > a ? [...lines.slice(0, a), block, ...lines.slice(b + 1)].join('\n') : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
