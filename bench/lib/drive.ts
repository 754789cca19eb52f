/**
 * Closed-loop load driving for benchmarks whose requests a generic tool cannot make
 * (each agent request needs a fresh DPoP proof): `n` loops call `fn` for `secs` seconds.
 * Also the engine-side CPU sampling helpers the phase benchmarks share.
 *
 * @module
 */

/** One measured phase. */
export interface Phase {
  name: string;
  ops: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Wall-clock window of the phase (epoch ms), to match the engine's CPU samples. */
  startMs: number;
  endMs: number;
}

/** Runs `fn` in `n` loops for `secs`; counts completions (true) and errors. */
export async function drive(
  name: string,
  n: number,
  secs: number,
  fn: (i: number) => Promise<boolean>,
): Promise<Phase> {
  const end = performance.now() + secs * 1000;
  let ops = 0, errors = 0;
  const lat: number[] = [];
  const start = performance.now();
  const startMs = Date.now();
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        if (await fn(i)) ops++;
        else errors++;
      } catch {
        errors++;
      }
      if (lat.length < 200_000) lat.push(performance.now() - t0);
    }
  }));
  const took = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return {
    name,
    ops: ops / took,
    errors,
    seconds: took,
    p50: lat[Math.floor(lat.length * 0.5)] ?? 0,
    p99: lat[Math.floor(lat.length * 0.99)] ?? 0,
    startMs,
    endMs: Date.now(),
  };
}

/** This process's CPU time in ms (user + system), from /proc. */
export function cpuMs(): number {
  try {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // clock ticks at 100 Hz
  } catch {
    return NaN;
  }
}

/** Whether `taskset` exists (to pin engine and generator to different cores). */
export async function hasTaskset(): Promise<boolean> {
  try {
    return (await new Deno.Command("sh", { args: ["-c", "command -v taskset"], stdout: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

/** Samples this process's CPU every 50 ms; `cpuIn(from, to)` gives the ms spent in a window. */
export function cpuSampler(): { stop(): void; cpuIn(from: number, to: number): number } {
  const samples: Array<[number, number]> = [];
  const timer = setInterval(() => samples.push([Date.now(), cpuMs()]), 50);
  return {
    stop: () => clearInterval(timer),
    cpuIn(from, to) {
      const inside = samples.filter(([t]) => t >= from && t <= to);
      return inside.length > 1 ? inside.at(-1)![1] - inside[0]![1] : NaN;
    },
  };
}

/** Formats a number with thousands separators. */
export const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");
