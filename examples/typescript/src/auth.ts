// How an MCP server in any language trusts the auth service: the rules mcp_auth_kit follows, with `jose`.
//
// - The issuer's RFC 8414 metadata must name exactly the configured issuer (else: stop, one line).
// - Access tokens are RFC 9068 JWTs: `typ` at+jwt, `iss` exact, `aud` containing this server's resource
//   URL, an explicit algorithm allow-list (never the token's choice), exp/iat/sub/client_id/jti present.
// - Challenges follow RFC 6750 §3 and RFC 9728 §5.1: `resource_metadata` always, `scope` always,
//   `error` only when a token was presented.
import type { NextFunction, Request, Response } from "express";
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";

export const ALGORITHMS = ["ES256", "RS256", "EdDSA"]; // RFC 8725 §3.1: an allow-list, no `none`, no HMAC
const REQUIRED_CLAIMS = ["exp", "iat", "sub", "client_id", "jti"]; // RFC 9068 §2.2 (iss, aud: checked below)

export interface Caller {
  subject: string;
  clientId: string;
  scopes: string[];
  claims: JWTPayload;
}

declare module "express-serve-static-core" {
  interface Request {
    caller?: Caller;
  }
}

export class IssuerMismatch extends Error {}

/** RFC 8414 §3.1 metadata URL: the well-known suffix goes between the host and the issuer's path. */
export function metadataUrl(issuer: string): string {
  const url = new URL(issuer);
  return `${url.origin}/.well-known/oauth-authorization-server${url.pathname.replace(/\/$/, "")}`;
}

/** RFC 9728 §3.1 metadata URL of a resource. */
export function resourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  return `${url.origin}/.well-known/oauth-protected-resource${url.pathname}`;
}

/** The issuer's jwks_uri, after checking that its metadata names exactly this issuer (RFC 8414 §3.3). */
export async function discoverJwksUri(issuer: string): Promise<string> {
  const url = metadataUrl(issuer);
  const response = await fetch(url, { headers: { Accept: "application/json" }, redirect: "error" });
  if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
  const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (metadata.issuer !== issuer) {
    throw new IssuerMismatch(
      `issuer mismatch: configured ${JSON.stringify(issuer)}, but ${url} names ${JSON.stringify(metadata.issuer)}`,
    );
  }
  if (typeof metadata.jwks_uri !== "string") throw new Error(`${url} has no jwks_uri`);
  return metadata.jwks_uri;
}

export interface Guard {
  metadata: Record<string, unknown>;
  require: (req: Request, res: Response, next: NextFunction) => Promise<void>;
}

/** The bearer-token guard for one resource, and its RFC 9728 document. */
export function guard(options: { issuer: string; resource: string; jwksUri: string; scopes: string[] }): Guard {
  const { issuer, resource, scopes } = options;
  const keys = createRemoteJWKSet(new URL(options.jwksUri)); // cached, re-fetched on an unknown kid
  const challengeBase = `resource_metadata="${resourceMetadataUrl(resource)}", scope="${scopes.join(" ")}"`;

  function refuse(res: Response, status: number, error?: string, description?: string): void {
    const challenge = error
      ? `Bearer error="${error}", error_description="${description}", ${challengeBase}`
      : `Bearer ${challengeBase}`;
    res.set("WWW-Authenticate", challenge).set("Cache-Control", "no-store");
    res.status(status).json(error ? { error, error_description: description } : { error_description: "Authentication required" });
  }

  async function require(req: Request, res: Response, next: NextFunction): Promise<void> {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (header === undefined) return refuse(res, 401); // RFC 6750 §3.1: no token, no error code
    if (match === null) return refuse(res, 400, "invalid_request", "Send one bearer token in the Authorization header");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1]!, keys, {
        issuer,
        audience: resource,
        typ: "at+jwt",
        algorithms: ALGORITHMS,
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: 30,
      }));
    } catch (error) {
      if (error instanceof errors.JOSEError && !(error instanceof errors.JWKSTimeout)) {
        return refuse(res, 401, "invalid_token", "The access token is invalid or expired");
      }
      res.set("Retry-After", "5").status(503).json({ error: "temporarily_unavailable" }); // keys out of reach
      return;
    }
    const granted = typeof payload.scope === "string" ? payload.scope.split(" ") : [];
    if (!scopes.every((scope) => granted.includes(scope))) {
      return refuse(res, 403, "insufficient_scope", "The access token lacks scopes this operation needs");
    }
    req.caller = { subject: String(payload.sub), clientId: String(payload.client_id), scopes: granted, claims: payload };
    next();
  }

  const metadata = {
    resource, // RFC 9728 §3.3: exactly the URL clients use
    authorization_servers: [issuer],
    scopes_supported: scopes,
    bearer_methods_supported: ["header"],
    resource_name: "TypeScript example",
  };
  return { metadata, require };
}
