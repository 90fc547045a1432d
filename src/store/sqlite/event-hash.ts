// Owns the 53-bit key hash of an event's idempotency identity (customer, event type, id).
// Must never be trusted alone: equal hashes are only candidates, confirmed against the stored row.

function mix(h1: number, h2: number, s: string): [number, number] {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x85ebca77);
    h2 = Math.imul(h2 ^ c, 0xc2b2ae3d);
  }
  // A separator that no UTF-16 code unit equals, so ("ab","c") and ("a","bc") differ.
  h1 = Math.imul(h1 ^ 0x10000, 0x85ebca77);
  h2 = Math.imul(h2 ^ 0x10000, 0xc2b2ae3d);
  return [h1, h2];
}

/** A well-mixed integer below 2^53, so it is exact both as a JS number and as an SQLite INTEGER. */
export function eventKeyHash(customerId: string, eventType: string, id: string): number {
  let [h1, h2] = mix(0xdeadbeef, 0x41c6ce57, customerId);
  [h1, h2] = mix(h1, h2, eventType);
  [h1, h2] = mix(h1, h2, id);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b) ^ Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b) ^ Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35);
  return (h2 & 0x1fffff) * 0x100000000 + (h1 >>> 0);
}
