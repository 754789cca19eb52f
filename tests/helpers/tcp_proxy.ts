/**
 * A TCP proxy a test controls, put between an engine and its PostgreSQL server to stage
 * an outage without touching the shared server: forward, refuse (nothing listens: the
 * client sees ECONNREFUSED, like a stopped server), black-hole (connections open but no
 * byte ever comes back, like a dead network path) and cut (every open connection ends
 * at once).
 *
 * @module
 */

/** How new connections are treated. */
export type ProxyMode = "forward" | "refuse" | "blackhole";

/** A running proxy. */
export class TcpProxy {
  #listener?: Deno.Listener;
  #mode: ProxyMode = "forward";
  #open = new Set<Deno.Conn>();
  #held = new Set<Deno.Conn>();
  #closed = false;

  private constructor(
    readonly port: number,
    private readonly target: { hostname: string; port: number },
  ) {}

  /** Starts forwarding a free loopback port to `target`. */
  static start(target: { hostname: string; port: number }): TcpProxy {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const proxy = new TcpProxy((l.addr as Deno.NetAddr).port, target);
    proxy.#serve(l);
    return proxy;
  }

  /** The mode new connections get. */
  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Connections currently open through the proxy. */
  get connections(): number {
    return this.#open.size;
  }

  #serve(l: Deno.Listener): void {
    this.#listener = l;
    (async () => {
      for (;;) {
        let conn: Deno.Conn;
        try {
          conn = await l.accept();
        } catch {
          return; // closed
        }
        this.#open.add(conn);
        if (this.#mode === "blackhole") {
          this.#held.add(conn); // held open, never answered
          continue;
        }
        void this.#pipe(conn);
      }
    })();
  }

  async #pipe(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect(this.target);
    } catch {
      this.#drop(client);
      return;
    }
    this.#open.add(upstream);
    const end = () => {
      this.#drop(client);
      this.#drop(upstream);
    };
    client.readable.pipeTo(upstream.writable, { preventClose: true }).catch(() => {}).finally(end);
    upstream.readable.pipeTo(client.writable, { preventClose: true }).catch(() => {}).finally(end);
  }

  #drop(c: Deno.Conn): void {
    if (!this.#open.delete(c)) return;
    try {
      c.close();
    } catch { /* closed */ }
  }

  /** Ends every open connection at once. */
  cut(): void {
    for (const c of [...this.#open]) this.#drop(c);
  }

  /** Stops listening: new connections are refused (ECONNREFUSED). */
  refuse(): void {
    this.#mode = "refuse";
    try {
      this.#listener?.close();
    } catch { /* closed */ }
    this.#listener = undefined;
  }

  /** New connections are accepted and never answered. */
  blackhole(): void {
    this.#ensureListening();
    this.#mode = "blackhole";
  }

  /** Forwards again; connections held by a black hole are dropped. */
  restore(): void {
    this.#ensureListening();
    this.#mode = "forward";
    for (const c of this.#held) this.#drop(c);
    this.#held.clear();
  }

  #ensureListening(): void {
    if (this.#listener || this.#closed) return;
    this.#serve(Deno.listen({ hostname: "127.0.0.1", port: this.port }));
  }

  /** Stops everything. */
  close(): void {
    this.#closed = true;
    this.refuse();
    this.cut();
  }
}
