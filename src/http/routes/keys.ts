// Owns the key management API: POST /keys (the key is shown once), GET /keys, GET /keys/:id and DELETE /keys/:id,
// admin only. Must never return key material beyond the new key in the creation answer (a prefix is not a key),
// nor let the last admin key be revoked when no key comes from the environment.

import Type, { type Static } from 'typebox';
import { createApiKey } from '../../auth/api-keys.js';
import type { ApiKeyRecord } from '../../domain/records.js';
import { customerIdProblem } from '../../domain/event-rules.js';
import { SCOPES } from '../../domain/scopes.js';
import type { RoutePlugin } from '../app-types.js';
import { HttpError, LastAdminKey, NotFound } from '../errors.js';
import { IdParam } from '../query-params.js';
import { errorResponses, Nullable, STORE, WITH_BODY } from '../schemas/common.js';

const RateLimit = Type.Object(
  {
    requestsPerSecond: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000 }),
    burst: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  },
  { additionalProperties: false, description: "The key's own token bucket: burst requests at once, refilled at requestsPerSecond" },
);

const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    scopes: Type.Array(Type.Enum([...SCOPES]), { minItems: 1, maxItems: SCOPES.length }),
    customerId: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: 'Confine the key to this customer (ingest and read only, never admin)' }),
    ),
    expiresAt: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'ISO-8601 instant after which the key answers 401' })),
    rateLimit: Type.Optional(Nullable(RateLimit)),
  },
  { additionalProperties: false },
);

const KeyFields = {
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to recognise it; not enough to use it' }),
  scopes: Type.Array(Type.Enum([...SCOPES])),
  customerId: Nullable(Type.String(), 'The customer the key is confined to; null: unrestricted'),
  expiresAt: Nullable(Type.String(), 'When the key stops working; null: never'),
  createdAt: Type.String(),
  revokedAt: Nullable(Type.String()),
  rateLimit: Nullable(RateLimit, "The key's own rate limit; null: the server default (METERHOOK_KEY_RATE_LIMIT)"),
};
export const ApiKey = Type.Object(KeyFields, { description: 'An API key, without key material' });
export const CreatedKey = Type.Object({ ...KeyFields, key: Type.String({ description: 'The key itself: shown in this answer only' }) });
const KeyParams = Type.Object({ keyId: IdParam(64) });

const iso = (t: number | null | undefined) => (t === null || t === undefined ? null : new Date(t).toISOString());

export function presentKey(k: ApiKeyRecord): Static<typeof ApiKey> {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    scopes: [...k.scopes],
    customerId: k.customerId ?? null,
    expiresAt: iso(k.expiresAt),
    createdAt: new Date(k.createdAt).toISOString(),
    revokedAt: iso(k.revokedAt),
    rateLimit: k.rateLimit ?? null,
  };
}

const invalid = (message: string) => new HttpError('invalid_request', message);

export const keyRoutes: RoutePlugin = async (app, { deps }) => {
  // Revocations in this process run one at a time: two at once could each count the other's key as the admin
  // key that remains, and revoke the last two together.
  let revoking: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = revoking.then(fn, fn);
    revoking = run.catch(() => undefined);
    return run;
  };

  const { store, clock } = deps.ctx;
  const find = async (id: string) => {
    const k = (await store.listApiKeys()).find((r) => r.id === id);
    if (!k) throw new NotFound(`API key ${id} not found`);
    return k;
  };

  app.post(
    '/keys',
    {
      config: { scope: 'admin', audit: 'key.create' },
      schema: {
        summary: 'Create an API key',
        description:
          'The key is in this answer only; meterhook keeps its hash. A key with customerId sees and stores only that ' +
          'customer (it may not have the admin scope); expiresAt makes it answer 401 afterwards; rateLimit gives it its own bucket.',
        body: CreateBody,
        response: { 201: CreatedKey, ...errorResponses(...WITH_BODY, ...STORE) },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const customerId = b.customerId ?? null;
      if (b.customerId === '') throw invalid('customerId must not be empty');
      if (customerId !== null) {
        const problem = customerIdProblem(customerId);
        if (problem !== undefined) throw invalid(problem);
        if (b.scopes.includes('admin')) throw invalid('A customer key may not have the admin scope: give it ingest and/or read');
      }
      let expiresAt: number | null = null;
      if (b.expiresAt !== undefined) {
        expiresAt = /^\d{4}-\d{2}-\d{2}T/.test(b.expiresAt) ? Date.parse(b.expiresAt) : Number.NaN;
        if (!Number.isFinite(expiresAt)) throw invalid('expiresAt must be an ISO-8601 instant, such as 2027-01-01T00:00:00Z');
        if (expiresAt <= clock.now()) throw invalid('expiresAt must be in the future');
      }
      const { key, record } = await createApiKey(store, clock, b.name, b.scopes, { customerId, expiresAt, rateLimit: b.rateLimit ?? null });
      await deps.apiKeys.reload();
      return reply.code(201).send({ ...presentKey(record), key });
    },
  );

  app.get(
    '/keys',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'API keys, oldest first, without key material',
        response: { 200: Type.Array(ApiKey), ...errorResponses(...STORE) },
      },
    },
    async () => (await store.listApiKeys()).map(presentKey),
  );

  app.get(
    '/keys/:keyId',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'One API key, without key material',
        params: KeyParams,
        response: { 200: ApiKey, ...errorResponses(400, 404, ...STORE) },
      },
    },
    async (req) => presentKey(await find(req.params.keyId)),
  );

  app.delete(
    '/keys/:keyId',
    {
      config: { scope: 'admin', audit: 'key.revoke' },
      schema: {
        summary: 'Revoke an API key',
        description:
          'The key stops working at once in this process and within seconds in every other one sharing the store. ' +
          'The last active admin key cannot be revoked while no key comes from METERHOOK_API_KEYS (409 last_admin_key).',
        params: KeyParams,
        response: { 200: ApiKey, ...errorResponses(400, 404, 409, ...STORE) },
      },
    },
    async (req) =>
      oneAtATime(async () => {
        const k = await find(req.params.keyId);
        if (k.revokedAt !== null) return presentKey(k);
        const now = clock.now();
        const activeAdmin = (r: ApiKeyRecord) => r.revokedAt === null && r.scopes.includes('admin') && (r.expiresAt ?? Infinity) > now;
        if (activeAdmin(k) && deps.apiKeys.envKeyCount === 0) {
          const others = (await store.listApiKeys()).filter((r) => r.id !== k.id && activeAdmin(r));
          if (others.length === 0) throw new LastAdminKey();
        }
        await store.revokeApiKey(k.id, now);
        await deps.apiKeys.reload();
        return presentKey(await find(k.id));
      }),
  );
};
