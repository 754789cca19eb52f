/**
 * The console's entry point.
 *
 * @module
 */
import "@emotion/react";
import "@emotion/styled";
import { createRoot } from "react-dom/client";

createRoot(document.getElementById("root")!).render(<p>Borealis</p>);
