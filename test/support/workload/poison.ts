/**
 * Poison messages of the fault run: each carries a unique token in its bytes and says what its dead
 * letter's errors must mention. Half are drawn from the fuzz test's generators
 * (test/support/fuzz-arbitraries.ts: hostile bytes, valid bodies broken by a wrong JSON type, a
 * prototype-named key or deep nesting), half are named cases.
 */
import { type InboundKind, applyMutation, certainPoison, drawWith, hostileText, toJson } from '../fuzz-arbitraries';
import { bodyOf, generationPerformed, batchExported, subscriptionChanged } from './events';
import type { Draw } from './random';

export type TopicKind = 'sub' | 'gen' | 'batch';

export interface OutMsg {
  topic: TopicKind;
  key: string;
  value: string;
  /** Set on poison messages: the token in its bytes and what its dead letter's errors must mention. */
  poison?: { token: string; kind: string; expect: string };
}

type Case = [string, () => { key?: string; value: string; expect: string }];

/** One poison message for `topic`, keyed by `spaceId` unless the case breaks the key. */
export function poisonMessage(d: Draw, topic: TopicKind, token: string, spaceId: string, now: number): OutMsg {
  const r = d.rand;
  const base0 = { eventId: token, spaceId, userId: 'u', occurredAt: now };
  const gen = bodyOf(generationPerformed(base0, { feature: 'ai_shadows', medium: 'image', generations: 1 }));
  const batch = bodyOf(batchExported(base0, { batchId: 'b', images: 3, platform: 'web' }));
  const sub = bodyOf(subscriptionChanged({ eventId: token, spaceId, plan: 'pro', cycle: 'monthly', effectiveAt: now }));
  const base = topic === 'gen' ? gen : topic === 'batch' ? batch : sub;
  const inbound: InboundKind = topic === 'gen' ? 'generation-performed' : topic === 'batch' ? 'batch-exported' : 'subscription-changed';
  const kinds: Case[] = [
    ['not-json', () => ({ value: `{"eventId": "${token}", broken`, expect: '"json"' })],
    ['fuzz-bytes', () => ({ value: `${token} ${drawWith(hostileText, r)}`, expect: '"json"' })],
    [
      'fuzz-mutation',
      () => {
        const p = drawWith(certainPoison(inbound), r);
        return { value: toJson(applyMutation(base, p.mutation)), expect: JSON.stringify(p.expect).slice(1, -1) };
      },
    ],
    ['key-not-spaceId', () => ({ key: `${spaceId}-other`, value: JSON.stringify(base), expect: 'key_is_spaceId' })],
    ['missing-spaceId', () => ({ value: JSON.stringify({ ...base, spaceId: undefined }), expect: 'spaceId' })],
    ['wrong-type-eventId', () => ({ value: JSON.stringify({ ...base, eventId: 12345 }).replace('{', `{"_t":"${token}",`), expect: 'eventId' })],
    ...(topic === 'gen'
      ? ([
          ['unknown-feature', () => ({ value: JSON.stringify({ ...gen, feature: 'ai_teleport' }), expect: 'feature' })],
          ['wrong-type-generations', () => ({ value: JSON.stringify({ ...gen, generations: 'two' }), expect: 'generations' })],
          ['medium-mismatch', () => ({ value: JSON.stringify({ ...gen, feature: 'ai_video', medium: 'image' }), expect: 'medium' })],
          ['missing-userId', () => ({ value: JSON.stringify({ ...gen, userId: undefined }), expect: 'userId' })],
        ] as Case[])
      : topic === 'batch'
        ? ([
            ['over-cap', () => ({ value: JSON.stringify({ ...batch, images: 101 }), expect: 'per_batch_cap' })],
            ['bad-instant', () => ({ value: JSON.stringify({ ...batch, occurredAt: 'yesterday' }), expect: 'occurredAt' })],
          ] as Case[])
        : ([
            ['plan-cycle-missing', () => ({ value: JSON.stringify({ ...sub, plan: 'ultra', cycle: 'weekly' }), expect: 'plan_cycle_exists' })],
            ['enterprise-without-limits', () => ({ value: JSON.stringify({ ...sub, plan: 'enterprise' }), expect: 'customLimits' })],
          ] as Case[])),
  ];
  // Half the poison comes from the fuzz generators, half from the named cases above.
  const fuzz = kinds.filter(([k]) => k.startsWith('fuzz-'));
  const named = kinds.filter(([k]) => !k.startsWith('fuzz-'));
  const [kind, make] = d.pick(r() < 0.5 ? fuzz : named);
  const m = make();
  return { topic, key: m.key ?? spaceId, value: m.value, poison: { token, kind, expect: m.expect } };
}
