/** Runs `f`, recording its wall time in ms under `label` (tests print them for the notes). */
export async function timed<T>(timings: Record<string, number>, label: string, f: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timings[label] = Math.round(performance.now() - t0);
  }
}
