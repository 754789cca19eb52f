/**
 * The example plugin's public contract: its service key, its event and their types.
 * Other plugins import these through `mod.ts`, never the plugin's other files.
 *
 * @module
 */
import { eventKey } from "borealis/core/events.ts";
import { serviceKey } from "borealis/core/plugin.ts";

/** A stored note as the API shows it. */
export interface Note {
  id: number;
  text: string;
  /** ISO time. */
  created_at: string;
}

/** Published after a note is stored. */
export const noteCreated = eventKey<{ id: number; text: string }>("example.note_created");

/** What this plugin offers other plugins. */
export interface NotesService {
  count(): Promise<number>;
}

/** Service key: `ctx.use(notesService)` in a plugin that requires "example". */
export const notesService = serviceKey<NotesService>("example.notes");
