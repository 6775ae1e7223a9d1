import { SubscriptionsFirst, type SubscriptionsFirstOptions } from './subscriptions-first';

/** A clock the test moves; each ask of the lag takes `askMs` and answers the next scripted lag (the last one repeats). */
function harness(lags: (number | null | Error)[], over: Partial<SubscriptionsFirstOptions> = {}, askMs = 5) {
  let t = 1_000_000;
  const asked: number[] = [];
  const gate = new SubscriptionsFirst({
    maxWaitMs: 1000,
    now: () => t,
    lag: async () => {
      asked.push(t);
      await Promise.resolve();
      t += askMs;
      const next = lags.length > 1 ? lags.shift()! : lags[0];
      if (next instanceof Error) throw next;
      return next;
    },
    ...over,
  });
  return { gate, asked, now: () => t, advance: (ms: number) => (t += ms) };
}

describe('SubscriptionsFirst', () => {
  it('is off with a bound of 0: no ask', async () => {
    const h = harness([5], { maxWaitMs: 0 });
    expect(await h.gate.check('b', h.now())).toBe('off');
    expect(h.gate.asks).toBe(0);
  });

  it('lets a batch through when the subscription topic has no lag; a batch produced before that ask needs no other', async () => {
    const h = harness([0]);
    const t0 = h.now();
    expect(await h.gate.check('b1', t0 - 10)).toBe('caught-up');
    expect(h.gate.asks).toBe(1);
    expect(await h.gate.check('b2', t0 - 1)).toBe('caught-up');
    expect(h.gate.asks).toBe(1);
    // produced after that ask started: asks again
    h.advance(100);
    expect(await h.gate.check('b3', h.now())).toBe('caught-up');
    expect(h.gate.asks).toBe(2);
  });

  it('hands a batch back while the topic has lag, and lets it through on a delivery after the lag is gone', async () => {
    const h = harness([120, 40, 0]);
    const produced = h.now();
    expect(await h.gate.check('b', produced)).toBe('not-yet');
    h.advance(200);
    expect(await h.gate.check('b', produced)).toBe('not-yet');
    h.advance(200);
    expect(await h.gate.check('b', produced)).toBe('caught-up');
    expect(h.gate.asks).toBe(3);
  });

  it('lets a batch through after maxWaitMs from its first delivery when the topic keeps its lag (or cannot be asked)', async () => {
    for (const stuck of [7, null, new Error('broker down')]) {
      const h = harness([stuck]);
      const produced = h.now();
      expect(await h.gate.check('b', produced)).toBe('not-yet');
      h.advance(990);
      expect(await h.gate.check('b', produced)).toBe('expired');
      // another batch starts its own count
      expect(await h.gate.check('other', h.now())).toBe('not-yet');
      // the expired one starts again should it come back
      expect(await h.gate.check('b', produced)).toBe('not-yet');
    }
  });

  it('a producer clock ahead of ours: the batch needs an ask after its arrival, not after its timestamp', async () => {
    const h = harness([0]);
    expect(await h.gate.check('b', h.now() + 60_000)).toBe('caught-up');
    expect(h.gate.asks).toBe(1);
  });

  it('batches checked at once share the ask in flight when it started late enough', async () => {
    let release: (lag: number) => void = () => undefined;
    let asks = 0;
    let t = 5_000;
    const gate = new SubscriptionsFirst({
      maxWaitMs: 1000,
      now: () => t,
      lag: () => {
        asks++;
        return new Promise<number>((r) => (release = r));
      },
    });
    const first = gate.check('b1', t - 1);
    const second = gate.check('b2', t - 1);
    await Promise.resolve();
    release(0);
    expect(await Promise.all([first, second])).toEqual(['caught-up', 'caught-up']);
    expect(asks).toBe(1);
    // a batch produced after the shared ask started needs a new one
    t += 10;
    const third = gate.check('b3', t);
    await Promise.resolve();
    release(0);
    expect(await third).toBe('caught-up');
    expect(asks).toBe(2);
  });
});
