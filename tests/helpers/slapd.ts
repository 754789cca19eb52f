/**
 * A throwaway OpenLDAP server for directory tests: a real `slapd` (Debian package) on a
 * free loopback port with its database and config in a temp dir, loaded with a small
 * test tree (users, groups, a nested group, a group cycle, a disabled user, a user whose
 * DN holds filter and DN metacharacters), and stopped (dir removed) by `stop()`.
 *
 * The server allows unauthenticated binds (DN + empty password) on purpose, so tests can
 * prove the engine refuses an empty password even where the server would say "success".
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { Attribute, Change, Client } from "ldapts";
import { encodeSid, parseSidString } from "../../plugins/directory/sid.ts";

/** Suffix of the test tree. */
export const BASE_DN = "dc=example,dc=org";
/** The service account the engine binds as. */
export const SERVICE_DN = `cn=svc-borealis,ou=services,${BASE_DN}`;
/** Its password. */
export const SERVICE_PASSWORD = "svc-Pa55word-bind";
/** Group DNs of the tree. */
export const GROUPS = {
  admins: `cn=rmm-admins,ou=groups,${BASE_DN}`,
  ops: `cn=rmm-ops,ou=groups,${BASE_DN}`,
  team: `cn=field-team,ou=groups,${BASE_DN}`,
  subteam: `cn=field-subteam,ou=groups,${BASE_DN}`,
  loopA: `cn=loop-a,ou=groups,${BASE_DN}`,
  loopB: `cn=loop-b,ou=groups,${BASE_DN}`,
  audit: `cn=auditors,ou=groups,${BASE_DN}`,
} as const;

/** A user of the test tree. */
export interface SlapdUser {
  uid: string;
  dn: string;
  password: string;
  cn: string;
  mail: string;
}

const user = (uid: string, rdn?: string): SlapdUser => ({
  uid,
  dn: `${rdn ?? `uid=${uid}`},ou=people,${BASE_DN}`,
  password: `${uid}-Secret-9!`,
  cn: uid[0]!.toUpperCase() + uid.slice(1),
  mail: `${uid}@example.org`,
});

/** Users: who is in which group is documented next to each. */
export const USERS = {
  /** rmm-admins (→ Admin) and rmm-ops. */
  alice: user("alice"),
  /** rmm-ops (→ User, sites). */
  bob: user("bob"),
  /** field-subteam ∈ field-team ∈ rmm-ops: reaches rmm-ops only through nesting. */
  carol: user("carol"),
  /** rmm-ops but disabled in the directory (employeeType=disabled). */
  dave: user("dave"),
  /** Only in loop-a (loop-a ⇄ loop-b cycle); no mapped group. */
  eve: user("eve"),
  /** rmm-ops; DN with `,` `(` `)` `*` `\` in its RDN value. */
  jsmith: user("jsmith", "cn=Smith\\, John (IT)*\\5c"),
  /** Same name as a local account the tests create. */
  localdup: user("localdup"),
  /** auditors (→ User) and rmm-ops. */
  grace: user("grace"),
} as const;

/**
 * The Active Directory look-alike part of the tree (`{adLike: true}`): a test schema
 * with AD's `objectSid`, `primaryGroupID` and `sAMAccountName`, a domain SID whose
 * binary form holds `( ) * \` NUL and bytes from 0x80 up (so escaping and binary
 * filters are really exercised), and a user whose only group is its primary group.
 */
export const AD = {
  /** Sub-authorities 0x5c2a2928 and 0x80c300ff: bytes 28 29 2a 5c and ff 00 c3 80. */
  domainSid: `S-1-5-21-${0x5c2a2928}-${0x80c300ff}-1813906818`,
  domainUsers: `cn=Domain Users,ou=groups,${BASE_DN}`,
  domainAdmins: `cn=Domain Admins,ou=groups,${BASE_DN}`,
  /** sAMAccountName adam, primaryGroupID 513 (Domain Users), in no group's member list. */
  adam: { ...user("adam"), rid: 1105, primaryGroupId: 513 },
  /** primaryGroupID 1999: no such group. */
  orphan: { ...user("orphan"), rid: 1106, primaryGroupId: 1999 },
} as const;

