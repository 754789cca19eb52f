/**
 * The Borealis Agent's command line (bundled to agent.js by `deno task agent:package`):
 *
 *   agent.js service            the supervisor the service manager runs (docs/agent.md)
 *   agent.js worker             the live agent (started by the supervisor)
 *   agent.js install --server URL --token TOKEN --from DIR [--hostname NAME]
 *   agent.js uninstall [--keep-data]
 *   agent.js status [--json]
 *   agent.js collect            print the inventory this machine reports
 *   agent.js version
 *
 * BOREALIS_AGENT_ROOT=<dir> puts every file under <dir>; BOREALIS_AGENT_FOREGROUND=1
 * makes `install` run the agent in the foreground instead of registering a service.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { collectDetails } from "./collectors/mod.ts";
import { disabledCollectors, readConfig } from "./service/config.ts";
import { install, uninstall } from "./service/install.ts";
import { agentPaths, files } from "./service/paths.ts";
import { agentStatus, renderStatus } from "./service/status.ts";
import { runService } from "./updater/supervisor.ts";
import { runningVersion, runWorker } from "./worker.ts";

const USAGE = `Usage: borealis-agent <command>

Commands:
  status [--json]        is the agent running and connected; device, version, last update
  collect                print the inventory this machine reports (JSON)
  version                print the agent version
  uninstall [--keep-data]
                         stop and remove the service, program, configuration, state and logs
  install --server URL --token TOKEN --from DIR [--hostname NAME]
                         (run by the install command; see docs/agent.md)
  service                the supervisor the service manager runs
  worker                 the live agent (started by the supervisor)

Environment: BOREALIS_AGENT_ROOT=<dir> (everything under <dir>),
BOREALIS_AGENT_FOREGROUND=1 (install runs the agent in the foreground).`;

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const paths = agentPaths();
  const foreground = Deno.env.get("BOREALIS_AGENT_FOREGROUND") === "1";
  switch (command) {
    case "service":
      return await runService({
        paths,
        foreground,
        selfDir: dirname(fileURLToPath(import.meta.url)),
      });
    case "worker":
      return await runWorker(paths);
    case "install": {
      const { values } = parseArgs({
        args: rest,
        options: {
          server: { type: "string" },
          token: { type: "string" },
          code: { type: "string" },
          from: { type: "string" },
          hostname: { type: "string" },
        },
        strict: true,
      });
      if (!values.server || !values.from) {
        console.error(USAGE);
        return 2;
      }
      return await install({
        paths,
        server: values.server,
        token: values.token,
        code: values.code,
        hostname: values.hostname,
        from: values.from,
        foreground,
        print: (l) => console.log(l),
      });
    }
    case "uninstall": {
      const { values } = parseArgs({
        args: rest,
        options: { "keep-data": { type: "boolean" } },
        strict: true,
      });
      return await uninstall(paths, {
        keepData: !!values["keep-data"],
        print: (l) => console.log(l),
      });
    }
    case "status": {
      const s = await agentStatus(paths);
      console.log(rest.includes("--json") ? JSON.stringify(s, null, 2) : renderStatus(s));
      return s.running ? 0 : 3;
    }
    case "collect": {
      const cfg = await readConfig(files.config(paths)).catch(() => ({ server: "" }));
      console.log(
        JSON.stringify(await collectDetails({ disabled: disabledCollectors(cfg) }), null, 2),
      );
      return 0;
    }
    case "version":
      console.log(await runningVersion());
      return 0;
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      console.error(command ? `unknown command: ${command}\n\n${USAGE}` : USAGE);
      return 2;
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`borealis-agent: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
