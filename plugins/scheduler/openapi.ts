/**
 * OpenAPI response helpers shared by the scheduler's routes.
 *
 * @module
 */
import { ErrorBody, json } from "../../core/openapi.ts";

export { ErrorBody, json };

/** The error answers every scheduler route can give. */
export const errors = {
  400: json(ErrorBody, "Bad request"),
  401: json(ErrorBody, "Not signed in"),
  403: json(ErrorBody, "Not allowed"),
  404: json(ErrorBody, "Not found"),
};

/** The same, plus 409 for routes that can conflict. */
export const errorsWithConflict = { ...errors, 409: json(ErrorBody, "Conflict") };
