"""`kws serve` over real TCP on localhost: the Wyoming wake protocol, bad input, load, zeroconf.

The server is the real `kws serve` in its own process; clients are the `wyoming` package's own
(`AsyncTcpClient` and event classes), or raw sockets for input that client cannot produce.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("wyoming", reason="kws[serve] not installed (scripts/setup.sh installs it)")
from wyoming.audio import AudioChunk, AudioStart, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.error import Error  # noqa: E402
from wyoming.event import async_read_event  # noqa: E402
from wyoming.info import Describe, Info  # noqa: E402
from wyoming.ping import Ping, Pong  # noqa: E402
from wyoming.wake import Detect, Detection, NotDetected  # noqa: E402

import kws  # noqa: E402
from kws.serve import MAX_LINE, MAX_PAYLOAD  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
TIMEOUT_S = 2.0          # the test server's --timeout
MAX_CLIENTS = 4          # the test server's --max-clients


@pytest.fixture(scope="module")
def recording() -> np.ndarray:
    """examples/audio/keywords.flac: yes, stop, go, left, no (16 kHz int16 mono)."""
    audio, rate = sf.read(ROOT / "examples/audio/keywords.flac", dtype="int16")
    assert rate == RATE
    return audio


@pytest.fixture(scope="module")
def go_clip(recording) -> np.ndarray:
    return recording[4 * RATE: 6 * RATE]        # "go" (the word is at ~5.0-5.4 s)


class Server:
    """`kws serve` in a subprocess on a free localhost port; stderr collected by a thread."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kws", "serve", "--uri", "tcp://127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.lines.append(line)
                if " on tcp://" in line:
                    ready.set()
            ready.set()
        threading.Thread(target=pump, daemon=True).start()
        ready.wait(60)
        found = [m for m in (re.search(r" on tcp://127\.0\.0\.1:(\d+)", l) for l in self.lines) if m]
        assert found, f"kws serve did not start: {''.join(self.lines)}"
        self.port = int(found[0].group(1))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(30)


@pytest.fixture(scope="module")
def server():
    s = Server("--timeout", str(TIMEOUT_S), "--max-clients", str(MAX_CLIENTS))
    yield s
    assert s.alive(), "the server died: " + "".join(s.lines[-20:])
    assert s.stop() == 0                       # SIGTERM: a clean exit
    assert "Traceback" not in "".join(s.lines), "".join(s.lines)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def direct(audio: np.ndarray, rate: int = RATE, **kw) -> list[tuple[str, int]]:
    """Detections of kws.Detector on the same samples, as (name, timestamp ms)."""
    det = kws.Detector(**kw)
    hits = []
    for i in range(0, len(audio), 1600):
        hits += det.feed(audio[i:i + 1600], sample_rate=rate)
    return [(d.label, round(d.time_s * 1000)) for d in hits]


