/**
 * Toasts (notifications from the operator socket and results of actions) and a polite
 * live region that announces changes to screen readers (a device coming online, a new
 * approval request).
 *
 * @module
 */
import Alert from "@mui/material/Alert";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Stack from "@mui/material/Stack";
import {
  createContext,
  type ReactNode,
  useCallback,
  useContext,
  useMemo,
  useRef,
  useState,
} from "react";

/** One toast. */
export interface Toast {
  message: string;
  title?: string;
  severity?: "info" | "success" | "warning" | "error";
  action?: { label: string; onClick: () => void };
}

interface ToastApi {
  notify(t: Toast): void;
  /** Says something to screen readers only. */
  announce(text: string): void;
}

const Ctx = createContext<ToastApi>({ notify: () => {}, announce: () => {} });

/** Toasts and announcements for the whole app. */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Array<Toast & { id: number }>>([]);
  const [said, setSaid] = useState("");
  const next = useRef(1);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const notify = useCallback((t: Toast) => {
    const id = next.current++;
    setToasts((list) => [...list.slice(-2), { ...t, id }]);
    setTimeout(() => dismiss(id), t.severity === "error" ? 12_000 : 6000);
  }, [dismiss]);
  const announce = useCallback((text: string) => {
    // Clearing first makes a repeated message be read again.
    setSaid("");
    setTimeout(() => setSaid(text), 50);
  }, []);
  const api = useMemo(() => ({ notify, announce }), [notify, announce]);
  return (
    <Ctx.Provider value={api}>
      {children}
      <Box
        aria-live="polite"
        sx={{
          position: "absolute",
          width: 1,
          height: 1,
          overflow: "hidden",
          clip: "rect(0 0 0 0)",
        }}
      >
        {said}
      </Box>
      <Stack
        spacing={1}
        sx={{
          position: "fixed",
          right: 16,
          bottom: 16,
          zIndex: 2000,
          width: 380,
          maxWidth: "90vw",
        }}
      >
        {toasts.map((t) => (
          <Alert
            key={t.id}
            elevation={6}
            variant="filled"
            severity={t.severity ?? "info"}
            role={t.severity === "error" ? "alert" : "status"}
            onClose={() => dismiss(t.id)}
            action={t.action
              ? (
                <Button
                  color="inherit"
                  size="small"
                  onClick={() => {
                    dismiss(t.id);
                    t.action!.onClick();
                  }}
                >
                  {t.action.label}
                </Button>
              )
              : undefined}
          >
            {t.title && <strong>{t.title}:</strong>}
            {t.message}
          </Alert>
        ))}
      </Stack>
    </Ctx.Provider>
  );
}

/** Toasts and announcements. */
export function useToasts(): ToastApi {
  return useContext(Ctx);
}
