"""python-http-p2: a wasi:http/proxy 0.2 component built by componentize-py (CPython inside).

It is one of the test images that check the shims serve HTTP components from other toolchains
than Rust's (issue #15). Every request is answered 200 with the body
`hello from python (wasi:http 0.2)`; the path /trap raises instead, which traps the instance
(a 0.2 handler has no error to return), so the host answers 500.
"""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

BODY = b"hello from python (wasi:http 0.2)\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        if request.path_with_query() == "/trap":
            raise RuntimeError("python-http-p2: trap requested")
        response = OutgoingResponse(
            Fields.from_list([("content-type", b"text/plain")])
        )
        response.set_status_code(200)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(BODY)
        OutgoingBody.finish(body, None)
