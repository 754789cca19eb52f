/**
 * A real engine process with the scheduler and everything it needs, for tests that kill
 * an instance outright (SIGKILL: no shutdown hooks, no lease hand-over). Configured by
 * the environment like any engine; prints "READY <port>" once listening.
 *
 * @module
 */
import { Engine } from "../../../core/engine.ts";
import { schedulerPlugins } from "./helpers.ts";

const engine = await Engine.create({ plugins: schedulerPlugins });
const { port } = await engine.listen();
console.log(`READY ${port}`);
