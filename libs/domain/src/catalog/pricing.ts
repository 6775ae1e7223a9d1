/**
 * Prices and caps: the one place that says what a generation costs and how many images a batch may
 * hold under a catalog version. The decider (recording usage) and the entitlement check (asking
 * before spending) both call these; each keeps the name of its own input field in its errors.
 */
import type { Rejection } from '../contracts';
import { type CatalogVersion, type FeaturePrice, type Limits, type Medium, type Pool } from './catalog';

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** Zero in every pool: the usage of a period with none, and the limits of nothing. */
export const emptyLimits = (): Limits => ({ ai_image_credits: 0, ai_video_credits: 0, batch_exports: 0 });

/** The pool a medium's credits come from. */
export const poolOfMedium = (medium: Medium): Pool => (medium === 'image' ? 'ai_image_credits' : 'ai_video_credits');

/** True when `n` is an integer >= 1 (generations, images). */
export const isPositiveInt = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1;

/** True when the version prices the feature. */
export const pricesFeature = (cv: CatalogVersion, feature: string): boolean => hasOwn(cv.features, feature);

/** The price of a feature under a version, or the rejection naming field `feature`, rule `known_feature`. */
export function featurePrice(cv: CatalogVersion, feature: string): { ok: true; price: FeaturePrice; pool: Pool } | { ok: false; rejection: Rejection } {
  const price = pricesFeature(cv, feature) ? cv.features[feature] : undefined;
  if (!price)
    return { ok: false, rejection: { field: 'feature', rule: 'known_feature', message: `unknown feature "${feature}" (catalog version ${cv.version} lists: ${Object.keys(cv.features).join(', ')})` } };
  return { ok: true, price, pool: poolOfMedium(price.medium) };
}

/** Credits `generations` of a feature cost. */
export const creditsFor = (price: FeaturePrice, generations: number): number => price.credits * generations;

/** True when the version knows the platform and a batch of `images` fits its cap. */
export const batchFits = (cv: CatalogVersion, platform: string, images: number): boolean => hasOwn(cv.perBatchCap, platform) && images <= cv.perBatchCap[platform];

/** A platform's per-batch cap under a version, or the rejection naming field `platform`, rule `known_platform`. */
export function batchCap(cv: CatalogVersion, platform: string): { ok: true; cap: number } | { ok: false; rejection: Rejection } {
  if (!hasOwn(cv.perBatchCap, platform))
    return { ok: false, rejection: { field: 'platform', rule: 'known_platform', message: `unknown platform "${platform}" (known: ${Object.keys(cv.perBatchCap).join(', ')})` } };
  return { ok: true, cap: cv.perBatchCap[platform] };
}
