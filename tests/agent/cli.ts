/**
 * The reference agent's command line:
 *
 *   deno task agent --server URL --code CODE --state DIR [--hostname NAME] [--once] [--refresh]
 *
 * Enrolls when the state folder holds no tokens (request, then poll until an operator
 * or the site's auto-approval window admits it), then polls `script/request` at the
 * engine's hint, refreshing tokens before they expire. `--once` makes one call and
 * exits; `--refresh` forces one token refresh and exits. When the refresh family is gone
 * (revoked, reused, expired, or the device purged) and `--code` was given, it forgets its
 * tokens and enrolls again with the same key; `device_revoked` stops it. Progress is
 * printed as one JSON object per line on stdout.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Agent, AgentError } from "./agent.ts";

/** Refresh failures after which only a new enrollment helps (docs/agent-protocol.md §3.1). */
const FAMILY_GONE = new Set([
  "invalid_refresh_token",
  "refresh_token_expired",
  "refresh_token_revoked",
  "refresh_token_reused",
  "device_purged",
]);

const emit = (event: string, data: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ event, ...data }));

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      server: { type: "string" },
      code: { type: "string" },
      state: { type: "string" },
      hostname: { type: "string" },
      once: { type: "boolean" },
      refresh: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help || !values.server || !values.state) {
    console.error(
      "usage: deno task agent --server URL --code CODE --state DIR [--hostname NAME] [--once] [--refresh]",
    );
    return values.help ? 0 : 2;
  }
  const agent = await Agent.open({
    server: values.server,
    stateDir: values.state,
    hostname: values.hostname,
  });
  const enroll = async (): Promise<boolean> => {
    const result = await agent.enroll(values.code!, {
      onStatus: (s) =>
        emit("enrollment", { status: s.status, approval_reference: s.approval_reference }),
    });
    if (result.status !== "approved") {
      emit("enrollment_failed", { status: result.status });
      return false;
    }
    emit("enrolled", { guid: agent.state.guid, hostname: result.hostname });
    return true;
  };
  if (!agent.enrolled) {
    if (!values.code) {
      console.error("not enrolled yet: --code is required");
      return 2;
    }
    if (!await enroll()) return 1;
  }
  if (values.refresh) {
    await agent.refresh();
    emit("refreshed", { guid: agent.state.guid });
    return 0;
  }
  let stop = false;
  try {
    Deno.addSignalListener("SIGINT", () => (stop = true));
    Deno.addSignalListener("SIGTERM", () => (stop = true));
  } catch { /* not supported here */ }
  while (!stop) {
    let res: Response;
    try {
      res = await agent.call("POST", "/api/agent/script/request", {});
    } catch (err) {
      const code = err instanceof AgentError ? String(err.body.error ?? "") : "";
      if (err instanceof AgentError && err.status === 401 && FAMILY_GONE.has(code) && values.code) {
        emit("reenrolling", { reason: code });
        await agent.forget();
        if (!await enroll()) return 1;
        continue;
      }
      throw err;
    }
    const body = await res.json().catch(() => ({}));
    if (res.status === 403 && body.error === "device_revoked") {
      emit("revoked", { guid: agent.state.guid });
      return 1;
    }
    emit("script_request", { http_status: res.status, ...body });
    if (values.once) return res.status === 200 ? 0 : 1;
    const wait = res.status === 200 ? Number(body.poll_after_ms ?? 30_000) : 10_000;
    await new Promise((r) => setTimeout(r, wait));
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    if (err instanceof AgentError) emit("error", { status: err.status, body: err.body });
    else emit("error", { message: err instanceof Error ? err.message : String(err) });
    Deno.exit(1);
  }
}