const AD_SCHEMA = `
attributetype ( 1.2.840.113556.1.4.146 NAME 'objectSid'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.98 NAME 'primaryGroupID'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.32473.1.1 NAME 'borealisAdLike' AUXILIARY
  MAY ( objectSid $ primaryGroupID $ sAMAccountName ) )
`;

/** The binary SID of `rid` in the test domain. */
export function adSid(rid: number): Uint8Array {
  const domain = parseSidString(AD.domainSid)!;
  return encodeSid({ ...domain, subAuthorities: [...domain.subAuthorities, rid] });
}

/** A running test server. */
export interface Slapd {
  url: string;
  port: number;
  /** With `{tls: true}`: an ldaps:// URL, and the CA that signed the server certificate. */
  ldapsUrl?: string;
  caPem?: string;
  /** Runs `fn` with a client bound as the root DN (to change the tree mid-test). */
  asRoot<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

const SLAPD_PATHS = ["/usr/sbin/slapd", "/usr/local/libexec/slapd", "/usr/libexec/slapd"];
const ROOT_DN = `cn=admin,${BASE_DN}`;
const ROOT_PW = "root-Secret-1";

/** Path of the slapd binary, or null (with the reason) when it is not installed. */
export function findSlapd(): { path: string | null; reason: string } {
  for (const p of SLAPD_PATHS) {
    try {
      if (Deno.statSync(p).isFile) return { path: p, reason: "" };
    } catch { /* next */ }
  }
  return {
    path: null,
    reason: "slapd is not installed (apt-get install -y slapd ldap-utils); directory tests skipped",
  };
}

/** True when tests needing slapd must be ignored; prints why once. */
export const slapdMissing: boolean = (() => {
  const { path, reason } = findSlapd();
  if (!path) console.warn(`WARNING: ${reason}`);
  return !path;
})();

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function config(dir: string, tls: boolean, sizeLimit?: number, adLike?: boolean): string {
  const schema = "/etc/ldap/schema";
  const tlsLines = tls
    ? `TLSCACertificateFile ${dir}/ca.pem
TLSCertificateFile ${dir}/server.pem
TLSCertificateKeyFile ${dir}/server.key
`
    : "";
  return `${tlsLines}
include ${schema}/core.schema
include ${schema}/cosine.schema
include ${schema}/inetorgperson.schema
include ${schema}/nis.schema
${adLike ? `include ${dir}/ad-like.schema\n` : ""}modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile ${dir}/slapd.pid
# Lets a DN with an empty password bind as anonymous ("unauthenticated bind").
allow bind_anon_dn bind_anon_cred
database mdb
maxsize 16777216
suffix "${BASE_DN}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PW}
directory ${dir}/db
${sizeLimitLine(sizeLimit)}overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`;
}

/**
 * A size limit for everyone but the root DN, which a paged search may go past (the
 * total of a paged search is unlimited, like Active Directory's MaxPageSize): an
 * unpaged search matching more entries fails with "size limit exceeded" (4).
 */
function sizeLimitLine(limit?: number): string {
  return limit ? `limits * size.soft=${limit} size.hard=${limit} size.prtotal=unlimited\n` : "";
}

async function waitReady(port: number, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  for (let i = 0; i < 200; i++) {
    if (exited) throw new Error("slapd exited during start");
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error("slapd did not start listening within 10 s");
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * A throwaway CA and a server certificate for 127.0.0.1 / localhost, plus `extraNames`
 * (DNS names) when given (openssl CLI). Writes `ca.pem`, `server.pem` and `server.key`
 * into `dir`; returns the CA certificate.
 */
export async function makeCertificates(
  dir: string,
  extraNames: readonly string[] = [],
): Promise<string> {
  const names = ["DNS:localhost", "IP:127.0.0.1", ...extraNames.map((n) => `DNS:${n}`)];
  await Deno.writeTextFile(
    `${dir}/san.ext`,
    `subjectAltName=${names.join(",")}\nextendedKeyUsage=serverAuth\n`,
  );
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Borealis Test CA",
  ], dir);
  await run("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  ], dir);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  ], dir);
  return await Deno.readTextFile(`${dir}/ca.pem`);
}

/** Options for {@link startSlapd}. */
export interface SlapdOptions {
  /** Also listen on ldaps:// and offer StartTLS, with a certificate from a fresh CA. */
  tls?: boolean;
  /**
   * With `tls`: DNS names the server certificate carries besides localhost and
   * 127.0.0.1 (e.g. a name that does not resolve, reached through a host override).
   */
  certNames?: string[];
  /** Server size limit for searches (not the root DN); paged searches may go past it. */
  sizeLimit?: number;
  /** Add the Active Directory look-alike schema and entries ({@link AD}). */
  adLike?: boolean;
}

/** Starts slapd with the test tree loaded. */
export async function startSlapd(options: SlapdOptions = {}): Promise<Slapd> {
  // A port picked free can be taken by someone else before slapd binds it: retry.
  for (let attempt = 1;; attempt++) {
    try {
      return await startOnce(options);
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

async function startOnce(options: SlapdOptions): Promise<Slapd> {
  const { path } = findSlapd();
  if (!path) throw new Error("slapd is not installed");
  const dir = await Deno.makeTempDir({ prefix: "borealis-slapd-" });
  await Deno.mkdir(`${dir}/db`);
  if (options.adLike) await Deno.writeTextFile(`${dir}/ad-like.schema`, AD_SCHEMA);
  const caPem = options.tls ? await makeCertificates(dir, options.certNames) : undefined;
  await Deno.writeTextFile(
    `${dir}/slapd.conf`,
    config(dir, !!options.tls, options.sizeLimit, options.adLike),
  );
  const port = freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = options.tls ? `ldaps://127.0.0.1:${freePort()}` : undefined;
  const child = new Deno.Command(path, {
    // -d 0 keeps slapd in the foreground (so we own the process) without debug output.
    args: [
      "-f",
      `${dir}/slapd.conf`,
      "-h",
      ldapsUrl ? `${url}/ ${ldapsUrl}/` : `${url}/`,
      "-d",
      "0",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeTo(new WritableStream()).catch(() => {});
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await stderr;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const asRoot = async <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ url, timeout: 5000, connectTimeout: 5000 });
    try {
      await client.bind(ROOT_DN, ROOT_PW);
      return await fn(client);
    } finally {
      await client.unbind().catch(() => {});
    }
  };
  try {
    await waitReady(port, child);
    await asRoot(loadTree);
    if (options.adLike) await asRoot(loadAdTree);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, port, ldapsUrl, caPem, asRoot, stop };
}

async function loadTree(c: Client): Promise<void> {
  await c.add(BASE_DN, { objectClass: ["dcObject", "organization"], dc: "example", o: "Example" });
  for (const ou of ["people", "groups", "services"]) {
    await c.add(`ou=${ou},${BASE_DN}`, { objectClass: "organizationalUnit", ou });
  }
  await c.add(SERVICE_DN, {
    objectClass: ["person", "simpleSecurityObject"],
    cn: "svc-borealis",
    sn: "service",
    userPassword: SERVICE_PASSWORD,
  });
  for (const [key, u] of Object.entries(USERS)) {
    await c.add(u.dn, {
      objectClass: ["inetOrgPerson"],
      uid: u.uid,
      cn: key === "jsmith" ? "Smith, John (IT)*\\" : u.cn,
      sn: u.uid,
      displayName: `${u.cn} Example`,
      mail: u.mail,
      userPassword: u.password,
      ...(key === "dave" ? { employeeType: "disabled" } : {}),
    });
  }
  // Members are added bottom-up so every referenced DN exists (memberof checks them).
  const group = (dn: string, members: string[]) =>
    c.add(dn, {
      objectClass: "groupOfNames",
      cn: dn.slice(3, dn.indexOf(",")),
      member: members,
    });
  await group(GROUPS.subteam, [USERS.carol.dn]);
  await group(GROUPS.team, [GROUPS.subteam]);
  await group(GROUPS.admins, [USERS.alice.dn]);
  // The service account keeps auditors non-empty when tests remove grace.
  await group(GROUPS.audit, [USERS.grace.dn, SERVICE_DN]);
  await group(GROUPS.ops, [
    USERS.alice.dn,
    USERS.bob.dn,
    USERS.dave.dn,
    USERS.jsmith.dn,
    USERS.localdup.dn,
    USERS.grace.dn,
    GROUPS.team,
  ]);
  await group(GROUPS.loopA, [USERS.eve.dn]);
  await group(GROUPS.loopB, [GROUPS.loopA]);
  await c.modify(GROUPS.loopA, [
    new Change({
      operation: "add",
      modification: new Attribute({ type: "member", values: [GROUPS.loopB] }),
    }),
  ]);
}

async function loadAdTree(c: Client): Promise<void> {
  const sid = (rid: number) =>
    new Attribute({ type: "objectSid", values: [Buffer.from(adSid(rid))] });
  for (const [dn, rid] of [[AD.domainUsers, 513], [AD.domainAdmins, 512]] as const) {
    await c.add(dn, [
      new Attribute({ type: "objectClass", values: ["groupOfNames", "borealisAdLike"] }),
      new Attribute({ type: "cn", values: [dn.slice(3, dn.indexOf(","))] }),
      // groupOfNames needs a member; the real members of a primary group are implicit.
      new Attribute({ type: "member", values: [SERVICE_DN] }),
      sid(rid),
    ]);
  }
  for (const u of [AD.adam, AD.orphan]) {
    await c.add(u.dn, [
      new Attribute({ type: "objectClass", values: ["inetOrgPerson", "borealisAdLike"] }),
      new Attribute({ type: "uid", values: [u.uid] }),
      new Attribute({ type: "sAMAccountName", values: [u.uid] }),
      new Attribute({ type: "cn", values: [u.cn] }),
      new Attribute({ type: "sn", values: [u.uid] }),
      new Attribute({ type: "displayName", values: [`${u.cn} Example`] }),
      new Attribute({ type: "mail", values: [u.mail] }),
      new Attribute({ type: "userPassword", values: [u.password] }),
      new Attribute({ type: "primaryGroupID", values: [String(u.primaryGroupId)] }),
      sid(u.rid),
    ]);
  }
}

/** Site ids the test provider's site mappings hand out. */
export const SITES = { ops: 11, field: 12, audit: 13 } as const;

/**
 * A `POST /api/directory/providers` body for the test tree: rmm-admins → Admin,
 * rmm-ops and auditors → User; rmm-ops → site 11, field-team → site 12, auditors → 13.
 */
export function providerBody(
  urls: string | string[],
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name: "Test OpenLDAP",
    type: "ldap",
    server_urls: Array.isArray(urls) ? urls : [urls],
    base_dn: BASE_DN,
    bind_dn: SERVICE_DN,
    bind_password: SERVICE_PASSWORD,
    group_search_base: `ou=groups,${BASE_DN}`,
    disabled_filter: "(employeeType=disabled)",
    nested_groups: true,
    connect_timeout_ms: 1000,
    operation_timeout_ms: 1000,
    group_mappings: [
      { group_dn: GROUPS.admins, role: "Admin" },
      { group_dn: GROUPS.ops, role: "User" },
      { group_dn: GROUPS.audit, role: "User" },
    ],
    site_mappings: [
      { label: "ops", group_dns: [GROUPS.ops], site_ids: [SITES.ops] },
      { label: "field", group_dns: [GROUPS.team], site_ids: [SITES.field] },
      { label: "audit", group_dns: [GROUPS.audit], site_ids: [SITES.audit] },
    ],
    ...overrides,
  };
}
