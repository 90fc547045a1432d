// Owns where a request presents its API key: the x-apikey header, or Authorization: Bearer <key>.
// Must never verify the key: the auth hook and the routes that derive credentials from it do that.

export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const x = headers['x-apikey'];
  if (typeof x === 'string' && x.length > 0) return x;
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  return undefined;
}
