/**
 * A read-only value with a copy button (enrollment codes, install commands, tokens).
 *
 * @module
 */
import Button from "@mui/material/Button";
import Stack from "@mui/material/Stack";
import TextField from "@mui/material/TextField";
import { useState } from "react";

/** A labelled read-only field and a Copy button. */
export function CopyField(
  { label, value, multiline, monospace = true }: {
    label: string;
    value: string;
    multiline?: boolean;
    monospace?: boolean;
  },
) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } catch {
      setCopied(false);
    }
  };
  return (
    <Stack sx={{ alignItems: "flex-start" }} direction="row" spacing={1}>
      <TextField
        label={label}
        value={value}
        fullWidth
        size="small"
        multiline={multiline}
        slotProps={{
          input: {
            readOnly: true,
            sx: monospace ? { fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" } : {},
          },
        }}
        onFocus={(e) => e.target.select()}
      />
      <Button variant="outlined" onClick={copy} aria-label={`Copy ${label}`} sx={{ minWidth: 84 }}>
        {copied ? "Copied" : "Copy"}
      </Button>
    </Stack>
  );
}
