"""python-http-p3: a wasi:http/service 0.3 component built by componentize-py (CPython inside).

It is one of the test images that check the shims serve HTTP components from other toolchains
than Rust's, here a WASI 0.3 one with component-model async exports (issue #15). Every request
is answered 200 with the body `hello from python (wasi:http 0.3)`, streamed through a WIT
`stream<u8>`; the path /trap raises an exception that is not a WIT error, which traps the
instance, so the host answers 500.
"""

import componentize_py_async_support
import wit_world
from componentize_py_async_support.streams import ByteStreamWriter
from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.wasi_http_types import Fields, Request, Response

BODY = b"hello from python (wasi:http 0.3)\n"


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        if request.get_path_with_query() == "/trap":
            raise RuntimeError("python-http-p3: trap requested")
        body_writer, body = wit_world.byte_stream()
        componentize_py_async_support.spawn(write_body(body_writer))
        # No trailers: a future that resolves to `ok(none)` as soon as the host reads it.
        _, trailers = wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(
            lambda: Ok(None)
        )
        response, _ = Response.new(Fields.from_list([("content-type", b"text/plain")]), body, trailers)
        return response


async def write_body(body_writer: ByteStreamWriter) -> None:
    with body_writer:
        await body_writer.write_all(BODY)
