/**
 * The console's entry point (bundled by `deno bundle`, see ../build.ts).
 *
 * @module
 */
// The component library's styling engine, named here so the bundler resolves it for MUI.
import "@emotion/react";
import "@emotion/styled";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app/app.tsx";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
