/**
 * A fresh, isolated database for each test engine: the kernel's helper (core/testing.ts).
 *
 * @module
 */
export { createTestDatabase, serverUrl, type TestDatabase } from "../../core/testing.ts";
