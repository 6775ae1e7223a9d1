import { backoffDelay } from './backoff';

describe('backoffDelay', () => {
  const noJitter = () => 0;

  it('grows by the factor from the initial delay up to the cap', () => {
    const retry = { initialDelayMs: 100, factor: 2, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5, 6, 100].map((a) => backoffDelay(a, retry, noJitter))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('takes at most 20 % off as jitter', () => {
    expect(backoffDelay(1, { initialDelayMs: 1000 }, () => 0.999999)).toBe(800);
    expect(backoffDelay(1, { initialDelayMs: 1000 }, () => 0.5)).toBe(900);
  });

  it('has sane defaults and clamps nonsense', () => {
    expect(backoffDelay(1, {}, noJitter)).toBe(200);
    expect(backoffDelay(50, {}, noJitter)).toBe(30_000);
    expect(backoffDelay(0, { initialDelayMs: -5, factor: 0.5 }, noJitter)).toBe(1);
    expect(backoffDelay(3, { initialDelayMs: 500, maxDelayMs: 10 }, noJitter)).toBe(500);
  });
});
