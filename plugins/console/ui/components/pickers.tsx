/**
 * Pickers several editors share: sites (one or many), saved filters, devices by
 * hostname. Each is a labelled combo box the keyboard can drive.
 *
 * @module
 */
import Autocomplete from "@mui/material/Autocomplete";
import TextField from "@mui/material/TextField";
import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, query } from "../api/client.ts";
import { useFilters, useSites } from "../api/queries.ts";

/** Several sites by name. */
export function SitesPicker(
  { label, value, onChange, error, helperText, disabled }: {
    label: string;
    value: number[];
    onChange: (ids: number[]) => void;
    error?: boolean;
    helperText?: string;
    disabled?: boolean;
  },
) {
  const sites = useSites();
  const options = sites.data?.sites ?? [];
  return (
    <Autocomplete
      multiple
      size="small"
      options={options}
      getOptionLabel={(s) => s.name}
      value={options.filter((s) => value.includes(s.id))}
      onChange={(_, v) => onChange(v.map((s) => s.id))}
      isOptionEqualToValue={(a, b) => a.id === b.id}
      disabled={disabled}
      renderInput={(params) => (
        <TextField {...params} label={label} error={error} helperText={helperText} />
      )}
    />
  );
}

/** Several saved filters by name. */
export function FiltersPicker(
  { label, value, onChange, disabled }: {
    label: string;
    value: number[];
    onChange: (ids: number[]) => void;
    disabled?: boolean;
  },
) {
  const filters = useFilters();
  const options = filters.data?.filters ?? [];
  return (
    <Autocomplete
      multiple
      size="small"
      options={options}
      getOptionLabel={(f) => f.name}
      value={options.filter((f) => value.includes(f.id))}
      onChange={(_, v) => onChange(v.map((f) => f.id))}
      isOptionEqualToValue={(a, b) => a.id === b.id}
      disabled={disabled}
      renderInput={(params) => <TextField {...params} label={label} />}
    />
  );
}

/** A device as pickers hold it. */
export interface PickedDevice {
  guid: string;
  hostname: string;
}

/** Several devices by hostname (type-ahead against the engine). */
export function DevicesPicker(
  { label, value, onChange, disabled }: {
    label: string;
    value: PickedDevice[];
    onChange: (devices: PickedDevice[]) => void;
    disabled?: boolean;
  },
) {
  const [input, setInput] = useState("");
  const [term, setTerm] = useState("");
  useEffect(() => {
    const t = setTimeout(() => setTerm(input.trim()), 200);
    return () => clearTimeout(t);
  }, [input]);
  const hits = useQuery({
    queryKey: ["device-search", term],
    queryFn: ({ signal }) =>
      api<{ devices: Array<{ agent_guid: string; hostname: string }> }>(
        `/api/devices/search${query({ hostname: term })}`,
        { signal },
      ),
    enabled: term.length > 0,
  });
  const options: PickedDevice[] = (hits.data?.devices ?? []).slice(0, 20).map((d) => ({
    guid: d.agent_guid.toUpperCase(),
    hostname: d.hostname,
  }));
  return (
    <Autocomplete
      multiple
      size="small"
      options={options}
      filterOptions={(x) => x}
      getOptionLabel={(d) => d.hostname}
      value={value}
      onChange={(_, v) => onChange(v)}
      inputValue={input}
      onInputChange={(_, v) => setInput(v)}
      isOptionEqualToValue={(a, b) => a.guid === b.guid}
      noOptionsText={term ? "No device matches" : "Type a hostname"}
      loading={hits.isFetching}
      disabled={disabled}
      renderInput={(params) => <TextField {...params} label={label} />}
    />
  );
}
