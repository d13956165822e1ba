"""Gateway test vectors from real third-party implementations (run through scripts/gen-gateway-vectors).

generate (default): writes tests/vectors/gateway/vectors.json with
  - zlib-stream frames from zlib.compressobj() + Z_SYNC_FLUSH (large messages split across frames),
  - zstd-stream frames from zstandard's streaming compressor flushed with FLUSH_BLOCK (frame never ended),
  - payload-compressed messages from zlib.compress(),
  - ETF terms from erlpack.pack(), including atom-keyed maps as a server sends them,
  - ETF terms from Erlang's own term_to_binary (when `escript` is installed; otherwise the
    previously generated Erlang vectors are kept): STRING_EXT lists, ATOM_EXT keys, compressed
    terms, old-style FLOAT_EXT, bignums.
--check DIR: decodes DIR/ours.json (written by our Rust codecs) with the same tools and exits 1 on
  any mismatch.
"""
import base64
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zlib

import erlpack
import zstandard

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "gateway"
SUFFIX = b"\x00\x00\xff\xff"
FRAME_SIZE = 512  # large zlib-stream messages are split into frames of this size


def b64(data):
    return base64.b64encode(data).decode("ascii")


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sample_payloads():
    message = json.loads((VECTORS / "message_create.json").read_text(encoding="utf-8"))
    members = [
        {
            "user": {"id": str(1090000000000000000 + i), "username": f"member{i}", "discriminator": "0", "avatar": None},
            "roles": [str(1180000000000000001 + i % 3)],
            "joined_at": "2025-01-01T00:00:00.000000+00:00",
            "deaf": False,
            "mute": False,
        }
        for i in range(40)
    ]
    return [
        {"op": 10, "d": {"heartbeat_interval": 41250, "_trace": ['["gateway-prd-us-east1-b-0t6x",{"micros":0.0}]']}, "s": None, "t": None},
        {"op": 11, "d": None, "s": None, "t": None},
        {"op": 0, "s": 1, "t": "READY", "d": {
            "v": 10, "session_id": "9f2c1b7e0a4d4b7c8e1f2a3b4c5d6e7f",
            "resume_gateway_url": "wss://gateway-us-east1-b.discord.gg",
            "user": {"id": "1090000000000000007", "username": "nelly", "bot": True, "flags": 0},
            "guilds": [{"id": "1180000000000000000", "unavailable": True}],
            "shard": [0, 1], "application": {"id": "1090000000000000007", "flags": 565248}}},
        message,
        {"op": 0, "s": 3, "t": "GUILD_CREATE", "d": {
            "id": "1180000000000000000", "name": "Vector Test \U0001F9EA", "member_count": 40,
            "large": False, "members": members, "channels": [], "roles": [], "emojis": [],
            "features": ["COMMUNITY", "NEWS"], "premium_tier": 2, "unavailable": False}},
        {"op": 0, "s": 4, "t": "NUMBERS", "d": {
            "zero": 0, "byte": 255, "short": 256, "i32max": 2147483647, "over_i32": 2147483648,
            "i32min": -2147483648, "under_i32": -2147483649, "i64min": -9223372036854775808,
            "u64max": 18446744073709551615, "snowflake_int": 175928847299117063, "neg": -1,
            "floats": [0.5, -1.25, 3.141592653589793, 1e-7, 6.02e23], "small_list": [1, 2, 3],
            "empty_list": [], "empty_map": {}, "nested": [[[{"deep": [None, True, False]}]]],
            "text": "quote\" backslash\\ newline\n tab\t nul\u0000 \u00e9\u4e2d\U0001F600"}},
        {"op": 2, "d": {"token": "not-a-real-token", "properties": {"os": "linux", "browser": "Discord Client", "device": ""},
                        "compress": False, "capabilities": 16381, "presence": {"status": "online", "since": 0, "activities": [], "afk": False},
                        "client_state": {"guild_versions": {}}}, "s": None, "t": None},
    ]


