/**
 * The notes resource: `GET`/`POST /api/example/notes`, `DELETE /api/example/notes/{id}`.
 * Each route is declared with zod, so the same schemas validate the request and appear in
 * `GET /api/openapi.json`; the error entries come from the kernel's `core/openapi.ts`.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { HttpError, notFound } from "borealis/core/errors.ts";
import { bigIdParam, intParam } from "borealis/core/fields.ts";
import { body, err, json } from "borealis/core/openapi.ts";
import type { PluginContext } from "borealis/core/plugin.ts";
import { noteCreated } from "./api.ts";
import type { settings } from "./settings.ts";
import type { NoteStore } from "./store.ts";

const Note = z.object({
  id: z.number().int(),
  text: z.string(),
  created_at: z.string().datetime(),
}).openapi("ExampleNote");

const listNotes = createRoute({
  method: "get",
  path: "/api/example/notes",
  summary: "List notes, newest first",
  request: { query: z.object({ limit: intParam({ min: 1, max: 100 }).default(20) }) },
  responses: {
    200: json(z.object({ items: z.array(Note) }), "Notes"),
    400: err("Bad query"),
  },
});

const createNote = createRoute({
  method: "post",
  path: "/api/example/notes",
  summary: "Add a note",
  request: body(z.object({ text: z.string().trim().min(1).max(500) }).strict()),
  responses: {
    201: json(Note, "Created"),
    400: err("Bad body"),
    409: err("Board full"),
  },
});

const deleteNote = createRoute({
  method: "delete",
  path: "/api/example/notes/{id}",
  summary: "Delete a note",
  request: { params: z.object({ id: bigIdParam() }) },
  responses: {
    204: { description: "Deleted" },
    404: err("No such note"),
  },
});

/** Registers the notes routes. */
export function registerNoteRoutes(
  ctx: PluginContext<typeof settings>,
  store: NoteStore,
): void {
  ctx.http.openapi(listNotes, async (c) => {
    const { limit } = c.req.valid("query");
    return c.json({ items: await store.list(limit) }, 200);
  });

  ctx.http.openapi(createNote, async (c) => {
    const { text } = c.req.valid("json");
    const note = await store.add(text, ctx.settings.maxNotes);
    if (!note) {
      throw new HttpError(
        409,
        "board_full",
        `the board holds at most ${ctx.settings.maxNotes} notes`,
      );
    }
    await ctx.events.publish(noteCreated, { id: note.id, text: note.text });
    return c.json(note, 201);
  });

  ctx.http.openapi(deleteNote, async (c) => {
    const { id } = c.req.valid("param");
    if (!await store.delete(id)) throw notFound(`no note ${id}`);
    return c.body(null, 204);
  });
}
