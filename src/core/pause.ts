/**
 * A blocking pause of a random length, for a retry that waits on another process: random, so that
 * two processes retrying at once fall apart.
 */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export function pause(minMs: number, maxMs: number): void {
  Atomics.wait(sleeper, 0, 0, minMs + Math.floor(Math.random() * (maxMs - minMs)));
}
