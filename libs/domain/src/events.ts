/**
 * Events stored in a Space's stream (`space-<spaceId>`). Instants are ISO-8601 strings.
 * Each carries everything needed to fold it without the catalog: the price and catalog version
 * used, the period it counted in, the limits in force. History is never recomputed.
 */
import type { Cycle, Limits, Medium, Plan, Pool } from './catalog/catalog';
import type { ResetFamily } from './period';

export interface SubscriptionChangedData {
  spaceId: string;
  sourceEventId: string;
  plan: Plan;
  cycle: Cycle;
  effectiveAt: string;
  /** Limits in force from effectiveAt (catalog snapshot, or the enterprise custom limits). */
  limits: Limits;
  customLimits: Limits | null;
  catalogVersion: number;
  /** Instant the reset periods are counted from. Kept on upgrades; moved to effectiveAt on a cycle change. */
  anchorAt: string;
  resetFamily: ResetFamily;
  /** true when this change started a new period (cycle change, leaving or joining free). */
  reanchored: boolean;
  previous: { plan: Plan; cycle: Cycle } | null;
  /**
   * When it was decided. A change decided before its effectiveAt is pending until the scheduler
   * activates it (SubscriptionActivated), which re-evaluates the thresholds under its limits.
   */
  decidedAt?: string;
  /**
   * How the change moved usage between periods: signed per-period amounts, for the uses inside
   * the corrections window whose period changed. Absent on events written before moves were
   * recorded (read models attribute those by folding the Space's stream once).
   */
  moves?: PeriodMove[];
  /**
   * The same moves per member and feature (the usage breakdown's side of `moves`): for each
   * (period left, period joined, userId, feature), the usage that moved, signed positive. Only
   * for uses whose member the decision knew (uses recorded since members were kept in the Space
   * state); absent when no such use moved, when more than `MEMBER_MOVES_MAX` would be recorded
   * (the breakdown then keeps those uses in their recorded periods), and on events written before
   * it was recorded.
   */
  memberMoves?: MemberMove[];
  /**
   * true on every change decided since the carry rule (issue 13): a change of reset family in the
   * middle of a period keeps that period's usage (`firstPeriodStart` in timeline.ts). Absent on
   * older events, which keep the meaning they were recorded with (a fresh period at effectiveAt).
   */
  keepsUsage?: true;
  /**
   * The start (ISO) of the period that a change back-dated beyond the corrections window (no
   * `keepsUsage`) leaves as the first one a decision can still read, when what was recorded under
   * that start before the change belongs to something else: a settled period that began at the same
   * instant, or thresholds of a period an earlier change re-keyed (periods are kept by start). Every
   * reader clears that record (usage, thresholds fired, breakdown rows) before the change's moves
   * (`clearsSettledPeriod` in decide-subscription.ts). Absent when that period starts where the one
   * containing the window's start began before the change (nothing to clear), on changes inside the
   * window, and on events written before the rule.
   */
  clearsPeriod?: string;
}

/** Usage of one member and feature that a subscription change moved from one period to another. */
export interface MemberMove {
  /** Start of the period the usage left. */
  from: string;
  /** Start of the period it joined. */
  to: string;
  userId: string;
  /** The AI feature, or `batch_export` for a batch export (BATCH_EXPORT_FEATURE). */
  feature: string;
  /** Amounts per pool that moved (each >= 0). */
  used: Limits;
  /** Usage events that moved (> 0). */
  usageEvents: number;
}

/** A signed change to one period's usage, recorded by the decision that caused it. */
export interface PeriodMove {
  periodStart: string;
  /** The period's end after the change; absent when the move only takes usage out of it. */
  periodEnd?: string | null;
  /** Signed amounts per pool. */
  used: Limits;
  /** Signed count of usage events. */
  usageEvents: number;
}

export interface SubscriptionActivatedData {
  spaceId: string;
  /** The subscription change that took effect. */
  sourceEventId: string;
  effectiveAt: string;
}

export interface GenerationRecordedData {
  spaceId: string;
  sourceEventId: string;
  userId: string;
  feature: string;
  medium: Medium;
  generations: number;
  occurredAt: string;
  batchId: string | null;
  platform: string | null;
  pool: Pool;
  unitCost: number;
  credits: number;
  catalogVersion: number;
  periodStart: string;
  periodEnd: string | null;
}

export interface BatchExportRecordedData {
  spaceId: string;
  sourceEventId: string;
  userId: string;
  batchId: string;
  images: number;
  platform: string;
  occurredAt: string;
  catalogVersion: number;
  periodStart: string;
  periodEnd: string | null;
}

export interface PeriodResetData {
  spaceId: string;
  /** The new period. */
  periodStart: string;
  periodEnd: string | null;
  previousPeriodStart: string;
  plan: Plan;
  cycle: Cycle;
  limits: Limits;
  /**
   * How many reset boundaries this event covers (1 normally; more after a catch-up, when one
   * event stands for every boundary from `firstBoundary` to `periodStart`). Absent on older events.
   */
  boundariesCovered?: number;
  /** The earliest boundary covered. */
  firstBoundary?: string;
}

export interface ThresholdCrossedData {
  spaceId: string;
  pool: Pool;
  /** Percent of the limit: 80 or 100 by default. */
  threshold: number;
  periodStart: string;
  periodEnd: string | null;
  used: number;
  limit: number;
  /** The inbound event (usage or subscription change) that crossed it. */
  causationId: string;
  occurredAt: string;
}

export interface ThresholdRearmedData {
  spaceId: string;
  pool: Pool;
  threshold: number;
  periodStart: string;
  used: number;
  limit: number;
  causationId: string;
}

export type SpaceEvent =
  | { type: 'SubscriptionChanged'; data: SubscriptionChangedData }
  | { type: 'GenerationRecorded'; data: GenerationRecordedData }
  | { type: 'BatchExportRecorded'; data: BatchExportRecordedData }
  | { type: 'PeriodReset'; data: PeriodResetData }
  | { type: 'ThresholdCrossed'; data: ThresholdCrossedData }
  | { type: 'ThresholdRearmed'; data: ThresholdRearmedData }
  | { type: 'SubscriptionActivated'; data: SubscriptionActivatedData };

export type SpaceEventType = SpaceEvent['type'];

/** A decided event with its deterministic id, ready to append. */
export type IdentifiedSpaceEvent = SpaceEvent & { id: string };

export const SPACE_EVENT_TYPES: readonly SpaceEventType[] = [
  'SubscriptionChanged',
  'GenerationRecorded',
  'BatchExportRecorded',
  'PeriodReset',
  'ThresholdCrossed',
  'ThresholdRearmed',
  'SubscriptionActivated',
];

/** Events the notification service receives. */
export const NOTIFICATION_EVENT_TYPES: readonly SpaceEventType[] = ['ThresholdCrossed', 'PeriodReset'];

export const SPACE_STREAM_PREFIX = 'space-';
export const spaceStreamName = (spaceId: string): string => `${SPACE_STREAM_PREFIX}${spaceId}`;
export const CATALOG_STREAM = 'catalog';
