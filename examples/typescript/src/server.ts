// An MCP server in TypeScript, on the official SDK, that only the auth service's users can call.
//
//   MCP_RESOURCE_URL=http://127.0.0.1:9300/mcp MCP_AUTH_ISSUER=http://127.0.0.1:9000 npm start
//
// Register it at the auth service first: mcp-auth resources add http://127.0.0.1:9300/mcp --scope mcp:tools
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Request, Response } from "express";
import { z } from "zod";

import { discoverJwksUri, guard, IssuerMismatch, resourceMetadataUrl } from "./auth.js";

const resource = process.env.MCP_RESOURCE_URL ?? "http://127.0.0.1:9300/mcp";
const issuer = process.env.MCP_AUTH_ISSUER ?? "http://127.0.0.1:9000";
const url = new URL(resource);

function buildServer(req: Request): McpServer {
  const server = new McpServer({ name: "TypeScript example", version: "0.1.0" });
  server.registerTool(
    "whoami",
    { description: "Who is calling, from the verified access token" },
    async () => ({ content: [{ type: "text", text: `${req.caller?.claims.preferred_username ?? req.caller?.subject}` }] }),
  );
  server.registerTool(
    "add",
    { description: "Add two numbers", inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
  );
  return server;
}

async function main(): Promise<void> {
  let jwksUri: string;
  try {
    jwksUri = await discoverJwksUri(issuer);
  } catch (error) {
    // A wrong issuer never fixes itself: stop with one line. (An unreachable one would be retried in production.)
    console.error(`mcp-typescript-example: ${(error as Error).message}`);
    process.exit(error instanceof IssuerMismatch ? 2 : 1);
  }
  const auth = guard({ issuer, resource, jwksUri, scopes: ["mcp:tools"] });
  // DNS-rebinding protection: only this server's own host name.
  const app = createMcpExpressApp({ host: url.hostname, allowedHosts: [url.hostname] });

  const metadataPath = new URL(resourceMetadataUrl(resource)).pathname;
  for (const path of [metadataPath, "/.well-known/oauth-protected-resource"]) {
    app.get(path, (_req: Request, res: Response) => {
      res.set("Access-Control-Allow-Origin", "*").json(auth.metadata);
    });
  }
  app.get("/healthz", (_req: Request, res: Response) => {
    res.json({ status: "ok" });
  });
  // Stateless streamable HTTP: a fresh server and transport per request, JSON responses.
  app.post(url.pathname, auth.require, async (req: Request, res: Response) => {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    const server = buildServer(req);
    res.on("close", () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  const port = Number(process.env.PORT ?? (url.port || 80));
  app.listen(port, url.hostname, () => console.log(`MCP server ${resource} (issuer ${issuer})`));
}

void main();