async def stream(port: int, pcm: bytes, rate: int = RATE, width: int = 2, channels: int = 1,
                 names=None, chunk_s: float = 0.064, realtime: bool = False) -> list:
    """detect, audio-start, the PCM in chunks, audio-stop, then a ping: every event the server
    sent before the pong (detections, not-detected)."""
    frame = width * channels
    step = int(rate * chunk_s) * frame
    async with AsyncTcpClient("127.0.0.1", port, read_timeout=30) as client:
        await client.write_event(Detect(names=names).event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        t0 = time.monotonic()
        for n, i in enumerate(range(0, len(pcm), step)):
            if realtime:             # the chunk is sent once its audio would have been captured
                await asyncio.sleep(max(0.0, t0 + (n + 1) * chunk_s - time.monotonic()))
            await client.write_event(AudioChunk(rate=rate, width=width, channels=channels,
                                                audio=pcm[i:i + step]).event())
        await client.write_event(AudioStop().event())
        await client.write_event(Ping(text="end").event())
        events = []
        while True:
            event = await client.read_event()
            assert event is not None, "server closed the connection"
            if Pong.is_type(event.type):
                return events
            events.append(event)


def hits(events) -> list[tuple[str, int]]:
    return [(d.name, d.timestamp) for d in map(Detection.from_event,
                                                 (e for e in events if Detection.is_type(e.type)))]


# ---------------------------------------------------------------------------------------- protocol
def test_describe_lists_one_wake_model_per_keyword(server):
    async def go():
        async with AsyncTcpClient("127.0.0.1", server.port, read_timeout=10) as client:
            await client.write_event(Describe().event())
            return await client.read_event()
    event = run(go())
    assert Info.is_type(event.type)
    info = Info.from_event(event)
    models = info.wake[0].models
    assert [m.name for m in models] == kws.Detector().keywords
    raw = event.data["wake"][0]["models"]
    for m in raw:
        assert {"name", "description", "phrase", "languages", "attribution", "installed"} <= set(m)
        assert m["installed"] is True and m["phrase"] == m["name"] and m["languages"] == ["en"]


def test_keyword_clip_gives_detection_with_the_right_name(server, go_clip):
    expected = direct(go_clip)
    assert [n for n, _ in expected] == ["go"]
    events = run(stream(server.port, go_clip.tobytes(), names=["go"]))
    assert hits(events) == expected           # name and timestamp (ms since audio-start)
    assert not any(NotDetected.is_type(e.type) for e in events)


def test_silence_gives_not_detected(server):
    events = run(stream(server.port, np.zeros(2 * RATE, np.int16).tobytes()))
    assert [e.type for e in events] == ["not-detected"]


def test_detect_names_select_keywords(server, go_clip):
    # "go" not selected (an unknown name is ignored): the clip gives not-detected
    events = run(stream(server.port, go_clip.tobytes(), names=["yes", "no-such-word"]))
    assert [e.type for e in events] == ["not-detected"]
    # only unknown names: every keyword, as with no names
    events = run(stream(server.port, go_clip.tobytes(), names=["no-such-word"]))
    assert [n for n, _ in hits(events)] == ["go"]


def test_stream_goes_on_after_a_hit_and_equals_the_detector(server, recording):
    expected = direct(recording)
    assert [n for n, _ in expected] == ["yes", "stop", "go", "left", "no"]
    assert hits(run(stream(server.port, recording.tobytes()))) == expected


def test_audio_start_resets_the_detector(server, go_clip):
    """Two streams on one connection: the second one's timestamps start again at 0."""
    async def go():
        async with AsyncTcpClient("127.0.0.1", server.port, read_timeout=30) as client:
            got = []
            for _ in range(2):
                await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
                await client.write_event(AudioChunk(rate=RATE, width=2, channels=1,
                                                    audio=go_clip.tobytes()).event())
                await client.write_event(AudioStop().event())
                await client.write_event(Ping().event())
                while not Pong.is_type((event := await client.read_event()).type):
                    got.append(event)
            return got
    expected = direct(go_clip)
    assert hits(run(go())) == expected * 2


def test_other_pcm_formats_are_converted(server, recording):
    import soxr
    expected = direct(recording)
    # 32-bit mono: the int16 samples << 16, exactly the same audio
    wide = (recording.astype("<i4") << 16).tobytes()
    assert hits(run(stream(server.port, wide, width=4))) == expected
    # 48 kHz stereo 16-bit (both channels the same): equal to the Detector fed the 48 kHz samples
    up = np.clip(np.round(soxr.resample(recording.astype(np.float32), RATE, 48000)), -32768, 32767)
    up = up.astype(np.int16)
    stereo = np.repeat(up, 2).tobytes()
    got = hits(run(stream(server.port, stereo, rate=48000, channels=2)))
    assert got == direct(up, rate=48000)
    assert [n for n, _ in got] == [n for n, _ in expected]
    # 8-bit unsigned (as in WAV), 3 channels: what the Detector gives on the same 8-bit samples
    # (which keywords survive the coarser samples is the model's business, not the server's)
    u8 = np.clip(np.round(recording / 256.0) + 128, 0, 255).astype(np.uint8)
    got = hits(run(stream(server.port, np.repeat(u8, 3).tobytes(), width=1, channels=3)))
    assert got == direct(((u8.astype(np.int16) - 128) * 256).astype(np.int16)) and got


def test_ping_and_select_program(server):
    async def go():
        async with AsyncTcpClient("127.0.0.1", server.port, read_timeout=10) as client:
            await client.write_event(_event("select-program", {"name": "kws"}))
            await client.write_event(Ping(text="hi").event())
            return await client.read_event()
    assert Pong.from_event(run(go())).text == "hi"


def _event(kind, data):
    from wyoming.event import Event
    return Event(type=kind, data=data)


# ---------------------------------------------------------------------------------------- bad input
async def raw_exchange(port: int, data: bytes, wait_s: float = 10.0):
    """Send raw bytes; return (events received, closed by the server, seconds until closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError:
        pass
    events, closed = [], False
    try:
        while True:
            event = await asyncio.wait_for(async_read_event(reader), wait_s)
            if event is None:
                closed = True
                break
            events.append(event)
    except asyncio.TimeoutError:
        pass
    writer.close()
    return events, closed, time.monotonic() - t0


def header(kind: str, **fields) -> bytes:
    return json.dumps({"type": kind, **fields}).encode() + b"\n"


START = header("audio-start", data={"rate": RATE, "width": 2, "channels": 1})

BAD_INPUT = {
    "malformed JSON": (b'{"type": "describe"\n', "bad-event"),
    "header not an object": (b'["describe"]\n', "bad-event"),
    "no type": (b'{"data": {}}\n', "bad-event"),
    "nested too deep": (b"[" * 5000 + b"]" * 5000 + b"\n", "bad-event"),
    "malformed data": (header("detect", data_length=5) + b"{nope", "bad-event"),
    "unknown event type": (header("frobnicate"), "bad-event"),
    "no newline within the limit": (b"x" * (MAX_LINE + 10), "too-large"),
    "huge data_length": (header("detect", data_length=10 ** 12), "too-large"),
    "huge payload_length": (header("audio-chunk", payload_length=2 ** 40,
                                   data={"rate": RATE, "width": 2, "channels": 1}), "too-large"),
    "payload one byte over": (START + header("audio-chunk", payload_length=MAX_PAYLOAD + 1,
                                             data={"rate": RATE, "width": 2, "channels": 1}), "too-large"),
    "negative length": (header("detect", payload_length=-1), "bad-event"),
    "audio before audio-start": (header("audio-chunk", payload_length=4,
                                        data={"rate": RATE, "width": 2, "channels": 1}) + b"\0" * 4, "bad-audio"),
    "odd byte count at 16-bit": (START + header("audio-chunk", payload_length=3,
                                                data={"rate": RATE, "width": 2, "channels": 1}) + b"\0" * 3, "bad-audio"),
    "24-bit width": (header("audio-start", data={"rate": RATE, "width": 3, "channels": 1}), "bad-audio"),
    "rate missing": (header("audio-start", data={"width": 2, "channels": 1}), "bad-audio"),
    "names not a list": (header("detect", data={"names": "go"}), "bad-event"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_gets_an_error_event_then_close(server, case):
    data, code = BAD_INPUT[case]
    rss0 = server.rss_kb()
    events, closed, _ = run(raw_exchange(server.port, data))
    assert closed, f"{case}: connection left open"
    assert [e.type for e in events] == ["error"], events
    err = Error.from_event(events[0])
    assert err.code == code and err.text, err
    assert server.alive()
    # nothing was allocated for a claimed length (e.g. 1 TB): the server's memory barely moved
    assert server.rss_kb() - rss0 < 20_000
    # and it still serves
    assert [e.type for e in run(stream(server.port, np.zeros(RATE, np.int16).tobytes()))] == ["not-detected"]


def test_rate_change_mid_stream_is_an_error(server):
    async def go():
        async with AsyncTcpClient("127.0.0.1", server.port, read_timeout=10) as client:
            await client.write_event(AudioStart(rate=RATE, width=2, channels=1).event())
            for rate in (RATE, 48000):
                await client.write_event(AudioChunk(rate=rate, width=2, channels=1,
                                                    audio=bytes(8000)).event())
            return await client.read_event(), await client.read_event()
    error, end = run(go())
    assert Error.from_event(error).code == "bad-audio" and "sample_rate changed" in error.data["text"]
    assert end is None


@pytest.mark.parametrize("data", [b"", b'{"type": "desc'], ids=["silent", "half a header"])
def test_a_client_that_stops_sending_times_out(server, data):
    events, closed, took = run(raw_exchange(server.port, data, wait_s=TIMEOUT_S + 10))
    assert closed and [Error.from_event(e).code for e in events] == ["timeout"]
    assert TIMEOUT_S - 0.5 < took < TIMEOUT_S + 5


def test_more_clients_than_max_clients_are_refused(server):
    async def go():
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(MAX_CLIENTS)]
        await asyncio.sleep(0.3)                      # all accepted and counted
        events, closed, _ = await raw_exchange(server.port, header("describe"))
        for _, w in held:
            w.close()
        return events, closed
    events, closed = run(go())
    assert closed and [Error.from_event(e).code for e in events] == ["busy"]
    time.sleep(0.3)                                    # the slots free again
    assert [e.type for e in run(stream(server.port, np.zeros(RATE, np.int16).tobytes()))] == ["not-detected"]


def test_disconnect_in_the_middle_of_a_stream(server, recording):
    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(START + header("audio-chunk", payload_length=64000,
                                    data={"rate": RATE, "width": 2, "channels": 1})
                     + recording[:16000].tobytes())           # 32000 of the 64000 bytes promised
        await writer.drain()
        writer.close()
    run(go())
    time.sleep(0.3)
    assert server.alive()
    assert [e.type for e in run(stream(server.port, np.zeros(RATE, np.int16).tobytes()))] == ["not-detected"]


# ---------------------------------------------------------------------------------------- CLI
def _cli(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("package,option", [("wyoming", ""), ("zeroconf", "'--zeroconf', ")])
def test_missing_package_is_one_error_line(package, option):
    # the package made unimportable in a child process, as if it were not installed
    r = _cli(f"import sys; sys.modules[{package!r}] = None\n"
             f"from kws.cli import main; sys.exit(main(['serve', {option}'--uri', 'tcp://127.0.0.1:0']))")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        r.stderr.strip()] and r.stderr.startswith("kws: error: ") and "pip install" in r.stderr, r.stderr


@pytest.mark.parametrize("args,message", [
    (["--uri", "http://127.0.0.1:1"], "--uri must be tcp://HOST:PORT"),
    (["--width", "0.3"], "width 0.3"),
    (["--threshold", "yes=2"], "threshold of 'yes'"),
    (["--threshold", "maybe=0.5"], "unknown keyword"),
    (["--timeout", "0"], "--timeout"),
])
def test_bad_options_are_one_error_line(args, message):
    r = subprocess.run([sys.executable, "-m", "kws", "serve", "--uri", "tcp://127.0.0.1:0", *args],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1 and r.stderr.startswith("kws: error: ") and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_port_in_use_is_one_error_line(server):
    r = subprocess.run([sys.executable, "-m", "kws", "serve", "--uri", f"tcp://127.0.0.1:{server.port}"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"kws: error: cannot listen on tcp://127.0.0.1:{server.port}")
    assert "Traceback" not in r.stderr


def test_sigterm_with_clients_connected_exits_cleanly():
    s = Server()
    async def go():
        held = [await asyncio.open_connection("127.0.0.1", s.port) for _ in range(3)]
        await asyncio.sleep(0.3)
        t = time.monotonic()
        code = await asyncio.to_thread(s.stop)
        return code, time.monotonic() - t, held
    code, took, _ = run(go())
    assert code == 0 and took < 5
    assert "Traceback" not in "".join(s.lines)


def test_threshold_and_refractory_options_reach_the_detector(recording):
    """Per-keyword threshold and refractory period are server options: the served detections
    equal the Detector's with the same settings (and differ from the defaults')."""
    opts = dict(threshold="yes=0.99,go=0.99", refractory_s=3.0)
    expected = direct(recording, **opts)
    assert expected != direct(recording)
    s = Server("--threshold", opts["threshold"], "--refractory-s", "3")
    try:
        assert hits(run(stream(s.port, recording.tobytes()))) == expected
    finally:
        assert s.stop() == 0


# ---------------------------------------------------------------------------------------- zeroconf
def _netns_python(code: str, multicast: bool) -> subprocess.CompletedProcess:
    """Run Python in a new network namespace with only loopback: mDNS never leaves this test."""
    if not shutil.which("unshare") or not shutil.which("ip") or \
            subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        pytest.skip("needs `unshare -n` (root or user namespaces) and iproute2")
    setup = "ip link set lo up"
    if multicast:
        setup += " && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo src 127.0.0.1"
    return subprocess.run(["unshare", "-n", "sh", "-c", f'{setup} && exec "$0" -c "$1"',
                           sys.executable, code], capture_output=True, text=True, timeout=120)


BROWSE = r"""
import json, re, subprocess, sys, time
from zeroconf import ServiceBrowser, ServiceListener, Zeroconf
server = subprocess.Popen([sys.executable, "-m", "kws", "serve", "--uri", "tcp://0.0.0.0:0",
                           "--zeroconf", "kws-test"], stderr=subprocess.PIPE, text=True)
