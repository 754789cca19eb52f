/**
 * OpenAPI response helpers shared by the scheduler's routes.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";

/** The kernel's error model. */
export const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
}).openapi("SchedulerError");

/** A JSON response entry for `createRoute`. */
export const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** The error answers every scheduler route can give. */
export const errors = {
  400: json(ErrorBody, "Bad request"),
  401: json(ErrorBody, "Not signed in"),
  403: json(ErrorBody, "Not allowed"),
  404: json(ErrorBody, "Not found"),
};

/** The same, plus 409 for routes that can conflict. */
export const errorsWithConflict = { ...errors, 409: json(ErrorBody, "Conflict") };
