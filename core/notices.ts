/**
 * Operator notices: how any plugin tells the operators' consoles that something happened
 * without knowing who delivers it. The realtime plugin, when it is loaded, sends every
 * notice to the operator sockets subscribed to its topic, filtered by site scope.
 *
 * Publish a notice on its own (`ctx.events.publish(operatorNotice, …)`), or with the
 * plugin's own event about the same fact (`{ with: notice(…) }`), so that one bus message
 * carries both.
 *
 * @module
 */
import { type Companion, eventKey } from "./events.ts";

/** One notice for operators. */
export interface OperatorNotice {
  /** The subscription topic (`approvals`, `incidents`, …; docs/operator-socket.md). */
  topic: string;
  /** The message type operators receive. */
  type: string;
  data: unknown;
  /** Site of the object: its operators and admins see it; null = admins only; "all" = everyone. */
  site_id: number | null | "all";
}

/** Bus key of operator notices. */
export const operatorNotice = eventKey<OperatorNotice>("kernel.operator_notice");

/** An operator notice to send along with another event (`publish(key, payload, {with})`). */
export function notice(n: OperatorNotice): Companion<unknown> {
  return { key: operatorNotice, payload: n } as Companion<unknown>;
}
