/**
 * The socket frames of the terminal plugin: what operators send on `/api/ws` (handled
 * on the instance holding their socket) and what agents send on `/api/agent/ws`
 * (handed by the instance holding the agent's socket to the instance named in the frame's
 * `via`, see ./relay.ts).
 *
 * @module
 */
import type { z } from "@hono/zod-openapi";
import type { AgentChannel } from "../realtime/mod.ts";
import type { Relay } from "./relay.ts";
import {
  AckFrame,
  AgentActionResult,
  AgentExit,
  AgentFileChunk,
  AgentFileDone,
  AgentFileError,
  AgentFileMeta,
  AgentFileReady,
  AgentFileWritten,
  AgentOpened,
  AgentOutput,
  AgentSync,
  AttachFrame,
  CloseFrame,
  InputFrame,
  OpenFrame,
  ResizeFrame,
} from "./schemas.ts";
import type { TerminalSessions } from "./sessions.ts";

/** Registers the operator and agent frame handlers. */
export function registerFrames(
  channel: AgentChannel,
  relay: Relay,
  sessions: TerminalSessions,
): void {
  channel.onOperator("terminal_open", OpenFrame, (link, f) => sessions.open(link, f));
  channel.onOperator("terminal_attach", AttachFrame, (link, f) => sessions.attach(link, f));
  channel.onOperator("terminal_input", InputFrame, (link, f) => sessions.input(link, f));
  channel.onOperator("terminal_resize", ResizeFrame, (link, f) => sessions.resize(link, f));
  channel.onOperator("terminal_ack", AckFrame, (link, f) => sessions.ack(link, f));
  channel.onOperator(
    "terminal_close",
    CloseFrame,
    (link, f) => sessions.closeByOperator(link, f.session_id),
  );

  const agent = <T extends { via: string }>(type: string, schema: z.ZodType<T>) =>
    channel.on(type, schema, (ref, data) => {
      relay.deliver(data.via, {
        guid: ref.guid.toUpperCase(),
        type,
        data: data as unknown as Record<string, unknown>,
      });
      return undefined;
    });
  agent("terminal_opened", AgentOpened);
  agent("terminal_output", AgentOutput);
  agent("terminal_exit", AgentExit);
  agent("terminal_sync", AgentSync);
  agent("file_meta", AgentFileMeta);
  agent("file_chunk", AgentFileChunk);
  agent("file_ready", AgentFileReady);
  agent("file_written", AgentFileWritten);
  agent("file_done", AgentFileDone);
  agent("file_error", AgentFileError);
  agent("device_action_result", AgentActionResult);
}
