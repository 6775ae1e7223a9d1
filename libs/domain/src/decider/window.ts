/**
 * The corrections window, compaction and snapshots of the Space state.
 */
import { POOLS } from '../catalog/catalog';
import { DAY_MS } from '../period';
import { type Segment, periodAt } from '../timeline';
import { type SpaceState, initialSpaceState, sharedText } from './state';

// ---------------------------------------------------------------------------------------------
// The corrections window and compaction

/** Default corrections window: usage may arrive up to 35 days after it occurred. */
export const DEFAULT_CORRECTION_WINDOW_MS = 35 * DAY_MS;
/** Compaction runs when the horizon would move by at least this much (keeps it off the per-event path). */
export const COMPACTION_STEP_MS = 3_600_000;
/**
 * A state keeps at most about this many uses (`trimUses`), whatever the usage inside the window: a
 * snapshot of such a state is about 550 KB (inside KurrentDB's 960 KiB append budget), its heap
 * about 1 MB. A compaction past it keeps the newest half (by occurredAt).
 */
export const USES_KEPT_MAX = 5_000;

/** The earliest occurredAt usage may have at `now`: the later of the window's start and the compacted horizon. */
export function usageCutoff(state: SpaceState, now: number, windowMs = DEFAULT_CORRECTION_WINDOW_MS): number {
  return Math.max(state.horizon, now - windowMs);
}

/**
 * Moves the horizon to `now - windowMs` and drops what nothing can change any more: uses that
 * occurred before it, periods that ended before it and their thresholds. In place; a no-op unless
 * the horizon would move by COMPACTION_STEP_MS (or `force`). First it bounds the uses kept
 * (`trimUses` with `usesKeptMax`: Infinity keeps every use inside the window). Deciding any event
 * that the window accepts gives the same answer before and after, the store answering for what was
 * dropped (`recordedIdsToLookUp`, `olderUsesWanted`).
 */
export function compactSpace(state: SpaceState, now: number, windowMs = DEFAULT_CORRECTION_WINDOW_MS, force = false, usesKeptMax = USES_KEPT_MAX): SpaceState {
  trimUses(state, usesKeptMax);
  const horizon = now - windowMs;
  if (!(horizon > state.horizon) || (!force && horizon - state.horizon < COMPACTION_STEP_MS)) return state;
  state.horizon = horizon;
  const horizonDay = Math.floor(horizon / DAY_MS);
  for (const day of state.droppedRevs.keys()) if (day < horizonDay) state.droppedRevs.delete(day);
  for (const [id, item] of state.recent) if (item.at < horizon) state.recent.delete(id);
  // Every period a decision can still read contains an instant at or after the horizon, so it
  // starts at or after the start of the period containing the horizon under the timeline as it is
  // now. A row's own `end` is not the test: a later change may have extended its period (joining
  // free) without moving any use into it, and such a row is still the running period's usage.
  const keepFrom = periodAt(state.timeline, horizon).start;
  for (const start of state.periods.keys()) if (start < keepFrom) state.periods.delete(start);
  for (const key of state.fired) {
    const start = Number(key.slice(0, key.indexOf('|')));
    if (start < keepFrom) state.fired.delete(key);
  }
  return state;
}

/**
 * Bounds the uses kept: past `max`, the newest half by occurredAt stay (never more than `max`, ties
 * included) and `keptFrom` moves up to the oldest of them; each use dropped leaves its revision in
 * `droppedRevs` (the store answers for it from then on). In place; a no-op under the bound.
 */
export function trimUses(state: SpaceState, max = USES_KEPT_MAX): void {
  if (state.recent.size <= max) return;
  const ats = Float64Array.from(state.recent.values(), (u) => u.at).sort();
  const keep = Math.max(1, Math.floor(max / 2));
  let from = ats[ats.length - keep];
  // Uses sharing that instant all stay or all go: past the bound, they go.
  let kept = keep;
  while (ats.length - kept - 1 >= 0 && ats[ats.length - kept - 1] === from) kept++;
  if (kept > max) from += 1;
  state.keptFrom = Math.max(state.keptFrom, from);
  for (const [id, u] of state.recent) {
    if (u.at >= state.keptFrom) continue;
    state.recent.delete(id);
    const day = Math.floor(u.at / DAY_MS);
    const rev = state.droppedRevs.get(day);
    if (rev === undefined || u.rev < rev) state.droppedRevs.set(day, u.rev);
  }
}

