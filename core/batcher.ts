/**
 * Natural batching for hot-path database lookups: while a query is in flight, new
 * requests queue up and go out together in the next query. Idle traffic pays no added
 * latency; under load one round trip serves hundreds of requests.
 *
 * @module
 */

interface Pending<I, O> {
  item: I;
  resolve: (v: O) => void;
  reject: (e: unknown) => void;
}

/** Groups single-item calls into batch calls. */
export class Batcher<I, O> {
  #queue: Pending<I, O>[] = [];
  #inFlight = 0;

  /**
   * @param run answers a batch; result `i` belongs to item `i`.
   * @param maxBatch most items per call.
   * @param maxInFlight how many batch calls may run at once.
   */
  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 500,
    private readonly maxInFlight = 2,
  ) {}

  /** Queues one item; resolves with its result. */
  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.maxInFlight && this.#queue.length) {
      const batch = this.#queue.splice(0, this.maxBatch);
      this.#inFlight++;
      this.run(batch.map((p) => p.item)).then(
        (out) => batch.forEach((p, i) => p.resolve(out[i]!)),
        (err) => batch.forEach((p) => p.reject(err)),
      ).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }
}
