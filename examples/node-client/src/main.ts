// A TypeScript client of an a2a-grpc server, on stubs generated from the repository's protos:
//   1. SendMessage (unary),
//   2. SendStreamingMessage (server streaming),
//   3. one session (the session binding) carrying two streaming calls at once.
// It prints one JSON line per step and exits 0 only if every step succeeded; any failure is
// printed on stderr and exits 1.
//
//   node dist/main.js HOST:PORT [--api-key KEY] [--require-skill ID ...] [--timeout SECONDS]

import { parseArgs } from "node:util";

import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { SessionService } from "./gen/a2a_grpc/session/v1/session_pb.js";
import {
  A2AService,
  type Part,
  Role,
  type SendMessageRequest,
  SendMessageRequestSchema,
  type StreamResponse,
  type Task,
  TaskState,
} from "./gen/lf/a2a/v1/a2a_pb.js";
import { Session } from "./session.js";

const USAGE = "usage: node dist/main.js HOST:PORT [--api-key KEY] [--require-skill ID ...] [--timeout SECONDS]";
function args() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        "api-key": { type: "string" }, // sent as X-API-Key, if the server asks for one
        "require-skill": { type: "string", multiple: true }, // what the session's Hello requires
        timeout: { type: "string", default: "30" }, // seconds for the whole run
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}
const { values: options, positionals } = args();
const seconds = Number(options.timeout);
if (positionals.length !== 1 || !(seconds > 0)) {
  console.error(USAGE);
  process.exit(2);
}
const address = positionals[0];
const CALL_MS = 10_000; // each call's deadline

// Every call, the session included, also stops when the whole run's deadline passes.
const deadline = AbortSignal.timeout(seconds * 1000);
// Credentials, if the server asks for them: an API key in X-API-Key (header names go lower-case).
const credentials: Record<string, string> = options["api-key"] ? { "x-api-key": options["api-key"] } : {};
// The A2A version every call speaks (a server reads a call without it as 0.3, and refuses it).
const headers = { "a2a-version": "1.0", ...credentials };

function textRequest(text: string): SendMessageRequest {
  return create(SendMessageRequestSchema, {
    message: { messageId: crypto.randomUUID(), role: Role.USER, parts: [{ content: { case: "text", value: text } }] },
  });
}

// The proto's names: protobuf-es drops the TASK_STATE_ prefix, the other languages keep it.
const stateName = (state: TaskState = TaskState.UNSPECIFIED) => `TASK_STATE_${TaskState[state]}`;
const textOf = (parts: Part[] = []) => parts.map((p) => (p.content.case === "text" ? p.content.value : "")).join("");

function showTask(task: Task) {
  return {
    taskId: task.id,
    contextId: task.contextId,
    state: stateName(task.status?.state),
    artifacts: task.artifacts.map((a) => ({ name: a.name, text: textOf(a.parts) })),
  };
}

/** One streamed event, in a few fields. */
function showEvent(event: StreamResponse) {
  const p = event.payload;
  switch (p.case) {
    case "task":
      return { kind: "task", ...showTask(p.value) };
    case "message":
      return { kind: "message", text: textOf(p.value.parts) };
    case "statusUpdate":
      return {
        kind: "status",
        taskId: p.value.taskId,
        state: stateName(p.value.status?.state),
        text: textOf(p.value.status?.message?.parts),
      };
    case "artifactUpdate":
      return {
        kind: "artifact",
        taskId: p.value.taskId,
        artifactId: p.value.artifact?.artifactId,
        name: p.value.artifact?.name,
        text: textOf(p.value.artifact?.parts),
        append: p.value.append,
        lastChunk: p.value.lastChunk,
      };
    default:
      throw new Error("a stream event with no payload");
  }
}

const print = (line: object) => console.log(JSON.stringify(line));
let step = "connect";

