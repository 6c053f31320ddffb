// bench/colyseus/bot.js - the load generator of bench/colyseus_bench.sh:
// rooms of bots (colyseus.js clients over WebSocket) against
// bench/colyseus/server.js, the workload of moongate-room-bot's state sync
// (docs/BENCHMARKS.md, "Rooms against Colyseus (issue 15)").
//
//   node bot.js --server ws://127.0.0.1:PORT --server-pid PID
//               [--room state|bcast] [--clients 800] [--room-size 8]
//               [--rate 20] [--seconds 20] [--procs 1] [--connect-rate 400]
//               [--drain 1] [--warmup 2] [--ca CERT.pem]
//
// --server wss://127.0.0.1:PORT: over TLS (server.js with --tls-cert);
// --ca names the certificate to trust besides Node's own roots (the
// workers get it as NODE_EXTRA_CA_CERTS, which colyseus.js's matchmaking
// requests and its ws WebSocket both use): the certificate is verified,
// as a production client would, against that CA.
//
// This process forks --procs workers (each a copy of this file with
// BOT_WORKER set) and gives each a share of the rooms; it reads the
// server's CPU from /proc/PID/stat over the run phase and prints the
// RESULT line. A worker:
//   connect  for each of its rooms, bot 8k creates the room (client.create)
//            and, once created, bots 8k+1..8k+7 join it by id
//            (client.joinById): the grouping does not depend on the order
//            the server takes the joins in; at --connect-rate / procs
//            joins a second, bounded by 60 s;
//   warmup   --warmup seconds (2) of the run's sends, not measured;
//   run      --seconds, from a start time the parent gives every worker:
//            every seated bot sends its 32-byte state --rate times a
//            second (room.sendBytes(1, ...): t f64 | idx u32 | seq u32 |
//            a f64 | b f64; t is CLOCK_MONOTONIC in us, shared by every
//            process on the machine; every field but idx changes each
//            send, as a moving player's would), the sends of a worker's
//            bots spread evenly over the period by a 1 ms timer, the
//            members of a room 1 / (rate x room-size) apart;
//   drain    --drain seconds for what is still on the way;
//   report   its counters and latency histogram to the parent; leave.
// What arrives: room "state": the Schema patches (room.onStateChange):
// after each, every player whose seq is newer than the last seen is one
// entry received; room "bcast": bytes messages of type 2, count x 32
// bytes. Latency: now - t at the callback, into a histogram (10 us
// buckets). A bot's own state (the Schema state is the room's, shared)
// counts in self=, not in received. expected = sends x (members - 1),
// lost = expected - received (states superseded before the room's tick,
// as moongate's relay drops them, or lost).
// Bytes per player: what the client's TCP socket read and wrote over the
// run phase, summed over the seated bots, divided by them and by the
// run's length: over ws://, net.Socket bytesRead / bytesWritten under the
// ws WebSocket (WebSocket frames, no TCP/IP headers); over wss://, the
// same counters of the TCP handle under the TLSSocket (its _handle is the
// TLSWrap, whose _parent is the TCP stream: TLS records, each 22 bytes
// over its WebSocket bytes in TLS 1.3 with an AEAD cipher), not the
// TLSSocket's own (the decrypted WebSocket bytes, printed as
// in_ws_bytes_per_s_per_player / out_ws_bytes_per_s_per_player).
// transport= (ws or wss), tls= and cipher= (the first socket's protocol
// and negotiated suite, "none" over ws://) say what was measured. tcp_segs_per_s_per_player:
// the machine's TCP segments over the run phase (/proc/net/snmp OutSegs;
// on loopback each segment between bots and server once, both directions,
// bare ACKs included) per player per second: what the headers cost on a
// wire (52 bytes each with IPv4 and TCP timestamps). CPU: utime + stime over
// the run phase as a fraction of one core; bot_cpu sums the workers,
// bot_cpu_max is the busiest one.
"use strict";

const { fork, spawnSync } = require("child_process");
const fs = require("fs");

const HDR = 32;
const BUCKET_US = 10;
const NBUCKETS = 100000; // 0..1 s; above goes into the last bucket

