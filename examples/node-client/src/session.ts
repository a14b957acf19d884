// A small client of the a2a-grpc session binding (a2a_grpc.session.v1.SessionService.Connect):
// one bidirectional stream that carries many A2A calls at once. The rules it follows are the
// comments of protos/a2a_grpc/session/v1/session.proto; docs/session-binding.md explains them.

import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";

import {
  type CallEnd,
  type CallEvent,
  type CallSchema,
  type ClientFrame,
  ClientFrameSchema,
  type HelloSchema,
  type ServerFrame,
  ServerFrameSchema,
  type SessionService,
  type Welcome,
} from "./gen/a2a_grpc/session/v1/session_pb.js";

/** What the session delivers to the application: one call's event, or its end. */
export type Incoming =
  | { callId: bigint; kind: "event"; event: CallEvent }
  | { callId: bigint; kind: "end"; end: CallEnd };

/** The frames towards the server: the request side of the bidi call reads them as they are pushed. */
class Outbox implements AsyncIterable<ClientFrame> {
  private queue: ClientFrame[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  push(frame: MessageInitShape<typeof ClientFrameSchema>): void {
    if (this.closed) return; // the session is closing: nothing more goes out
    this.queue.push(create(ClientFrameSchema, frame));
    this.wake?.();
  }

  /** Half-closes the stream once what was pushed is sent. */
  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ClientFrame> {
    for (;;) {
      const frame = this.queue.shift();
      if (frame !== undefined) {
        yield frame;
      } else if (this.closed) {
        return;
      } else {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    }
  }
}

export class Session {
  /** Why the server ended the session, if it sent a Goodbye. */
  goodbye: string | undefined;
  /** The server drains (a Goodbye with going_away): start no new call here, open a new session. */
  goingAway = false;
  /** The server's counted frames (CallEvent, CallEnd, Chunk) received: acknowledged to it. */
  private received = 0n;
  private heartbeats = 0n;
  private readonly beating: NodeJS.Timeout;
  private readonly joining = new Map<bigint, Uint8Array[]>();

  private constructor(
    private readonly outbox: Outbox,
    private readonly frames: AsyncIterator<ServerFrame>,
    readonly welcome: Welcome,
  ) {
    // Both sides beat every negotiated interval; a silent client would be declared dead after
    // welcome.missedHeartbeats intervals.
    const interval = welcome.heartbeatInterval ? durationMs(welcome.heartbeatInterval) : 15_000;
    this.beating = setInterval(() => {
      this.heartbeats += 1n;
      this.outbox.push({
        frame: { case: "heartbeat", value: { count: this.heartbeats, received: this.received } },
      });
    }, interval);
    this.beating.unref(); // never the reason the process stays up
  }

  /** Opens a session: the Hello goes first, alone; the server answers with a Welcome or ends the
   * stream with an error status saying why (missing skills, versions, credentials). */
  static async open(
    client: Client<typeof SessionService>,
    hello: MessageInitShape<typeof HelloSchema>,
    signal: AbortSignal,
  ): Promise<Session> {
    const outbox = new Outbox();
    outbox.push({ frame: { case: "hello", value: hello } });
    // No deadline of its own (a session lives as long as it is used): `signal` ends it.
    const frames = client.connect(outbox, { signal, timeoutMs: 0 })[Symbol.asyncIterator]();
    try {
      const first = await frames.next();
      if (first.done || first.value.frame.case !== "welcome") {
        throw new Error(`the server answered the Hello with ${first.done ? "nothing" : first.value.frame.case}`);
      }
      return new Session(outbox, frames, first.value.frame.value);
    } catch (err) {
      outbox.close();
      throw err;
    }
  }

  /** Starts one call under `callId` (above 0, unused by a running call). */
  start(callId: bigint, request: MessageInitShape<typeof CallSchema>["request"], timeoutMs: number): void {
    this.outbox.push({
      frame: { case: "call", value: { callId, request, timeout: durationFromMs(timeoutMs) } },
    });
  }

  /** The calls' events and ends as they arrive, every call's mixed in wire order; ends when the
   * server ends the stream or says Goodbye. Credit goes back as the application takes each event. */
  async *incoming(): AsyncGenerator<Incoming> {
    for (;;) {
      const next = await this.frames.next();
      if (next.done) return;
      // A batch is several frames sent in one write: read in order, as if each had come alone.
      const frames = next.value.frame.case === "batch" ? next.value.frame.value.frames : [next.value];
      for (const frame of frames) {
        const item = this.read(frame);
        if (item === "goodbye") return;
        if (item === undefined) continue;
        yield item;
        // (A joined event's chunks got their credit as they came.)
        if (frame.frame.case === "event") this.credit(item.callId, toBinary(ServerFrameSchema, frame).byteLength);
      }
    }
  }

  private read(frame: ServerFrame): Incoming | "goodbye" | undefined {
    const f = frame.frame;
    switch (f.case) {
      case "event":
        this.received += 1n;
        return { callId: f.value.callId, kind: "event", event: f.value };
      case "end":
        this.received += 1n;
        return { callId: f.value.callId, kind: "end", end: f.value };
      case "chunk": {
        // A CallEvent larger than the frame limit comes in pieces: join them, read the frame.
        this.received += 1n;
        const { callId, data, last } = f.value;
        const pieces = [...(this.joining.get(callId) ?? []), data];
        this.credit(callId, toBinary(ServerFrameSchema, frame).byteLength);
        if (!last) {
          this.joining.set(callId, pieces);
          return undefined;
        }
        this.joining.delete(callId);
        return this.joined(Buffer.concat(pieces));
      }
      case "goodbye":
        if (f.value.goingAway) {
          // The server drains: the running calls go on to their ends, new ones belong elsewhere.
          this.goingAway = true;
          return undefined;
        }
        this.goodbye = f.value.reason || "(no reason given)";
        return "goodbye";
      default:
        return undefined; // heartbeat (a sign of life) or credit (room for our few Call frames)
    }
  }

  private joined(bytes: Uint8Array): Incoming {
    const frame = fromBinary(ServerFrameSchema, bytes);
    if (frame.frame.case !== "event") throw new Error(`joined chunks hold a ${frame.frame.case}, not a CallEvent`);
    return { callId: frame.frame.value.callId, kind: "event", event: frame.frame.value };
  }

  /** Room for one more frame of `callId` and of the session (a busy client would give it back in
   * larger amounts: half a window at a time). */
  private credit(callId: bigint, bytes: number): void {
    const received = this.received;
    this.outbox.push({
      frame: {
        case: "batch",
        value: {
          frames: [
            { frame: { case: "credit", value: { callId, frames: 1, bytes: BigInt(bytes), received } } },
            { frame: { case: "credit", value: { callId: 0n, frames: 1, bytes: BigInt(bytes), received } } },
          ],
        },
      },
    });
  }

  /** Ends the session cleanly: a Goodbye, then half-close, then read the stream to its end (the
   * server answers with its own Goodbye and an OK status). */
  async close(): Promise<void> {
    clearInterval(this.beating);
    this.outbox.push({ frame: { case: "goodbye", value: { reason: "done" } } });
    this.outbox.close();
    for (;;) {
      const next = await this.frames.next();
      if (next.done) return;
      if (next.value.frame.case === "goodbye") this.goodbye = next.value.frame.value.reason;
    }
  }

  /** Drops the stream after a failure (no Goodbye: there is nothing clean left to say). */
  abort(): void {
    clearInterval(this.beating);
    this.outbox.close();
    this.frames.return?.().catch(() => undefined); // cancels the call
  }
}
