// The peer in bench/token_peer.py: panva's `oidc-provider` (installed by that script into a throwaway
// folder, never a dependency of the product) issuing RFC 9068-style JWT access tokens (ES256) by
// client_credentials with resource indicators (RFC 8707), its clients read from PostgreSQL by a minimal
// adapter: one indexed read per token, as `mcp-auth serve` does. Configuration comes from the environment.
import { generateKeyPairSync } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';
import pg from 'pg';

const { PEER_ISSUER, PEER_PORT, PEER_DATABASE_URL, PEER_RESOURCE, PEER_SCOPES, PEER_POOL_SIZE } = process.env;
// Connections are kept (idleTimeoutMillis 0), as `mcp-auth serve` keeps its pool: no churn on either side.
const pool = new pg.Pool({
  connectionString: PEER_DATABASE_URL,
  max: Number(PEER_POOL_SIZE || 10),
  idleTimeoutMillis: 0,
});
let clientReads = 0;

// Clients come from the database on every request (the provider keeps only the validated schema,
// keyed by a hash of what was read); anything else a grant stores stays in memory (client_credentials
// with JWT access tokens stores nothing).
class PostgresClients {
  static memory = new Map();

  constructor(name) {
    this.name = name;
  }

  async find(id) {
    if (this.name !== 'Client') return PostgresClients.memory.get(`${this.name}:${id}`);
    clientReads += 1;
    const { rows } = await pool.query('SELECT payload FROM oidc_clients WHERE id = $1', [id]);
    return rows[0]?.payload;
  }

  async upsert(id, payload) {
    PostgresClients.memory.set(`${this.name}:${id}`, payload);
  }

  async findByUid() { return undefined; }

  async findByUserCode() { return undefined; }

  async consume() {}

  async destroy(id) {
    PostgresClients.memory.delete(`${this.name}:${id}`);
  }

  async revokeByGrantId() {}
}

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const provider = new Provider(PEER_ISSUER, {
  adapter: PostgresClients,
  jwks: { keys: [{ ...signing, kid: 'peer-1', alg: 'ES256', use: 'sig' }] },
  scopes: PEER_SCOPES.split(' '),
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo(ctx, resource) {
        if (resource !== PEER_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: PEER_SCOPES,
          audience: resource,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));

// The benchmark's readiness probe and its count of client reads (one per token, checked by the script).
provider.middleware.unshift(async (ctx, next) => {
  if (ctx.path === '/readyz') {
    ctx.body = { client_reads: clientReads };
    return undefined;
  }
  return next();
});
provider.listen(Number(PEER_PORT), '127.0.0.1');
