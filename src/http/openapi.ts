// Owns the OpenAPI document (generated from the route schemas) and the interactive docs, both served
// from this process with no CDN. Must never describe a route by hand that its schema already defines.

import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { AppInstance } from './app-types.js';

/** Documentation paths need no API key: they describe the API, they expose no data. */
export const DOC_PATHS = ['/openapi.json', '/docs'];

export async function registerOpenApi(app: AppInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'meterhook',
        version,
        description:
          'Usage metering: capture events, aggregate them over calendar periods, deliver signed webhooks. ' +
          'Every route except /healthz, /readyz and the documentation takes an API key (x-apikey header or Authorization: Bearer); ' +
          'x-meterhook-scope names the key scope each operation needs (ingest, read or admin; any: every valid key); ' +
          'x-meterhook-customer-keys: true marks the operations a customer-restricted key may call (every other one answers it 403).',
      },
      components: {
        securitySchemes: {
          apiKey: { type: 'apiKey', in: 'header', name: 'x-apikey' },
          bearer: { type: 'http', scheme: 'bearer' },
        },
      },
      security: [{ apiKey: [] }, { bearer: [] }],
    },
    // Each operation names the key scope it needs (ingest, read, admin; any: every valid key; public: no key).
    transform: ({ schema, url, route }) => ({
      schema: {
        ...schema,
        'x-meterhook-scope': route.config?.scope,
        'x-meterhook-customer-keys': route.config?.customerKeys === true,
      } as typeof schema,
      url,
    }),
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
