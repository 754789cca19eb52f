/**
 * `main.ts users create-admin --username NAME`: creates an admin from the server's own
 * shell, reading the password from stdin (or a prompt without echo).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { PluginCommand } from "../../core/plugin.ts";
import { HttpError } from "../../core/errors.ts";
import { operatorsKey } from "./keys.ts";

/** The `users create-admin` command. */
export const createAdminCommand: PluginCommand = {
  name: "users create-admin",
  summary: "create an admin account (password from stdin or a prompt)",
  usage: "Usage: deno task start users create-admin --username NAME [--display-name TEXT]\n\n" +
    "Creates an Admin. The password is read from stdin (one line) or prompted for without echo.\n" +
    "The new admin sets up TOTP at first sign-in.",
  async run(ctx) {
    let values: { username?: string; "display-name"?: string };
    try {
      values = parseArgs({
        args: ctx.args,
        options: { username: { type: "string" }, "display-name": { type: "string" } },
        strict: true,
        allowPositionals: false,
      }).values;
    } catch (e) {
      ctx.print(`error: ${e instanceof Error ? e.message : e}\n\n${createAdminCommand.usage}`);
      return 2;
    }
    if (!values.username) {
      ctx.print(`error: --username is required\n\n${createAdminCommand.usage}`);
      return 2;
    }
    const password = await ctx.readSecret(`Password for ${values.username}: `);
    const engine = await ctx.openEngine();
    try {
      const user = await engine.service(operatorsKey).createUser({
        username: values.username,
        password,
        role: "Admin",
        displayName: values["display-name"],
      });
      ctx.print(`created admin ${user.username}; sign in to set up TOTP`);
      return 0;
    } catch (e) {
      if (e instanceof HttpError) {
        ctx.print(`error: ${e.message}`);
        return 1;
      }
      throw e;
    } finally {
      await engine.stop();
    }
  },
};
