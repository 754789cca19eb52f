/**
 * File transfer routes: `GET /api/terminal/devices/{guid}/files?path=…` downloads a file
 * from the device (streamed, `X-Checksum-SHA256` and `Digest` headers carry the agent's
 * SHA-256), `POST /api/terminal/uploads/{guid}?path=…` writes the raw request body to a
 * path on the device (`Content-Length` required, `X-Checksum-SHA256` optional and
 * checked), and `GET /api/terminal/devices/{guid}/transfers` lists the device's
 * transfers. Uploads live under their own prefix so that only they get the large,
 * unbuffered body limit.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { intParam } from "../../core/fields.ts";
import { principalOf, requireRole } from "../../core/auth.ts";
import { badRequest } from "../../core/errors.ts";
import type { Router } from "../../core/http.ts";
import { err, json } from "../../core/openapi.ts";
import { type InventoryService, isGuid } from "../inventory/mod.ts";
import { DevicePath } from "./schemas.ts";
import type { TerminalStore } from "./store.ts";
import type { FileTransfers } from "./transfers.ts";

const Transfer = z.object({
  id: z.string(),
  device_guid: z.string(),
  hostname: z.string(),
  operator: z.string(),
  direction: z.enum(["download", "upload"]),
  path: z.string(),
  status: z.enum(["running", "succeeded", "failed"]),
  size: z.number().nullable(),
  bytes: z.number(),
  sha256: z.string().nullable(),
  error: z.string().nullable(),
  created_at: z.string(),
  finished_at: z.string().nullable(),
}).openapi("TerminalFileTransfer");

const Guid = z.object({ guid: z.string().refine(isGuid, "a device GUID") });

/** Where uploads go (its own body limit). */
export const UPLOAD_PREFIX = "/api/terminal/uploads/";

/** Installs the file routes. */
export function installFileRoutes(
  http: Router,
  o: { transfers: FileTransfers; store: TerminalStore; inventory: InventoryService },
): void {
  const { transfers, store, inventory } = o;
  const errors = {
    400: err("Bad path"),
    401: err("Not signed in"),
    403: err("File transfer is off for the site, or a read-only token"),
    404: err("No such device (or file)"),
    409: err("The device is not active or its agent is not connected"),
    413: err("Larger than BOREALIS_TERMINAL_FILE_MAX_BYTES"),
    504: err("The agent stopped answering"),
  };

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/devices/{guid}/files",
      summary: "Download a file from the device (streamed; SHA-256 in X-Checksum-SHA256)",
      middleware: [requireRole("User")] as const,
      request: { params: Guid, query: z.object({ path: DevicePath }) },
      responses: {
        200: {
          description:
            "The file's bytes; the body ends in an error if they differ from the checksum",
          content: { "application/octet-stream": { schema: z.string() } },
        },
        ...errors,
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      return await transfers.download(
        p,
        c.req.valid("param").guid,
        c.req.valid("query").path,
      ) as never;
    },
  );

  http.openapi(
    createRoute({
      method: "post",
      path: "/api/terminal/uploads/{guid}",
      summary:
        "Upload the request body (raw bytes, Content-Length required) to a path on the device",
      middleware: [requireRole("User")] as const,
      request: {
        params: Guid,
        query: z.object({
          path: DevicePath,
          overwrite: z.enum(["true", "false"]).default("false"),
        }),
      },
      responses: {
        200: json(Transfer, "Written, verified and in place"),
        ...errors,
        409: err("The file exists (overwrite=false), or the device cannot take it now"),
        411: err("No Content-Length"),
        422: err("SHA-256 mismatch (nothing was left on the device)"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const q = c.req.valid("query");
      const declared = c.req.header("x-checksum-sha256")?.trim().toLowerCase() ?? null;
      if (declared !== null && !/^[0-9a-f]{64}$/.test(declared)) {
        throw badRequest("invalid_checksum", "X-Checksum-SHA256 must be 64 hex digits");
      }
      const length = c.req.header("content-length");
      const view = await transfers.upload(p, c.req.valid("param").guid, {
        path: q.path,
        overwrite: q.overwrite === "true",
        length: length === undefined ? null : Number(length),
        sha256: declared,
        body: c.req.raw.body,
      });
      return c.json(view, 200);
    },
  );

  http.openapi(
    createRoute({
      method: "get",
      path: "/api/terminal/devices/{guid}/transfers",
      summary: "A device's file transfers, newest first",
      middleware: [requireRole("User")] as const,
      request: {
        params: Guid,
        query: z.object({ limit: intParam({ min: 1, max: 500 }).default(50) }),
      },
      responses: {
        200: json(z.object({ transfers: z.array(Transfer) }), "Transfers"),
        401: err("Not signed in"),
        404: err("No such device"),
      },
    }),
    async (c) => {
      const p = await principalOf(c);
      const guid = c.req.valid("param").guid.toUpperCase();
      await inventory.visibleDevice(p, guid);
      return c.json(
        { transfers: await store.listTransfers(guid, c.req.valid("query").limit) },
        200,
      );
    },
  );
}