/** Bumped whenever the snapshot layout or the meaning of the state changes: older snapshots are ignored. */
export const SPACE_SNAPSHOT_SCHEMA = 2;

interface SnapshotBody {
  spaceId: string;
  version: number;
  horizon: number | null;
  windowMs: number;
  timeline: Segment[];
  /**
   * [eventId, at, pool index, amount, fingerprint, userId, feature, revision]: userId and feature
   * null or absent in snapshots written before members were kept (such a use has no member:
   * `memberMoves`), the revision absent in those written before revisions were kept (read as 0).
   */
  recent: [string, number, number, number, number, (string | null)?, (string | null)?, number?][];
  /** `keptFrom` (absent or null: nothing dropped). */
  keptFrom?: number | null;
  /** [day, lowest revision] (`droppedRevs`). */
  droppedRevs?: [number, number][];
  /** [eventId, fingerprint] */
  subscriptionIds: [string, number][];
  periods: [number, number | null, number, number, number, number][];
  fired: string[];
  lastResetAt: number | null;
}

/** The state as a snapshot body (JSON), for a state compacted with `windowMs`. */
export function snapshotOfSpace(state: SpaceState, windowMs: number): string {
  const body: SnapshotBody = {
    spaceId: state.spaceId,
    version: state.version,
    horizon: Number.isFinite(state.horizon) ? state.horizon : null,
    windowMs,
    timeline: state.timeline,
    recent: [...state.recent.values()].map((u) => [u.id, u.at, POOLS.indexOf(u.pool), u.amount, u.fp, u.userId ?? null, u.feature ?? null, u.rev]),
    keptFrom: Number.isFinite(state.keptFrom) ? state.keptFrom : null,
    droppedRevs: [...state.droppedRevs],
    subscriptionIds: [...state.subscriptionIds],
    periods: [...state.periods.values()].map((p) => [p.start, p.end, p.used.ai_image_credits, p.used.ai_video_credits, p.used.batch_exports, p.usageEvents]),
    fired: [...state.fired],
    lastResetAt: state.lastResetAt,
  };
  return JSON.stringify(body);
}

/**
 * A state from a snapshot body, or null when the snapshot cannot be trusted: another schema,
 * another Space, or a window narrower than `windowMs` (it lacks uses the wider window keeps).
 */
export function spaceFromSnapshot(spaceId: string, schema: number, json: string, windowMs: number): SpaceState | null {
  if (schema !== SPACE_SNAPSHOT_SCHEMA) return null;
  let b: SnapshotBody;
  try {
    b = JSON.parse(json) as SnapshotBody;
  } catch {
    return null;
  }
  if (!b || b.spaceId !== spaceId || !Number.isInteger(b.version) || b.version < 0 || !(b.windowMs >= windowMs)) return null;
  const s = initialSpaceState(spaceId);
  s.version = b.version;
  s.horizon = b.horizon === null ? Number.NEGATIVE_INFINITY : b.horizon;
  s.timeline = b.timeline;
  for (const [id, at, pool, amount, fp, userId, feature, rev = 0] of b.recent)
    s.recent.set(
      id,
      typeof userId === 'string' && typeof feature === 'string'
        ? { id, at, pool: POOLS[pool], amount, userId: sharedText(userId), feature: sharedText(feature), fp, rev }
        : { id, at, pool: POOLS[pool], amount, fp, rev },
    );
  if (typeof b.keptFrom === 'number') s.keptFrom = b.keptFrom;
  for (const [day, rev] of b.droppedRevs ?? []) s.droppedRevs.set(day, rev);
  for (const [id, fp] of b.subscriptionIds) s.subscriptionIds.set(id, fp);
  for (const [start, end, img, vid, exp, n] of b.periods)
    s.periods.set(start, { start, end, used: { ai_image_credits: img, ai_video_credits: vid, batch_exports: exp }, usageEvents: n });
  for (const k of b.fired) s.fired.add(k);
  s.lastResetAt = b.lastResetAt;
  return s;
}
