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

  const agent = <T extends { via: string }>(
    type: string,
    schema: z.ZodType<T>,
    stream: (data: T) => string,
  ) =>
    channel.on(type, schema, (ref, data) => {
      relay.deliver(data.via, stream(data), {
        guid: ref.guid.toUpperCase(),
        type,
        data: data as unknown as Record<string, unknown>,
      });
      return undefined;
    });
  const session = (d: { session_id: string }) => d.session_id;
  const transfer = (d: { transfer_id: string }) => d.transfer_id;
  agent("terminal_opened", AgentOpened, session);
  agent("terminal_output", AgentOutput, session);
  agent("terminal_exit", AgentExit, session);
  agent("terminal_sync", AgentSync, session);
  agent("file_meta", AgentFileMeta, transfer);
  agent("file_chunk", AgentFileChunk, transfer);
  agent("file_ready", AgentFileReady, transfer);
  agent("file_written", AgentFileWritten, transfer);
  agent("file_done", AgentFileDone, transfer);
  agent("file_error", AgentFileError, transfer);
  agent("device_action_result", AgentActionResult, (d) => d.action_id);
}