def zlib_stream_frames(texts):
    """One compressobj for the connection; each message sync-flushed; big ones split across frames."""
    compressor = zlib.compressobj()
    frames, completes = [], []
    for index, text in enumerate(texts):
        message = compressor.compress(text.encode("utf-8")) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert message.endswith(SUFFIX)
        chunks = [message[i:i + FRAME_SIZE] for i in range(0, len(message), FRAME_SIZE)]
        for position, chunk in enumerate(chunks):
            frames.append(b64(chunk))
            completes.append(index if position == len(chunks) - 1 else None)
    return frames, completes


def zstd_stream_frames(texts):
    """One streaming compressor for the connection; each message flushed as a block, frame left open."""
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    frames = []
    for text in texts:
        frames.append(b64(compressor.compress(text.encode("utf-8")) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)))
    return frames


def erl(value):
    """Erlang term syntax for a JSON-like Python value (strings as UTF-8 binaries, null as nil)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.17e}"
    if isinstance(value, str):
        body = "".join(c if " " <= c <= "~" and c not in '"\\' else f"\\x{{{ord(c):X}}}" for c in value)
        return f'<<"{body}"/utf8>>'
    if isinstance(value, list):
        return "[" + ",".join(erl(v) for v in value) + "]"
    if isinstance(value, dict):
        return "#{" + ",".join(f"{erl(k)} => {erl(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def erlang_terms(payloads):
    """(name, Erlang term text, term_to_binary options, expected: a payload index, JSON or an error name)."""
    cases = [(f"payload{i}", erl(p), "[]", {"payload": i}) for i, p in enumerate(payloads)]
    cases += [
        ("guild_create_compressed", erl(payloads[4]), "[compressed]", {"payload": 4}),
        ("old_float", "1.5", "[{minor_version, 0}]", {"json": 1.5}),
        ("atom_keys", "#{op => 0, s => 7, t => 'MESSAGE_CREATE', d => #{id => 175928847299117063, <<\"content\">> => <<\"atom keys\">>}}",
         "[]", {"json": {"op": 0, "s": 7, "t": "MESSAGE_CREATE", "d": {"id": 175928847299117063, "content": "atom keys"}}}),
        ("u64_max", "18446744073709551615", "[]", {"json": 18446744073709551615}),
        ("i64_min", "-9223372036854775808", "[]", {"json": -9223372036854775808}),
        ("too_big", "1180591620717411303424", "[]", {"error": "IntegerOutOfRange"}),
        ("tuple", "{1, <<\"two\">>, nil}", "[]", {"json": [1, "two", None]}),
        ("latin1_atom", "'h\\x{E9}llo'", "[]", {"json": "h\u00e9llo"}),
        ("utf8_atom", "'\\x{65E5}\\x{672C}'", "[]", {"json": "\u65e5\u672c"}),
        ("small_int_list", "[1, 2, 300]", "[]", {"json": [1, 2, 300]}),
    ]
    return cases


def erlang_vectors(payloads):
    """Runs Erlang's term_to_binary over the cases, or keeps the last generated ones without Erlang."""
    escript = shutil.which("escript")
    previous = VECTORS / "vectors.json"
    if escript is None:
        if previous.exists():
            print("escript not found: keeping the previous Erlang vectors")
            return json.loads(previous.read_text(encoding="utf-8")).get("erlang")
        print("escript not found: no Erlang vectors")
        return None
    cases = erlang_terms(payloads)
    with tempfile.TemporaryDirectory() as tmp:
        terms = pathlib.Path(tmp) / "terms"
        out = pathlib.Path(tmp) / "out"
        terms.write_text("".join(f"{{{name}, {term}, {opts}}}.\n" for name, term, opts, _ in cases), encoding="utf-8")
        release = subprocess.run([escript, str(ROOT / "scripts" / "gateway_vectors.escript"), "encode", str(terms), str(out)],
                                 check=True, capture_output=True, text=True).stdout.strip()
        encoded = dict(line.split(" ") for line in out.read_text().splitlines())
    return {
        "otp_release": release,
        "terms": [dict(name=name, etf=b64(bytes.fromhex(encoded[name])), **expected) for name, _, _, expected in cases],
    }


