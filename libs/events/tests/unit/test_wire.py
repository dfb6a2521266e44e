from hypothesis import example, given
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.aio.msg import Msg

from fmcsa_events.wire import fast_headers, parse_header_lines, stream_position

NATS_PARSE = Client._parse_header_lines

TRICKY = " \t\r\n\x0b\x0c\x1c\x1f\x85\xa0:-é\x00"
NAMES = st.text(st.sampled_from("Nats-Msg-Id" + TRICKY), max_size=12)
VALUES = st.text(st.sampled_from("ab1:-" + TRICKY + "\u2028\ufffd"), max_size=12)
LINES = st.builds(lambda n, v, enc: f"{n}:{v}".encode(enc, "surrogatepass"), NAMES, VALUES, st.just("utf-8"))
BLOCKS = st.builds(
    lambda lines, end: b"\r\n".join(lines) + end,
    st.lists(LINES, max_size=6),
    st.sampled_from([b"", b"\r\n", b"\r\n\r\n"]),
)


@given(st.one_of(BLOCKS, st.binary(max_size=80)))
@example(b"Nats-Msg-Id: outcome:1\r\nFmcsa-Type: source_synced\r\nFmcsa-Version: 1\r\n\r\n")
@example(b"\x1cName: x\r\n")  # a separator character: `str.isspace` says yes, `bytes.strip` keeps it
@example(b"Name: \x1cx\x1c \r\n:empty name\r\nNa me: inner space\r\nNo colon\r\nA:1\r\nA: 2\r\n")
@example(b"N\xc3\xa9: x\r\nOk: caf\xc3\xa9\r\nBad: \xff\r\n")
def test_headers_parse_to_what_nats_py_parses(raw: bytes) -> None:
    assert parse_header_lines(raw) == NATS_PARSE(raw)
    assert list(parse_header_lines(raw)) == list(NATS_PARSE(raw))  # the same order too


def test_fast_headers_is_installed_on_one_client_only() -> None:
    one, other = Client(), Client()
    fast_headers(one)
    assert one._parse_header_lines is parse_header_lines
    assert other._parse_header_lines is NATS_PARSE


def test_the_stream_position_is_the_metadata_s() -> None:
    for reply in (
        "$JS.ACK.FMCSA_EVENTS.c1.1.4242.17.1765000000000000000.99",  # v1: no domain, no hash
        "$JS.ACK.hub.ACC.FMCSA_EVENTS.c1.1.4242.17.1765000000000000000.99.token",  # v2
    ):
        msg = Msg(Client(), subject="fmcsa.x", reply=reply, data=b"")
        assert stream_position(msg) == (msg.metadata.sequence.stream, msg.metadata.num_pending) == (4242, 99)