async function main(): Promise<void> {
  // gRPC over HTTP/2, plaintext (`a2a-grpc serve` without TLS); use https:// for a TLS server.
  const transport = createGrpcTransport({ baseUrl: `http://${address}` });
  const a2a = createClient(A2AService, transport);
  const call = { headers, signal: deadline, timeoutMs: CALL_MS };

  // 1. SendMessage: the reference agent echoes the text into an artifact and completes the task.
  step = "unary";
  const reply = await a2a.sendMessage(textRequest("hello from node"), call);
  if (reply.payload.case === "task") print({ step, ...showTask(reply.payload.value) });
  else if (reply.payload.case === "message") print({ step, message: textOf(reply.payload.value.parts) });
  else throw new Error("SendMessage answered with neither a task nor a message");

  // 2. SendStreamingMessage: "stream 3" is a task snapshot, WORKING, three artifact chunks, COMPLETED.
  step = "stream";
  const events = [];
  for await (const event of a2a.sendStreamingMessage(textRequest("stream 3"), call)) events.push(showEvent(event));
  print({ step, events });

  // 3. A session: two streaming calls at once over one stream, their frames demultiplexed by call id.
  step = "session";
  const session = await Session.open(
    createClient(SessionService, transport),
    {
      protocolVersions: ["1.0"],
      agentName: "node-client",
      // The skills these calls use: a server without them refuses the Hello, before any call.
      requiredSkills: (options["require-skill"] ?? ["slow", "stream"]).map((id) => ({ id })),
      heartbeatInterval: durationFromMs(5_000),
      metadata: credentials, // checked once, for all the session's calls
    },
    deadline,
  );
  try {
    // "slow 1" reports progress for a second; "stream 4" is over in a moment, in the middle of it.
    const texts = new Map([
      [1n, "slow 1"],
      [2n, "stream 4"],
    ]);
    const calls = new Map<bigint, { text: string; events: object[]; status?: { code: number; message: string } }>();
    for (const [callId, text] of texts) {
      calls.set(callId, { text, events: [] });
      session.start(callId, { case: "sendStreamingMessage", value: textRequest(text) }, CALL_MS);
    }
    const order: string[] = []; // the frames as they came, e.g. "1:event", "2:end"
    let running = calls.size;
    for await (const item of session.incoming()) {
      const call = calls.get(item.callId);
      if (call === undefined) throw new Error(`a frame for call ${item.callId}, which this client never started`);
      if (call.status !== undefined) throw new Error(`a frame for call ${item.callId} after its end`);
      order.push(`${item.callId}:${item.kind}`);
      if (item.kind === "event") {
        if (item.event.payload.case !== "streamResponse") throw new Error(`call ${item.callId}: not a stream event`);
        call.events.push({ seq: Number(item.event.seq), ...showEvent(item.event.payload.value) });
        if (!item.event.last) continue;
        call.status = { code: 0, message: "" }; // `last`: the call ended OK (code 0) with it
      } else {
        call.status = { code: item.end.status?.code ?? 0, message: item.end.status?.message ?? "" };
      }
      if (call.status.code !== 0) {
        throw new Error(`call ${item.callId} (${call.text}) ended with ${Code[call.status.code]}: ${call.status.message}`);
      }
      if (--running === 0) break;
    }
    if (running > 0) throw new Error(`the session ended (${session.goodbye ?? "no Goodbye"}) with calls still running`);
    await session.close();
    const welcome = session.welcome;
    print({
      step,
      sessionId: welcome.sessionId,
      agentName: welcome.agentName,
      protocolVersion: welcome.protocolVersion,
      calls: Object.fromEntries([...calls].map(([id, call]) => [String(id), call])),
      order,
      goodbye: session.goodbye ?? null,
    });
  } catch (err) {
    session.abort();
    throw err;
  }
}

main().catch((err: unknown) => {
  const why = err instanceof ConnectError ? `${Code[err.code]}: ${err.rawMessage}` : String(err);
  console.error(`node-client: ${step} failed against ${address}: ${why}`);
  process.exitCode = 1;
});
