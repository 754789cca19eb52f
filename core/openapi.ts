/**
 * OpenAPI helpers for `createRoute`, shared by every plugin: the kernel's one error body
 * and the JSON response, error response and request body entries built from zod schemas.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";

/** The kernel's error model `{error, message, details?}` (see core/errors.ts). */
export const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
}).openapi("Error");

/** A JSON response entry. */
export const json = <T extends z.ZodTypeAny>(schema: T, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});

/** An error response entry. */
export const err = (description: string) => json(ErrorBody, description);

/** A required JSON request body. */
export const body = <T extends z.ZodTypeAny>(schema: T) => ({
  body: { required: true, content: { "application/json": { schema } } },
});
