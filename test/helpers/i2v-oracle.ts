/**
 * The i2v fix's test data and an oracle of its rules (FACTS.md), written independently of the
 * engine: what every item must look like after a run, whatever faults the run went through.
 */
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { expect } from 'vitest';
import { rawClient } from './dynalite.js';

export type Item = Record<string, unknown>;

/** Nine kinds of video, cycled: every skip reason, partial fills, and values that must copy intact. */
export function i2vDataset(videos: number): Item[] {
  const items: Item[] = [];
  const thumbs = (id: string) => ({
    thumbnailUrl: `https://cdn.example.com/${id}/t.jpg`,
    thumbnailUrls: {
      small: `https://cdn.example.com/${id}/s.jpg`,
      '1080': `https://cdn.example.com/${id}/l.jpg`,
      dims: [320, 1080],
      ratio: 1.7778,
    },
  });
  for (let i = 0; i < videos; i++) {
    const id = `v${String(i).padStart(4, '0')}`;
    const createdAt = new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString();
    const video: Item = {
      PK: `MEDIA#${id}`,
      SK: 'METADATA',
      id,
      type: 'video',
      createdAt,
      updatedAt: createdAt,
      GSI8PK: 'MEDIA_BY_TYPE_AND_CREATOR',
      GSI8SK: `video#${createdAt}#${id}`,
    };
    const img = `i${id}`;
    const kind = i % 9;
    if (kind === 1) video.thumbnailUrl = `https://own.example.com/${id}.jpg`;
    if (kind === 2) video.thumbnailUrls = { small: `https://own.example.com/${id}-s.jpg` };
    if (kind === 3) Object.assign(video, thumbs(id));
    items.push(video);
    if (kind === 4) continue; // no job
    items.push({ PK: `I2VJOB#${id}`, SK: 'METADATA', jobId: id, mediaId: img });
    if (kind === 5) continue; // job points at a missing image
    const source: Item = {
      PK: `MEDIA#${img}`,
      SK: 'METADATA',
      id: img,
      type: 'image',
      GSI8PK: 'MEDIA_BY_TYPE_AND_CREATOR',
      GSI8SK: `image#${createdAt}#${img}`,
    };
    if (kind === 7) source.thumbnailUrl = thumbs(img).thumbnailUrl;
    else if (kind === 8) source.thumbnailUrls = thumbs(img).thumbnailUrls;
    else if (kind !== 6) Object.assign(source, thumbs(img));
    items.push(source);
  }
  return items;
}

const present = (v: unknown) => v !== undefined && v !== null && v !== '';

/** The fix's rules, independent of the engine: the skip reason, or the fields to fill. */
export function expectedFor(video: Item, byKey: Map<string, Item>): { reason: string } | { fill: Item } {
  if (present(video.thumbnailUrl) && present(video.thumbnailUrls)) return { reason: 'already_has_thumbnails' };
  const job = byKey.get(`I2VJOB#${video.id}`);
  if (!job) return { reason: 'no_i2v_job_found' };
  const source = byKey.get(`MEDIA#${job.mediaId}`);
  if (!source) return { reason: 'source_media_not_found' };
  if (!present(source.thumbnailUrl) && !present(source.thumbnailUrls)) return { reason: 'source_has_no_thumbnails' };
  const fill: Item = {};
  for (const f of ['thumbnailUrl', 'thumbnailUrls']) {
    if (video[f] === undefined && present(source[f])) fill[f] = source[f];
  }
  return Object.keys(fill).length ? { fill } : { reason: 'no_change' };
}

/** The oracle's summary counts for a seeded table. */
export function oracleCounts(before: readonly Item[]): { total: number; updated: number; reasons: Record<string, number> } {
  const byKey = new Map(before.map((i) => [String(i.PK), i]));
  const reasons: Record<string, number> = {};
  let updated = 0;
  let total = 0;
  for (const v of before) {
    if (v.type !== 'video') continue;
    total++;
    const e = expectedFor(v, byKey);
    if ('reason' in e) reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
    else updated++;
  }
  return { total, updated, reasons };
}

/**
 * Every item ends exactly as the oracle says: skipped ones untouched, updated ones with exactly
 * the filled fields and a new timestamp, one per run. `runs` (default 1) is how many processes
 * wrote the table (a run killed and resumed twice is three): no more timestamps than that.
 * Returns the number of updated items.
 */
export function expectOracleState(before: readonly Item[], after: readonly Item[], options: { runs?: number } = {}): number {
  const byKey = new Map(before.map((i) => [String(i.PK), i]));
  expect(after).toHaveLength(before.length);
  const stamps = new Set<string>();
  let updated = 0;
  for (const item of after) {
    const old = byKey.get(String(item.PK)) as Item;
    expect(old, `${String(item.PK)} was not seeded`).toBeDefined();
    const e = item.type === 'video' ? expectedFor(old, byKey) : { reason: 'not a video' };
    if ('reason' in e) {
      expect(item, `${String(item.PK)} (${e.reason}) must be untouched`).toEqual(old);
      continue;
    }
    const { updatedAt, ...rest } = item;
    const { updatedAt: oldUpdatedAt, ...oldRest } = old;
    expect(rest, String(item.PK)).toEqual({ ...oldRest, ...e.fill });
    expect(updatedAt).not.toBe(oldUpdatedAt);
    stamps.add(String(updatedAt));
    updated++;
  }
  // One timestamp per run.
  expect(stamps.size).toBeLessThanOrEqual(options.runs ?? 1);
  return updated;
}

export async function scanAll(endpoint: string, table: string): Promise<Item[]> {
  const client = rawClient(endpoint);
  const out: Item[] = [];
  try {
    let start: Record<string, never> | undefined;
    do {
      const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
      out.push(...(page.Items ?? []).map((i) => unmarshall(i)));
      start = page.LastEvaluatedKey as typeof start;
    } while (start);
  } finally {
    client.destroy();
  }
  return out.sort((a, b) => String(a.PK).localeCompare(String(b.PK)));
}
