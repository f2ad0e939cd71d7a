// js-http: a wasi:http/incoming-handler 0.2 component built by componentize-js (StarlingMonkey,
// that is SpiderMonkey inside). One of the test images that check the shims serve HTTP
// components from other toolchains than Rust's (issue #15). Every request is answered 200
// `hello from javascript`; the path /trap throws, which traps the instance (the handler has no
// error to return), so the host answers 500.
//
// The handler is exported by hand rather than through StarlingMonkey's `fetch` event: that
// event is bound to the wasi:http version built into componentize-js 0.23.0's engine (0.2.10),
// and the installed packages ship no WIT of that version, only 0.2.12 (jco's).

import {
  Fields,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
} from "wasi:http/types@0.2.12";

const encoder = new TextEncoder();
const BODY = encoder.encode("hello from javascript\n");

export const incomingHandler = {
  handle(request, responseOut) {
    if (request.pathWithQuery() === "/trap") {
      throw new Error("js-http: trap requested");
    }
    const response = new OutgoingResponse(
      Fields.fromList([["content-type", encoder.encode("text/plain")]]),
    );
    const body = response.body();
    ResponseOutparam.set(responseOut, { tag: "ok", val: response });
    const stream = body.write();
    stream.blockingWriteAndFlush(BODY);
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  },
};
