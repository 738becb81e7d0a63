import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export type ReadinessCheck = () => Promise<{ ready: boolean; detail?: Record<string, unknown> }>;

/** `/healthz` (200 ready, 503 not) and `/metrics` (Prometheus) at the root, unauthenticated. */
export function healthRoutes(readiness: ReadinessCheck, registry: Registry) {
  return async (app: FastifyInstance) => {
    app.get('/healthz', { schema: { summary: 'Readiness: 200 when the server and the Agent Proxy are ready', tags: ['health'] } }, async (_request, reply) => {
      const { ready, detail } = await readiness();
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ok' : 'starting', ...detail });
    });
    app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'] } }, async (_request, reply) => {
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  };
}
