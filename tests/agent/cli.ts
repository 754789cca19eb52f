/**
 * The reference agent's command line:
 *
 *   deno task agent --server URL --code CODE --state DIR [--hostname NAME] [--once] [--refresh]
 *
 * Enrolls when the state folder holds no tokens (request, then poll until an operator
 * or the site's auto-approval window admits it), then polls `script/request` at the
 * engine's hint, refreshing tokens before they expire. `--once` makes one call and
 * exits; `--refresh` forces one token refresh and exits. Progress is printed as one
 * JSON object per line on stdout.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Agent, AgentError } from "./agent.ts";

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
  if (!agent.enrolled) {
    if (!values.code) {
      console.error("not enrolled yet: --code is required");
      return 2;
    }
    const result = await agent.enroll(values.code, {
      onStatus: (s) =>
        emit("enrollment", { status: s.status, approval_reference: s.approval_reference }),
    });
    if (result.status !== "approved") {
      emit("enrollment_failed", { status: result.status });
      return 1;
    }
    emit("enrolled", { guid: agent.state.guid, hostname: result.hostname });
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
    const res = await agent.call("POST", "/api/agent/script/request", {});
    const body = await res.json().catch(() => ({}));
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