for line in server.stderr:
    m = re.search(r" on tcp://0\.0\.0\.0:(\d+)", line)
    if m:
        break
found = {}
class Listener(ServiceListener):
    def add_service(self, zc, kind, name):
        info = zc.get_service_info(kind, name)
        found[name] = (info.parsed_addresses(), info.port)
    update_service = remove_service = lambda *a: None
zc = Zeroconf()
ServiceBrowser(zc, "_wyoming._tcp.local.", Listener())
t = time.time()
while not found and time.time() - t < 20:
    time.sleep(0.1)
zc.close()
server.terminate()
print(json.dumps({"port": int(m.group(1)), "found": found, "exit": server.wait()}))
"""


def test_zeroconf_announces_the_service():
    pytest.importorskip("zeroconf")
    r = _netns_python(BROWSE, multicast=True)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["found"] == {"kws-test._wyoming._tcp.local.": [["127.0.0.1"], out["port"]]}, out
    assert out["exit"] == 0


def test_zeroconf_without_a_network_is_one_error_line():
    pytest.importorskip("zeroconf")
    r = _netns_python("import sys; from kws.cli import main; "
                      "sys.exit(main(['serve', '--uri', 'tcp://0.0.0.0:0', '--zeroconf']))", multicast=False)
    assert r.returncode == 1, r.stderr
    assert "kws: error: --zeroconf: cannot announce the service over mDNS" in r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------- load
CLIENTS, SECONDS = 8, 60


@pytest.mark.slow
def test_load_8_clients_at_real_time(recording):
    """8 clients stream 60 s each at real time, concurrently; each gets exactly the detections of
    kws.Detector on its audio. Prints the server's CPU per stream (not asserted: see docs/serve.md)."""
    looped = np.tile(recording, SECONDS * RATE // len(recording) + 2)
    audios = [np.roll(looped, -i * RATE * 7 // 10)[:SECONDS * RATE] for i in range(CLIENTS)]
    t = time.process_time()
    expected = [direct(a) for a in audios]
    alone = time.process_time() - t                   # the baseline: the Detectors alone, this process
    assert all(len(e) >= 20 for e in expected)
    s = Server()
    try:
        cpu0, t0 = s.cpu_s(), time.monotonic()

        async def all_clients():
            return await asyncio.gather(*(stream(s.port, a.tobytes(), realtime=True) for a in audios))
        results = asyncio.run(all_clients())
        wall, cpu = time.monotonic() - t0, s.cpu_s() - cpu0
        assert s.alive()
    finally:
        assert s.stop() == 0
    for i, (events, want) in enumerate(zip(results, expected)):
        assert hits(events) == want, f"client {i}"
    n = sum(len(e) for e in expected)
    print(f"\nkws serve load: {CLIENTS} clients x {SECONDS} s at real time in {wall:.1f} s wall; "
          f"server CPU {cpu:.2f} s = {100 * cpu / (CLIENTS * SECONDS):.3f} % of a core per stream; "
          f"(kws.Detector alone on the same audio: {100 * alone / (CLIENTS * SECONDS):.3f} %); "
          f"{n} detections, each client's equal to kws.Detector's")
