/** One entry of a TimeoutQueue: `expire` is null once settled or expired. */
export interface Waiter {
  due: number;
  expire: (() => void) | null;
  next: Waiter | null;
}

/**
 * Bounds any number of waits with one timer. Every wait lasts the same `timeoutMs`, so they end in the order
 * they began: a queue, whose head ends first. A timer per round trip (set, then cleared a few microseconds
 * later) cost the store more than any other step of a findToken; this one is set once per `timeoutMs` at most.
 * The timer holds the process open only while a wait is pending, as a timer per wait would.
 */
export class TimeoutQueue {
  private head: Waiter | null = null;
  private tail: Waiter | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly timeoutMs: number) {}

  /** Calls `expire` once `timeoutMs` have passed, unless `settle` is called first with the returned waiter. */
  add(expire: () => void): Waiter {
    const waiter: Waiter = { due: performance.now() + this.timeoutMs, expire, next: null };
    if (this.tail === null) {
      this.head = waiter;
      if (this.timer === null) this.arm(this.timeoutMs);
      else this.timer.ref();
    } else {
      this.tail.next = waiter;
    }
    this.tail = waiter;
    return waiter;
  }

  /** The wait is over: `expire` will not be called. Settling twice, or after expiry, does nothing. */
  settle(waiter: Waiter): void {
    waiter.expire = null;
    this.dropSettled();
  }

  private dropSettled(): void {
    while (this.head !== null && this.head.expire === null) this.head = this.head.next;
    if (this.head === null) {
      this.tail = null;
      // Nothing pending: the timer stays set (setting it again costs more) but no longer keeps the process alive.
      this.timer?.unref();
    }
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(() => this.fire(), delayMs);
  }

  private fire(): void {
    this.timer = null;
    const now = performance.now();
    for (let waiter = this.head; waiter !== null && waiter.due <= now; waiter = waiter.next) {
      const expire = waiter.expire;
      waiter.expire = null;
      expire?.();
    }
    this.dropSettled();
    // Timers may fire a fraction of a millisecond early by this clock: the head then gets one more millisecond.
    if (this.head !== null) this.arm(Math.max(1, Math.ceil(this.head.due - now)));
  }
}
