/**
 * The hand-written best case the SQLite fix is measured against: what a careful engineer would
 * write for this one job with better-sqlite3 and nothing else. Prepared statements, keyset
 * paging on the primary key (rows it updates drop out of the WHERE, so OFFSET would skip rows),
 * one transaction per page of 200 (the fix's own page size), JSON.parse and direct property access, and the same
 * fill-only guard as datafix (`AND media_generation_id IS NULL`).
 *
 * Semantics match fixes/sync-media-generation-ids.yaml exactly: the first non-empty id among
 * top-level → nested, direct shape → raw-wrapped; invalid JSON is a failure; no id is a skip.
 *
 * With `write: false` it is the dry-run baseline: the database opened read-only, the same reads
 * and the same computation, and each row that would be written counted as updated. `mapped`
 * reads it through a memory map of `READ_ONLY_MMAP_BYTES`, as datafix's read-only connection
 * does: the reference for what that setting alone gives.
 */
import Database from 'better-sqlite3';
import { READ_ONLY_MMAP_BYTES } from '../../dist/adapters/sqlite/index.js';

// The fix's source.pageSize: both sides hold the write lock for the same number of rows.
const PAGE = 200;

const present = (v) => v !== undefined && v !== null && v !== '';

function firstOp(container) {
  const ops = container?.operations;
  return Array.isArray(ops) ? ops[0] : undefined;
}

/** The media generation id in one parsed raw_response, or undefined. */
export function mediaGenerationIdOf(parsed) {
  if (parsed === null || typeof parsed !== 'object') return undefined;
  for (const container of [parsed, parsed.raw]) {
    const op = firstOp(container);
    if (op === null || typeof op !== 'object') continue;
    if (present(op.mediaGenerationId)) return op.mediaGenerationId;
    const nested = op.operation?.metadata?.video?.mediaGenerationId;
    if (present(nested)) return nested;
  }
  return undefined;
}

export function runBaseline(path, { now = new Date(), write = true, mapped = false } = {}) {
  const stamp = now.toISOString();
  const db = new Database(path, { fileMustExist: true, readonly: !write });
  if (mapped) db.pragma(`mmap_size = ${READ_ONLY_MMAP_BYTES}`);
  const where = 'raw_response IS NOT NULL AND media_generation_id IS NULL';
  const first = db.prepare(`SELECT id, raw_response FROM veo3_video_generations WHERE ${where} ORDER BY id LIMIT ${PAGE}`);
  const after = db.prepare(`SELECT id, raw_response FROM veo3_video_generations WHERE ${where} AND id > ? ORDER BY id LIMIT ${PAGE}`);
  const update = write
    ? db.prepare('UPDATE veo3_video_generations SET media_generation_id = ?, updated_at = ? WHERE id = ? AND media_generation_id IS NULL')
    : undefined;
  const counts = { total: 0, updated: 0, skipped: 0, failed: 0 };
  const writePage = db.transaction((writes) => {
    for (const [id, mgid] of writes) {
      if (update.run(mgid, stamp, id).changes === 1) counts.updated++;
      else counts.skipped++;
    }
  });
  try {
    let last;
    for (;;) {
      const rows = last === undefined ? first.all() : after.all(last);
      if (rows.length === 0) break;
      const writes = [];
      for (const row of rows) {
        counts.total++;
        let parsed;
        try {
          parsed = JSON.parse(row.raw_response);
        } catch {
          counts.failed++;
          continue;
        }
        const mgid = mediaGenerationIdOf(parsed);
        if (mgid === undefined) counts.skipped++;
        else writes.push([row.id, mgid]);
      }
      if (update) writePage.immediate(writes);
      else counts.updated += writes.length;
      last = rows[rows.length - 1].id;
      if (rows.length < PAGE) break;
    }
  } finally {
    db.close();
  }
  return counts;
}
