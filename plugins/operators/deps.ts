/**
 * What the operator route modules share: the plugin context, settings and services.
 *
 * @module
 */
import type { PluginContext } from "../../core/plugin.ts";
import type { Vault } from "../aegis/mod.ts";
import type { ExternalAuthenticator } from "./keys.ts";
import type { SessionStore } from "./sessions.ts";
import type { LoginThrottle } from "./throttle.ts";
import type { UserStore } from "./users.ts";

/** Resolved settings of the operators plugin. */
export interface OperatorSettings {
  sessionIdleSeconds: number;
  sessionAbsoluteSeconds: number;
  passwordScryptLn: number;
  passwordBreachApi?: string;
  loginMaxFailures: number;
  loginIpMaxFailures: number;
  loginLockoutSeconds: number;
  mfaIssuer: string;
  webauthnRpId?: string;
  webauthnRpName: string;
  webauthnOrigins?: string;
  bootstrapTokenEnabled: boolean;
  cookieSecure: boolean;
}

/** Dependencies handed to each route module. */
export interface Deps {
  ctx: PluginContext;
  settings: OperatorSettings;
  vault: Vault;
  users: UserStore;
  sessions: SessionStore;
  throttle: LoginThrottle;
  /** Set by the directory plugin through the operators service. */
  external?: { current?: ExternalAuthenticator };
}
