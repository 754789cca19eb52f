/**
 * The reference agent's protocol client is the production agent's: see
 * agent/protocol/client.ts. Re-exported here for the tests and load generators that
 * import it from this folder.
 *
 * @module
 */
export * from "../../agent/protocol/client.ts";