def generate():
    payloads = sample_payloads()
    texts = [compact(p) for p in payloads]
    zlib_frames, zlib_completes = zlib_stream_frames(texts)
    server_style = erlpack.pack({erlpack.Atom("op"): 0, erlpack.Atom("s"): 7, erlpack.Atom("t"): erlpack.Atom("MESSAGE_CREATE"),
                                 erlpack.Atom("d"): {erlpack.Atom("id"): 175928847299117063, "content": "atom keys"}})
    extra_terms = [
        # erlpack packs tuples as SMALL_TUPLE_EXT; they read as arrays.
        {"etf": b64(erlpack.pack((1, "two", None))), "json": [1, "two", None]},
        # Erlang's term_to_binary writes lists of small integers as STRING_EXT.
        {"etf": b64(b"\x83k\x00\x03\x01\x02\x03"), "json": [1, 2, 3]},
        {"etf": b64(erlpack.pack(erlpack.Atom("some_atom"))), "json": "some_atom"},
    ]
    document = {
        "generator": {
            "python": sys.version.split()[0],
            "zlib": zlib.ZLIB_RUNTIME_VERSION,
            "zstandard": zstandard.__version__,
            "erlpack": "1.0.1",
        },
        "payloads": payloads,
        "texts": texts,
        "zlib_stream": {"frames": zlib_frames, "completes": zlib_completes},
        "zstd_stream": zstd_stream_frames(texts),
        "payload_zlib": [b64(zlib.compress(t.encode("utf-8"))) for t in texts],
        "etf": [b64(erlpack.pack(p)) for p in payloads],
        "etf_server_atom_keys": {"etf": b64(server_style),
                                 "json": {"op": 0, "s": 7, "t": "MESSAGE_CREATE", "d": {"id": 175928847299117063, "content": "atom keys"}}},
        "etf_extra": extra_terms,
        "erlang": erlang_vectors(payloads),
    }
    out = VECTORS / "vectors.json"
    out.write_text(json.dumps(document, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes)")


def normalize(value):
    """erlpack gives binaries as bytes and other atoms as Atom; map them onto JSON types."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dict):
        return {normalize(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, erlpack.Atom):
        return str(value)
    return value


def check(directory):
    ours = json.loads((pathlib.Path(directory) / "ours.json").read_text(encoding="utf-8"))
    texts = [t.encode("utf-8") for t in ours["texts"]]
    failures = []

    inflator = zlib.decompressobj()
    buffer, got = bytearray(), []
    for frame in ours["zlib_stream"]:
        buffer.extend(base64.b64decode(frame))
        if buffer.endswith(SUFFIX):
            got.append(inflator.decompress(bytes(buffer)))
            buffer.clear()
    if got != texts:
        failures.append(f"zlib-stream: Python zlib decoded {len(got)} messages that differ from ours")

    decompressor = zstandard.ZstdDecompressor().decompressobj()
    got = [decompressor.decompress(base64.b64decode(f)) for f in ours["zstd_stream"]]
    if got != texts:
        failures.append("zstd-stream: Python zstandard decoded messages that differ from ours")

    got = [zlib.decompress(base64.b64decode(f)) for f in ours["payload_zlib"]]
    if got != texts:
        failures.append("payload compression: Python zlib decoded messages that differ from ours")

    for index, (term, text) in enumerate(zip(ours["etf"], ours["texts"])):
        data = base64.b64decode(term)
        expected = json.loads(text)
        if normalize(erlpack.unpack(data)) != expected:
            failures.append(f"etf[{index}]: erlpack.unpack disagrees with the JSON")
        if erlpack.pack(expected) != data:
            failures.append(f"etf[{index}]: erlpack.pack of the same value gives other bytes")

    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"checked {len(texts)} payloads: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) == 1:
        generate()
        sys.exit(0)
    print("usage: gen-gateway-vectors [--check DIR | --setup-only]", file=sys.stderr)
    sys.exit(2)
