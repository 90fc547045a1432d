// Owns the client's key management calls (POST/GET/DELETE /keys) and the path segments every call builds.
// Must never retry a key creation on anything but a refused connection: a second attempt would mint a second key.

import type { Transport } from './transport.js';
import type { ApiKey, CreatedApiKey, CreateKeyInput } from './types.js';
import { assertParamText } from './validate.js';

/** An instant as ISO-8601 text: a Date or epoch milliseconds converted, text sent as given. */
export function isoInstant(v: Date | string | number): string {
  return typeof v === 'string' ? v : new Date(v).toISOString();
}

/** A path segment, percent-encoded; a lone surrogate (which encodeURIComponent cannot encode) is a MeterhookValidationError. */
export function segment(name: string, v: string): string {
  assertParamText(name, v);
  return encodeURIComponent(v);
}

/** The `client.keys` calls over one transport. */
export function keysApi(t: Transport) {
  return {
    // Creating a key is not idempotent: only retried when the connection was refused.
    create: async (input: CreateKeyInput) =>
      (
        await t.request<CreatedApiKey>('POST', 'keys', {
          retry: 'refused',
          body: { ...input, ...(input.expiresAt === undefined ? {} : { expiresAt: isoInstant(input.expiresAt) }) },
        })
      ).body,
    list: async () => (await t.request<ApiKey[]>('GET', 'keys')).body,
    get: async (id: string) => (await t.request<ApiKey>('GET', `keys/${segment('id', id)}`)).body,
    revoke: async (id: string) => (await t.request<ApiKey>('DELETE', `keys/${segment('id', id)}`)).body,
  };
}
