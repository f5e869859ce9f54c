import { clientNow, ServerClock } from '../src/store-kit';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ServerClock', () => {
  test('keeps server time minus the client time when the answer came: the lowest offset the round trip allows', async () => {
    const clock = new ServerClock();
    expect(clock.offsetMs).toBeNull();
    expect(clock.ageMs()).toBe(Number.POSITIVE_INFINITY);
    let answeredAt = 0;
    const offset = await clock.measure(async () => {
      await sleep(20);
      answeredAt = clientNow();
      return answeredAt + 5_000; // a server 5 s ahead, read just before it answered
    }, 1_000);
    expect(clock.offsetMs).toBe(offset);
    // The answer is taken as read when it arrived: never more than the server's real lead.
    expect(offset).toBeLessThanOrEqual(5_000);
    expect(offset).toBeGreaterThan(4_900);
    expect(clock.ageMs()).toBeGreaterThanOrEqual(0);
    expect(clock.ageMs()).toBeLessThan(1_000);
  });

  test('a measurement over a round trip longer than allowed serves once and is not kept', async () => {
    const clock = new ServerClock();
    const offset = await clock.measure(async () => {
      await sleep(30);
      return clientNow() - 2_000;
    }, 10);
    expect(offset).toBeLessThanOrEqual(-2_000);
    expect(clock.offsetMs).toBeNull();
  });

  test('forget drops the offset, and a measurement that began before forget is not kept', async () => {
    const clock = new ServerClock();
    await clock.measure(async () => clientNow(), 1_000);
    expect(clock.offsetMs).not.toBeNull();
    clock.forget();
    expect(clock.offsetMs).toBeNull();
    const measuring = clock.measure(async () => {
      await sleep(10);
      return clientNow();
    }, 1_000);
    clock.forget();
    await measuring;
    expect(clock.offsetMs).toBeNull();
  });

  test("a reading that is not a number is an error and nothing is kept; the reader's own error passes through", async () => {
    const clock = new ServerClock();
    await expect(clock.measure(async () => Number.NaN, 1_000)).rejects.toThrow('the server did not tell its time');
    await expect(
      clock.measure(async () => {
        throw new Error('no answer');
      }, 1_000),
    ).rejects.toThrow('no answer');
    expect(clock.offsetMs).toBeNull();
  });
});
