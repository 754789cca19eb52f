/**
 * Password hashing and rules. Hashes are scrypt with the parameters written into each
 * hash (`$scrypt$ln=15,r=8,p=1$<salt>$<hash>`), so raising the parameters only means
 * rehashing at the next successful login. Rules follow ASVS 6.2: 8–256 characters, no
 * composition rules, common passwords refused.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { badRequest, type HttpError } from "../../core/errors.ts";

/** scrypt cost parameters (N = 2^ln). */
export interface HashParams {
  ln: number;
  r: number;
  p: number;
}

/** The parameters new hashes use unless settings raise them. */
export const DEFAULT_HASH_PARAMS: HashParams = { ln: 15, r: 8, p: 1 };

const KEYLEN = 32;
const FORMAT = /^\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

function scryptAsync(
  password: string,
  salt: Uint8Array,
  params: HashParams,
  keylen = KEYLEN,
): Promise<Buffer> {
  const N = 2 ** params.ln;
  return new Promise((resolve, reject) =>
    scrypt(
      password.normalize("NFKC"),
      salt,
      keylen,
      { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 16 * 1024 * 1024 },
      (err, key) => err ? reject(err) : resolve(key),
    )
  );
}

/** Hashes a password with fresh salt. */
export async function hashPassword(
  password: string,
  params = DEFAULT_HASH_PARAMS,
): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString("base64")}$${
    key.toString("base64")
  }`;
}

/** Parameters a stored hash was made with, or null if it is not ours. */
export function hashParams(hash: string): HashParams | null {
  const m = FORMAT.exec(hash);
  return m ? { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) } : null;
}

/** Checks a password against a stored hash in constant time. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = FORMAT.exec(hash);
  if (!m) return false;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (params.ln < 1 || params.ln > 22 || params.r > 32 || params.p > 16) return false;
  const expected = Buffer.from(m[5]!, "base64");
  const actual = await scryptAsync(password, Buffer.from(m[4]!, "base64"), params, expected.length);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** True when `hash` was made with weaker parameters than `target`. */
export function needsRehash(hash: string, target: HashParams): boolean {
  const p = hashParams(hash);
  return !p || p.ln < target.ln || p.r < target.r || p.p < target.p;
}

let common: Set<string> | undefined;

async function commonPasswords(): Promise<Set<string>> {
  if (!common) {
    const text = await Deno.readTextFile(new URL("./common_passwords.txt", import.meta.url));
    common = new Set(
      text.split("\n").map((l) => l.trim().toLowerCase()).filter((l) => l && !l.startsWith("#")),
    );
  }
  return common;
}

/** Longest password accepted (ASVS asks for at least 64; we allow 256). */
export const MAX_PASSWORD_LENGTH = 256;

/** Returns the rule a new password breaks, or null when it is acceptable. */
export async function passwordProblem(
  password: string,
  username?: string,
): Promise<HttpError | null> {
  const length = [...password].length;
  if (length < 8) return badRequest("weak_password", "the password needs at least 8 characters");
  if (length > MAX_PASSWORD_LENGTH) {
    return badRequest(
      "weak_password",
      `the password may have at most ${MAX_PASSWORD_LENGTH} characters`,
    );
  }
  const lower = password.toLowerCase();
  if ((await commonPasswords()).has(lower)) {
    return badRequest("weak_password", "this password is too common; choose another");
  }
  if (username && lower === username.toLowerCase()) {
    return badRequest("weak_password", "the password must differ from the username");
  }
  return null;
}
