/**
 * One owner per table: a plugin's SQL (its code and the migrations a new database runs)
 * names only the tables its own migrations create; anything else goes through the owning
 * plugin's service. The only exceptions are the read views below, which a plugin may read
 * (never write) when it requires their owner. The kernel's SQL names only kernel tables.
 * The rule is written down in docs/plugins.md.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { AnyPlugin } from "../core/plugin.ts";
import { builtinPlugins, optionalPlugins } from "../plugins/mod.ts";
import { isSql, literalsOf, tablesCreated, tablesIn } from "./helpers/source_scan.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * Read views an owner publishes for joins other plugins cannot do with one service call
 * without losing their one statement. Readers must require the owner; nobody writes them.
 */
const READ_VIEWS: Record<string, string> = {
  // sites: id, name, description, created_at. The inventory's site and device lists join
  // site names per row; the enrollment approval queue shows each request's site.
  site_view: "sites",
  // inventory: identity and telemetry columns. A watchdog evaluation reads the whole
  // fleet's telemetry in one statement; realtime lists connected agents by hostname and
  // site scope, and holds a message only for a device that exists.
  device_view: "inventory",
};

/** Where a plugin's files live, from its migrations folder or its name. */
function dirOf(p: AnyPlugin): string {
  if (p.migrations) return fileURLToPath(new URL("../", p.migrations as URL));
  return `${ROOT}plugins/${p.name}/`;
}

interface MigrationText {
  file: string;
  sql: string;
}

/**
 * The migration files a new database runs for an owner: the baseline and the files above
 * it, or every file. Files a baseline replaces are history kept for databases that
 * applied them; they are not read (they may name tables since handed to another owner).
 */
function liveMigrations(dir: string): MigrationText[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".sql"));
  } catch {
    return [];
  }
  const baseline = names.map((n) => /^baseline_(\d+)\.sql$/.exec(n)).find((m) => m);
  const upTo = baseline ? Number(baseline[1]) : 0;
  return names
    .filter((n) => {
      const m = /^(\d+)_/.exec(n);
      return m ? Number(m[1]) > upTo : n === baseline?.[0];
    })
    .sort()
    .map((n) => ({ file: `${dir}${n}`, sql: Deno.readTextFileSync(`${dir}${n}`) }));
}

function* sourceFiles(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}${e.name}`;
    if (e.isDirectory) {
      // Test harnesses and the browser console's sources hold no engine SQL.
      if (["migrations", "testing", "ui", "node_modules"].includes(e.name)) continue;
      yield* sourceFiles(`${path}/`);
    } else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield path;
  }
}

/** Tables named by the SQL literals of a TypeScript file, with their lines. */
function sqlTables(path: string): Array<{ table: string; line: number }> {
  const out: Array<{ table: string; line: number }> = [];
  for (const l of literalsOf(Deno.readTextFileSync(path))) {
    if (!isSql(l)) continue;
    for (const table of tablesIn(l.text)) out.push({ table, line: l.line });
  }
  return out;
}

const plugins = [...builtinPlugins, ...optionalPlugins];
const rel = (path: string) => path.slice(ROOT.length);

/** Table (or view) → owner ("kernel" or a plugin name). */
function owners(): Map<string, string> {
  const owner = new Map<string, string>();
  const claim = (table: string, by: string, file: string) => {
    const before = owner.get(table);
    assert.ok(
      before === undefined || before === by,
      `${rel(file)} creates ${table}, which ${before} already creates: a table has one owner`,
    );
    owner.set(table, by);
  };
  for (const m of liveMigrations(`${ROOT}migrations/`)) {
    for (const t of tablesCreated(m.sql)) claim(t, "kernel", m.file);
  }
  for (const p of plugins) {
    for (const m of liveMigrations(`${dirOf(p)}migrations/`)) {
      for (const t of tablesCreated(m.sql)) claim(t, p.name, m.file);
    }
  }
  return owner;
}

Deno.test("table owners: the scanner finds table names in SQL, not in comments or messages", () => {
  const source = [
    "// select * from devices",
    "const a = sql`select d.guid from devices d join site_view s on s.id = d.site_id`;",
    'const b = "no devices from here";',
    "const c = tx`update users set x = 1 where id = ${id}`;",
    "const d = sql`insert into audit_log (a) values (${x}) on conflict do nothing`;",
  ].join("\n");
  const found = literalsOf(source).filter(isSql).flatMap((l) => tablesIn(l.text));
  assert.deepEqual(found.sort(), ["audit_log", "devices", "site_view", "users"]);
  assert.deepEqual(
    tablesCreated("create table if not exists a (x int);\ncreate view b as select 1;"),
    ["a", "b"],
  );
});

Deno.test("table owners: a plugin's SQL names only its own tables and the read views of what it requires", () => {
  const owner = owners();
  for (const [view, by] of Object.entries(READ_VIEWS)) {
    assert.equal(owner.get(view), by, `the read view ${view} is created by ${by}`);
  }
  const foreign: string[] = [];
  for (const p of plugins) {
    const requires = new Set(p.requires ?? []);
    const allowed = (table: string) => {
      const by = owner.get(table);
      if (by === undefined || by === p.name) return true;
      return READ_VIEWS[table] === by && requires.has(by);
    };
    for (const file of sourceFiles(dirOf(p))) {
      for (const { table, line } of sqlTables(file)) {
        if (!allowed(table)) {
          foreign.push(`${rel(file)}:${line} names ${table} (owned by ${owner.get(table)})`);
        }
      }
    }
    for (const m of liveMigrations(`${dirOf(p)}migrations/`)) {
      const text = m.sql.replace(/--[^\n]*/g, " ").toLowerCase();
      // An owner declares its own foreign keys to the tables of plugins it requires.
      const withoutKeys = text.replace(
        /\breferences\s+([a-z_][a-z0-9_]*)/g,
        (_, table: string) => {
          const by = owner.get(table);
          if (by !== undefined && by !== p.name && by !== "kernel" && !requires.has(by)) {
            foreign.push(`${rel(m.file)} references ${table} of ${by}, which it does not require`);
          }
          return " ";
        },
      );
      for (const table of tablesIn(withoutKeys)) {
        if (!allowed(table)) {
          foreign.push(`${rel(m.file)} names ${table} (owned by ${owner.get(table)})`);
        }
      }
    }
  }
  assert.deepEqual(foreign, [], `SQL that names another owner's table:\n${foreign.join("\n")}`);
});

Deno.test("table owners: the kernel's SQL names only the kernel's tables", () => {
  const owner = owners();
  const foreign: string[] = [];
  for (const file of sourceFiles(`${ROOT}core/`)) {
    for (const { table, line } of sqlTables(file)) {
      const by = owner.get(table);
      if (by !== undefined && by !== "kernel") {
        foreign.push(`${rel(file)}:${line} names ${table} (owned by ${by})`);
      }
    }
  }
  assert.deepEqual(foreign, [], foreign.join("\n"));
});
