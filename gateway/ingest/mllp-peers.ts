/** Any facility: a peer trusted to send for every source (the demo's loopback). */
export const ANY_FACILITY = '*';

/** Which facilities each sending address may send HL7 for over MLLP; an unlisted address is refused. */
export type MllpPeers = ReadonlyMap<string, ReadonlySet<string>>;

const LOOPBACK = ['127.0.0.1', '::1'];

/**
 * `MLLP_PEERS`: `ip=facility` pairs, comma separated; an address may appear once per facility
 * it relays for. Unset: loopback for every facility in the demo, nobody otherwise.
 */
export function parseMllpPeers(raw: string | undefined, demo: boolean): MllpPeers {
  const peers = new Map<string, Set<string>>();
  const add = (ip: string, facility: string): void => {
    const set = peers.get(ip) ?? new Set<string>();
    set.add(facility);
    peers.set(ip, set);
  };
  if (raw === undefined) {
    if (demo) for (const ip of LOOPBACK) add(ip, ANY_FACILITY);
    return peers;
  }
  for (const pair of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([0-9A-Fa-f.:]+)=([A-Za-z0-9][A-Za-z0-9-]{0,62})$/.exec(pair);
    if (!m) throw new Error(`'${pair}' is not ip=facility`);
    add(m[1], m[2]);
  }
  return peers;
}

/** The facilities a connection from `address` may send for; undefined when it may not connect. */
export function peerFacilities(peers: MllpPeers, address: string | undefined): ReadonlySet<string> | undefined {
  if (!address) return undefined;
  // Dual-stack listeners report IPv4 senders as ::ffff:a.b.c.d.
  return peers.get(address) ?? peers.get(address.replace(/^::ffff:/i, ''));
}