function parseArgs(argv) {
	const o = {
		server: null, serverPid: 0, room: "state", clients: 800, roomSize: 8,
		rate: 20, seconds: 20, procs: 1, connectRate: 400, drain: 1, warmup: 2,
		ca: "",
	};
	const names = {
		"--server": ["server", String], "--server-pid": ["serverPid", Number],
		"--room": ["room", String], "--clients": ["clients", Number],
		"--room-size": ["roomSize", Number], "--rate": ["rate", Number],
		"--seconds": ["seconds", Number], "--procs": ["procs", Number],
		"--connect-rate": ["connectRate", Number], "--drain": ["drain", Number],
		"--warmup": ["warmup", Number], "--ca": ["ca", String],
	};
	for (let i = 2; i < argv.length; i++) {
		const n = names[argv[i]];
		if (!n || i + 1 >= argv.length) {
			console.error(`colyseus-bot: unknown or incomplete option ${argv[i]}`);
			process.exit(2);
		}
		o[n[0]] = n[1](argv[++i]);
	}
	if (!o.server) {
		console.error("colyseus-bot: --server ws://HOST:PORT is required");
		process.exit(2);
	}
	return o;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const cpuS = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

// ---- the parent ----------------------------------------------------------

function procCpuS(pid) {
	try {
		const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
		const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
		// fields 14 and 15 of stat (utime, stime) are 11 and 12 here
		return (Number(f[11]) + Number(f[12])) / clkTck();
	} catch (e) {
		return NaN;
	}
}
let _clk = 0;
function clkTck() {
	if (!_clk) {
		const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
		_clk = Number(r.stdout) || 100;
	}
	return _clk;
}
function procRssKb(pid) {
	try {
		const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
		return m ? Number(m[1]) : -1;
	} catch (e) {
		return -1;
	}
}

// TCP segments sent by the whole machine (/proc/net/snmp Tcp OutSegs): on
// loopback every segment between the bots and the server, either way,
// data or bare ACK, once
function tcpOutSegs() {
	try {
		const l = fs.readFileSync("/proc/net/snmp", "utf8").split("\n").filter((x) => x.startsWith("Tcp:"));
		const k = l[0].split(/\s+/), v = l[1].split(/\s+/);
		return Number(v[k.indexOf("OutSegs")]);
	} catch (e) {
		return NaN;
	}
}

function pct(hist, total, q) {
	if (total === 0)
		return NaN;
	const want = Math.ceil(total * q);
	let acc = 0;
	for (let i = 0; i < hist.length; i++) {
		acc += hist[i];
		if (acc >= want)
			return (i + 1) * BUCKET_US / 1000; // the bucket's upper edge, ms
	}
	return NaN;
}

function parent(o) {
	const nrooms = Math.ceil(o.clients / o.roomSize);
	const procs = Math.max(1, Math.min(o.procs, nrooms));
	const workers = [];
	let ready = 0, reported = 0, exited = 0;
	const reports = [];
	const bound = setTimeout(() => {
		console.error("colyseus-bot: bounded: the run did not finish in time");
		for (const w of workers)
			w.kill("SIGKILL");
		process.exit(1);
	}, (90 + o.seconds + o.drain + 30) * 1000);
	bound.unref();
	let r0 = 0;
	for (let w = 0; w < procs; w++) {
		const n = Math.floor(nrooms / procs) + (w < nrooms % procs ? 1 : 0);
		const child = fork(__filename, process.argv.slice(2), {
			// BOT_NODE_ARGS: node options for the workers (e.g. --cpu-prof)
			execArgv: process.env.BOT_NODE_ARGS ? process.env.BOT_NODE_ARGS.split(" ") : process.execArgv,
			env: Object.assign({}, process.env, {
				BOT_WORKER: String(w), BOT_ROOM0: String(r0), BOT_NROOMS: String(n),
			}, o.ca ? { NODE_EXTRA_CA_CERTS: o.ca } : {}),
		});
		r0 += n;
		workers.push(child);
		child.on("message", (m) => {
			if (m.type === "ready") {
				console.error(`colyseus-bot: worker ${w}: ${m.seated} seated, ${m.failed} failed, in ${m.s.toFixed(1)} s`);
				if (++ready === procs)
					start();
			} else if (m.type === "report") {
				reports.push(m);
				if (++reported === procs)
					finish();
			}
		});
		child.on("exit", (code) => {
			exited++;
			if (code && reported < procs) {
				console.error(`colyseus-bot: worker ${w} exited with ${code} before its report`);
				for (const c of workers)
					c.kill("SIGKILL");
				process.exit(1);
			}
		});
	}
	let t0 = 0, cpu0 = NaN, cpu1 = NaN, rss = -1, segs0 = NaN, segs1 = NaN;
	function start() {
		// every worker starts sending at the same instant, the run phase
		// --warmup seconds later (node's JIT and the rooms' first ticks)
		t0 = nowUs() + 300000 + o.warmup * 1e6;
		for (const c of workers)
			c.send({ type: "start", t0, warmupUs: o.warmup * 1e6 });
		setTimeout(() => {
			cpu0 = o.serverPid ? procCpuS(o.serverPid) : NaN;
			segs0 = tcpOutSegs();
		},
			Math.max(0, (t0 - nowUs()) / 1000));
		setTimeout(() => {
			cpu1 = o.serverPid ? procCpuS(o.serverPid) : NaN;
			segs1 = tcpOutSegs();
			rss = o.serverPid ? procRssKb(o.serverPid) : -1;
		}, Math.max(0, (t0 + o.seconds * 1e6 - nowUs()) / 1000));
	}
	function finish() {
		const sum = (k) => reports.reduce((a, r) => a + r[k], 0);
		const hist = new Float64Array(NBUCKETS);
		let maxUs = 0;
		for (const r of reports) {
			for (let i = 0; i < NBUCKETS; i++)
				hist[i] += r.hist[i];
			maxUs = Math.max(maxUs, r.maxUs);
		}
		const seated = sum("seated"), sent = sum("sent"), expected = sum("expected");
		const received = sum("received");
		const el = o.seconds;
		const per = seated ? 1 / (seated * el) : 0;
		const serverCpu = (cpu1 - cpu0) / el;
		const botCpu = sum("cpu") / el;
		const botCpuMax = Math.max(...reports.map((r) => r.cpu)) / el;
		const usPerUpdate = sent ? (cpu1 - cpu0) * 1e6 / sent : NaN;
		const lost = expected - received;
		const ok = seated === o.clients && sum("bad") === 0 && sum("closed") === 0 &&
			received > 0 && sum("sendErr") === 0;
		const f = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
		const tr = /^wss:/.test(o.server) ? "wss" : "ws";
		const tls = reports.find((r) => r.tls) || {};
		console.log(`RESULT bench=colyseus_rooms room=${o.room} transport=${tr} ` +
			`tls=${tls.tls || "none"} cipher=${tls.cipher || "none"} rooms=${nrooms} bots=${o.clients} ` +
			`rate=${o.rate} seconds=${o.seconds} server_cpu=${f(serverCpu, 3)} ` +
			`us_per_update=${f(usPerUpdate, 2)} ` +
			`in_bytes_per_s_per_player=${f(sum("inBytes") * per, 0)} ` +
			`out_bytes_per_s_per_player=${f(sum("outBytes") * per, 0)} ` +
			`in_ws_bytes_per_s_per_player=${f(sum("inWs") * per, 0)} ` +
			`out_ws_bytes_per_s_per_player=${f(sum("outWs") * per, 0)} ` +
			`p50_ms=${f(pct(hist, received, 0.5), 3)} p99_ms=${f(pct(hist, received, 0.99), 3)} ` +
			`max_ms=${f(maxUs / 1000, 3)} lost=${lost} ` +
			`delivered=${f(expected ? received / expected : NaN, 4)} ` +
			`bot_cpu=${f(botCpu, 3)} bot_cpu_max=${f(botCpuMax, 3)} procs=${procs} ` +
			`sent=${sent} planned=${sum("planned")} expected=${expected} received=${received} ` +
			`self=${sum("self")} bad=${sum("bad")} seated=${seated} failed=${sum("failed")} ` +
			`closed=${sum("closed")} server_rss_kb=${rss} ` +
			`tcp_segs_per_s_per_player=${f((segs1 - segs0) * per, 1)}`);
		// the workers leave their rooms and exit by themselves; bounded
		const wait = setInterval(() => {
			if (exited === procs) {
				clearInterval(wait);
				process.exit(ok ? 0 : 1);
			}
		}, 50);
		setTimeout(() => process.exit(ok ? 0 : 1), 5000).unref();
	}
}

// ---- a worker ------------------------------------------------------------

function worker(o) {
	const { Client } = require("colyseus.js");
	const client = new Client(o.server);
	const room0 = Number(process.env.BOT_ROOM0), nrooms = Number(process.env.BOT_NROOMS);
	const RS = o.roomSize;
	const bots = [];
	const byIdx = new Map();
	const rooms = [];
	for (let r = room0; r < room0 + nrooms; r++) {
		const members = [];
		for (let m = 0; m < RS; m++) {
			const idx = r * RS + m;
			if (idx >= o.clients)
				break;
			const b = {
				idx, room: r, conn: null, sock: null, tcp: null, seated: false, failed: false,
				seq: 0, seq0: 0, last: new Float64Array(RS), selfLast: 0, in0: 0, out0: 0,
				inWs0: 0, outWs0: 0,
			};
			bots.push(b);
			byIdx.set(idx, b);
			members.push(b);
		}
		rooms.push({ r, members, id: null });
	}
	let seated = 0, failed = 0, closed = 0, sent = 0, planned = 0, sendErr = 0;
	let expected = 0, received = 0, self = 0, bad = 0, maxUs = 0;
	let counting = false, running = false;
	const hist = new Float64Array(NBUCKETS);
	const tStart = Date.now();
	const tlsInfo = { tls: "", cipher: "" };

	function entry(b, now, t, idx, seq) {
		if (seq === 0)
			return; // a member that has not sent yet
		if (Math.floor(idx / RS) !== b.room) {
			bad++;
			return;
		}
		// a state sent in the run phase: seq past the sender's seq0
		const inRun = counting && seq > byIdx.get(idx).seq0;
		if (idx === b.idx) {
			if (seq > b.selfLast) {
				b.selfLast = seq;
				if (inRun)
					self++;
			}
			return;
		}
		const slot = idx % RS;
		if (seq <= b.last[slot])
			return;
		b.last[slot] = seq;
		if (!inRun)
			return;
		received++;
		const us = now - t;
		if (us > maxUs)
			maxUs = us;
		let k = Math.floor(us / BUCKET_US);
		if (k < 0)
			k = 0;
		if (k >= NBUCKETS)
			k = NBUCKETS - 1;
		hist[k]++;
	}

	function attach(b, room) {
		b.conn = room;
		b.sock = room.connection.transport.ws._socket;
		// the counters of the TCP socket: over TLS, the TCP stream handle
		// under the TLSWrap (TLS records); over ws://, the socket itself
		b.tcp = b.sock.encrypted ? b.sock._handle && b.sock._handle._parent : b.sock;
		if (!b.tcp || typeof b.tcp.bytesRead !== "number") {
			console.error(`colyseus-bot: bot ${b.idx}: no TCP byte counters under the TLS socket`);
			process.exit(1);
		}
		if (b.sock.encrypted && !tlsInfo.tls) {
			const c = b.sock.getCipher();
			tlsInfo.tls = b.sock.getProtocol();
			tlsInfo.cipher = c && c.standardName;
		}
		b.seated = true;
		seated++;
		if (o.room === "state") {
			room.onStateChange((state) => {
				const now = nowUs();
				state.players.forEach((p) => entry(b, now, p.t, p.idx, p.seq));
			});
		} else {
			room.onMessage(2, (bytes) => {
				const now = nowUs();
				const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
				if (bytes.byteLength % HDR) {
					bad++;
					return;
				}
				for (let off = 0; off < bytes.byteLength; off += HDR)
					entry(b, now, dv.getFloat64(off, true), dv.getUint32(off + 8, true),
						dv.getUint32(off + 12, true));
			});
		}
		room.onLeave(() => {
			if (running)
				closed++;
		});
		room.onError((code, msg) => console.error(`colyseus-bot: bot ${b.idx}: error ${code} ${msg}`));
	}

	// the connect phase: joins paced at connectRate / procs a second
	const pace = 1000 / Math.max(1, o.connectRate / o.procs);
	let pending = 0, done = 0;
	const queue = [];
	for (const rm of rooms)
		queue.push({ rm, b: rm.members[0], leader: true });
	function next() {
		if (queue.length === 0)
			return;
		const job = queue.shift();
		pending++;
		const p = job.leader ? client.create(o.room, {}) : client.joinById(job.rm.id, {});
		p.then((room) => {
			attach(job.b, room);
			if (job.leader) {
				job.rm.id = room.roomId;
				for (const m of job.rm.members.slice(1))
					queue.push({ rm: job.rm, b: m, leader: false });
			}
		}, (err) => {
			failed++;
			job.b.failed = true;
			console.error(`colyseus-bot: bot ${job.b.idx}: ${job.leader ? "create" : "join"} failed: ${err && err.message}`);
			if (job.leader)
				for (const m of job.rm.members.slice(1)) {
					failed++;
					m.failed = true;
				}
		}).finally(() => {
			pending--;
			done++;
		});
	}
	const total = bots.length;
	const connTimer = setInterval(() => {
		next();
		if (seated + failed >= total) {
			clearInterval(connTimer);
			process.send({ type: "ready", seated, failed, s: (Date.now() - tStart) / 1000 });
		} else if (Date.now() - tStart > 60000) {
			clearInterval(connTimer);
			console.error(`colyseus-bot: connect phase bounded at 60 s: ${seated} seated of ${total}`);
			process.send({ type: "ready", seated, failed, s: (Date.now() - tStart) / 1000 });
		}
	}, pace);

	// the run: the send order interleaves the rooms (position p: room p % n,
	// member p / n), so a room's members are 1 / (rate x RS) apart
	process.on("message", (m) => {
		if (m.type !== "start")
			return;
		const order = [];
		for (let k = 0; k < RS; k++)
			for (const rm of rooms)
				if (rm.members[k] && rm.members[k].seated)
					order.push(rm.members[k]);
		const n = order.length;
		const t0 = m.t0, t1 = t0 + o.seconds * 1e6, ts = t0 - m.warmupUs;
		let sending = false;
		const periodUs = 1e6 / o.rate;
		const buf = Buffer.alloc(HDR);
		let issued = 0, cpu0 = 0, cpuRun = 0;
		const members = (b) => rooms[b.room - room0].members.filter((x) => x.seated).length;
		const fanout = new Map();
		for (const b of order)
			fanout.set(b, members(b) - 1);
		const snapshot = () => {
			for (const b of order) {
				b.in0 = b.tcp.bytesRead;
				b.out0 = b.tcp.bytesWritten;
				b.inWs0 = b.sock.bytesRead;
				b.outWs0 = b.sock.bytesWritten;
			}
		};
		let inBytes = 0, outBytes = 0, inWs = 0, outWs = 0;
		const tick = () => {
			const now = nowUs();
			if (!sending) {
				if (now < ts)
					return;
				sending = true;
			}
			if (!running && now >= t0) {
				running = true;
				counting = true;
				snapshot();
				for (const b of order)
					b.seq0 = b.seq;
				cpu0 = cpuS();
			}
			const until = Math.min(now, t1);
			const due = n ? Math.floor((until - ts) / periodUs * n) + 1 : 0;
			while (issued < due) {
				const b = order[issued % n];
				issued++;
				if (running)
					planned++;
				const seq = ++b.seq;
				const t = nowUs();
				buf.writeDoubleLE(t, 0);
				buf.writeUInt32LE(b.idx, 8);
				buf.writeUInt32LE(seq, 12);
				const a = seq * 0.25 + b.idx;
				buf.writeDoubleLE(a, 16);
				buf.writeDoubleLE(-a, 24);
				try {
					b.conn.sendBytes(1, buf);
					if (running) {
						sent++;
						expected += fanout.get(b);
					}
				} catch (e) {
					sendErr++;
				}
			}
			if (now >= t1) {
				clearInterval(sendTimer);
				cpuRun = cpuS() - cpu0;
				for (const b of order) {
					inBytes += b.tcp.bytesRead - b.in0;
					outBytes += b.tcp.bytesWritten - b.out0;
					inWs += b.sock.bytesRead - b.inWs0;
					outWs += b.sock.bytesWritten - b.outWs0;
				}
				setTimeout(report, o.drain * 1000);
			}
		};
		const sendTimer = setInterval(tick, 1);
		function report() {
			counting = false;
			running = false;
			process.send({
				type: "report", seated, failed, closed, sent, planned, sendErr, expected, received,
				self, bad, maxUs, inBytes, outBytes, inWs, outWs, cpu: cpuRun, hist: Array.from(hist),
				tls: tlsInfo.tls, cipher: tlsInfo.cipher,
			});
			let left = 0;
			for (const b of bots)
				if (b.seated) {
					left++;
					b.conn.leave(true).finally(() => {
						if (--left === 0)
							process.exit(0);
					});
				}
			setTimeout(() => process.exit(0), 2000).unref();
			if (left === 0)
				process.exit(0);
		}
	});
}

const opts = parseArgs(process.argv);
if (process.env.BOT_WORKER !== undefined)
	worker(opts);
else
	parent(opts);
