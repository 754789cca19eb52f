/**
 * The reference agent's WebSocket is the production agent's: see
 * agent/protocol/socket.ts.
 *
 * @module
 */
export * from "../../agent/protocol/socket.ts";
