// PostgreSQL protocol clients as Odoo's libpq connects: TLS with verify-full against the
// server's DNS name (TLS-2, TLS-3) while the sandbox reaches it on 127.0.0.1, and SCRAM.
// node-postgres checks the certificate against `ssl.servername` when `host` is an IP, the
// equivalent of libpq's `host=<fqdn> hostaddr=127.0.0.1 sslmode=verify-full`.
import { Client, type ClientConfig } from "pg";

export interface Endpoint {
  /** The DNS name the certificate must carry (e.g. pgbouncer.odoo.internal). */
  readonly serverName: string;
  readonly port: number;
  /** PEM of the internal CA. */
  readonly caPem: string;
}

export interface Login {
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

/** Client config for verify-full TLS to `endpoint` on 127.0.0.1. `tls: false` makes a plaintext attempt. */
export function clientConfig(endpoint: Endpoint, login: Login, options: { tls?: boolean; serverNameOverride?: string } = {}): ClientConfig {
  return {
    host: "127.0.0.1",
    port: endpoint.port,
    user: login.user,
    password: login.password,
    database: login.database,
    application_name: "odoo-stack-integration",
    connectionTimeoutMillis: 10_000,
    ssl:
      options.tls === false
        ? false
        : { ca: endpoint.caPem, servername: options.serverNameOverride ?? endpoint.serverName, rejectUnauthorized: true },
  };
}

/** The authentication request the server sent during the last connect (what it demanded of the client). */
export type AuthRequest = "SASL" | "MD5" | "cleartext" | "none";

export interface ObservedClient {
  readonly client: Client;
  /** SASL mechanisms the server offered, e.g. ["SCRAM-SHA-256"]; empty when it asked for none. */
  readonly saslMechanisms: readonly string[];
  readonly authRequests: readonly AuthRequest[];
  /** Whether the connection runs over TLS. */
  readonly encrypted: boolean;
}

/** Connects and records which authentication the server asked for; throws the server's error. */
export async function connectObserved(config: ClientConfig): Promise<ObservedClient> {
  const client = new Client(config);
  const authRequests: AuthRequest[] = [];
  const saslMechanisms: string[] = [];
  // node-postgres exposes the protocol connection; its message events are stable API of pg's
  // Connection (lib/connection.js emits one event per backend message name).
  const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
  let encrypted = false;
  connection.on("sslconnect", () => (encrypted = true));
  connection.on("authenticationSASL", (msg: { mechanisms: string[] }) => {
    authRequests.push("SASL");
    saslMechanisms.push(...msg.mechanisms);
  });
  connection.on("authenticationMD5Password", () => authRequests.push("MD5"));
  connection.on("authenticationCleartextPassword", () => authRequests.push("cleartext"));
  client.on("error", () => undefined); // errors after connect surface on the next query
  await client.connect();
  if (authRequests.length === 0) authRequests.push("none");
  return { client, saslMechanisms, authRequests, encrypted };
}

export async function connect(config: ClientConfig): Promise<Client> {
  return (await connectObserved(config)).client;
}

/**
 * Expects the login to be refused; returns the error message (the server's or the TLS
 * layer's). Fails the test when the connection succeeds.
 */
export async function refusal(config: ClientConfig): Promise<string> {
  let client: Client | undefined;
  try {
    client = await connect(config);
    // Some refusals only arrive with the first query (e.g. pgbouncer closing after login).
    await client.query("SELECT 1");
  } catch (err) {
    await client?.end().catch(() => undefined);
    return (err as Error).message;
  }
  await client.end().catch(() => undefined);
  throw new Error(
    `expected ${config.user}@${config.database} on port ${config.port} (tls=${config.ssl ? "yes" : "no"}) to be refused, but it logged in and ran a query`,
  );
}

/** Runs `fn` with a fresh connection and closes it. */
export async function withClient<T>(config: ClientConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connect(config);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Closes clients, ignoring the ones already gone. */
export async function endAll(clients: readonly Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
}
