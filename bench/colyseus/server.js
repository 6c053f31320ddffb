// bench/colyseus/server.js - the Colyseus peer of bench/room_bench.sh's state
// sync mode (docs/BENCHMARKS.md, "Rooms against Colyseus (issue 15)").
//
//   node server.js [--port 0] [--host 127.0.0.1]
//                  [--tls-cert FILE --tls-key FILE]
//
// Prints "colyseus: ready PORT" on stdout once listening (with TLS:
// "colyseus: ready PORT tls"); SIGTERM or SIGINT ends it. With --tls-cert
// and --tls-key (PEM; COLYSEUS_TLS_CERT and COLYSEUS_TLS_KEY in the
// environment do the same) it listens with Node's https server, TLS 1.3
// only, with the cipher suites Node offers by default (the client's
// preference picks one; the bot prints which): clients connect with
// wss://, as a production Colyseus behind TLS. bench/colyseus_bench.sh
// makes a self-signed certificate for 127.0.0.1 per run (openssl req)
// in its temp dir. Installed by bench/colyseus_bench.sh into build/colyseus with
// the versions of package.json (Colyseus 0.16: the last line that runs on
// Node 20; 0.17 and later need Node 22).
//
// The workload: rooms of 8 players; each player sends its 32-byte state
// 20 times a second (a bytes message, type 1: t f64 | idx u32 | seq u32 |
// a f64 | b f64, little endian; t is the sender's CLOCK_MONOTONIC in us);
// the room sends every member the newest state of each member, 20 times a
// second. Two rooms, the same workload, two Colyseus idioms:
//
//   "state"  (the default, Colyseus's normal way): the room's Schema state
//            holds a MapSchema of players, one Player per member with the
//            fields of the state; a message sets the sender's fields; the
//            framework's patch loop (patchRate 50 ms, 20 Hz, its default)
//            encodes what changed since the last patch once and sends the
//            same delta to every member. Newest wins by construction, as
//            in moongate's relay. A member receives its own state too
//            (the state is shared; filtering it per client would take a
//            StateView, which Colyseus documents for hidden information,
//            not for this).
//   "bcast"  (hand-written relay): the room keeps the newest 32 bytes of
//            each member and, in its simulation interval (50 ms), sends
//            the states that changed since the last tick as one bytes
//            message (type 2: count x 32 bytes) with broadcastBytes, to
//            every member (its own entry included: one encoding for the
//            room, as broadcast does).
"use strict";

const fs = require("fs");
const http = require("http");
const https = require("https");
const { Server, Room } = require("@colyseus/core");
const { WebSocketTransport } = require("@colyseus/ws-transport");
const { Schema, MapSchema, defineTypes } = require("@colyseus/schema");

const STATE_LEN = 32;
const TICK_MS = 50;

class Player extends Schema {
	constructor() {
		super();
		this.t = 0;
		this.idx = 0;
		this.seq = 0;
		this.a = 0;
		this.b = 0;
	}
}
defineTypes(Player, { t: "float64", idx: "uint32", seq: "uint32", a: "float64", b: "float64" });

class RoomState extends Schema {
	constructor() {
		super();
		this.players = new MapSchema();
	}
}
defineTypes(RoomState, { players: { map: Player } });

class StateRoom extends Room {
	onCreate() {
		this.maxClients = 8;
		this.patchRate = TICK_MS;
		this.setState(new RoomState());
		this.onMessage(1, (client, buf) => {
			const p = client.userData;
			if (!p || buf.byteLength !== STATE_LEN)
				return;
			const dv = new DataView(buf.buffer, buf.byteOffset, STATE_LEN);
			p.t = dv.getFloat64(0, true);
			p.idx = dv.getUint32(8, true);
			p.seq = dv.getUint32(12, true);
			p.a = dv.getFloat64(16, true);
			p.b = dv.getFloat64(24, true);
		});
	}
	onJoin(client) {
		const p = new Player();
		client.userData = p;
		this.state.players.set(client.sessionId, p);
	}
	onLeave(client) {
		this.state.players.delete(client.sessionId);
	}
}

class BroadcastRoom extends Room {
	onCreate() {
		this.maxClients = 8;
		this.latest = new Map(); // sessionId -> the newest 32 bytes, or null once sent
		this.onMessage(1, (client, buf) => {
			if (buf.byteLength !== STATE_LEN)
				return;
			this.latest.set(client.sessionId, Buffer.from(buf)); // a copy: buf is the socket's
		});
		this.setSimulationInterval(() => this.tick(), TICK_MS);
	}
	tick() {
		let n = 0;
		for (const v of this.latest.values())
			if (v)
				n++;
		if (n === 0)
			return;
		const out = Buffer.allocUnsafe(n * STATE_LEN);
		let off = 0;
		for (const [k, v] of this.latest) {
			if (!v)
				continue;
			v.copy(out, off);
			off += STATE_LEN;
			this.latest.set(k, null);
		}
		this.broadcastBytes(2, out);
	}
	onLeave(client) {
		this.latest.delete(client.sessionId);
	}
}

function arg(name, def) {
	const i = process.argv.indexOf(name);
	return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const tlsCert = arg("--tls-cert", process.env.COLYSEUS_TLS_CERT || "");
const tlsKey = arg("--tls-key", process.env.COLYSEUS_TLS_KEY || "");
if (!tlsCert !== !tlsKey) {
	console.error("colyseus: --tls-cert and --tls-key go together");
	process.exit(2);
}
const httpServer = tlsCert ?
	https.createServer({
		cert: fs.readFileSync(tlsCert), key: fs.readFileSync(tlsKey),
		minVersion: "TLSv1.3",
	}) :
	http.createServer();
const gameServer = new Server({
	transport: new WebSocketTransport({ server: httpServer }),
	greet: false,
});
gameServer.define("state", StateRoom);
gameServer.define("bcast", BroadcastRoom);

gameServer.listen(Number(arg("--port", "0")), arg("--host", "127.0.0.1")).then(() => {
	console.log(`colyseus: ready ${httpServer.address().port}${tlsCert ? " tls" : ""}`);
}, (err) => {
	console.error(`colyseus: cannot listen: ${err && err.message}`);
	process.exit(1);
});

// SIGTERM and SIGINT: Colyseus's own handlers (Server's default
// gracefullyShutdown) disconnect every client and exit.
