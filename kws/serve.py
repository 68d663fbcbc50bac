"""`kws serve`: a Wyoming-protocol wake word server (Home Assistant, Wyoming satellites).

One asyncio TCP server; each connection gets its own `kws.Detector` (sharing the loaded model)
and speaks the Wyoming wake protocol, with the `wyoming` package's event classes:

    describe                       -> info (one wake model per keyword of the model)
    detect {names?}                   selects keywords (unknown names are ignored; none known or
                                      no names: every keyword); ends any stream in progress
    audio-start {rate,width,channels} resets the connection's Detector
    audio-chunk + PCM payload      -> detection {name, timestamp} for each hit (the stream goes on)
    audio-stop                     -> not-detected, if nothing was detected since audio-start
    ping                           -> pong;  select-program is accepted and ignored

`timestamp` is the end of the 1 s window that fired, in milliseconds of audio since audio-start
(`Detection.time_s` x 1000): the point in the stream at which the keyword was known, never later
than the audio received so far.

PCM: width 1 (unsigned 8-bit, as WAV and wyoming's own converter have it), 2 (int16) or 4 (int32),
little-endian, channels interleaved and averaged to mono, any rate up to 768 kHz (the Detector
resamples with soxr). 16-bit mono reaches the Detector unchanged, so a client gets exactly the
detections of `kws.Detector.feed` on the same samples.

Bad input never crashes the server and nothing grows without bound: a header line is at most
MAX_LINE bytes, event data at most MAX_DATA, a payload at most MAX_PAYLOAD (lengths are checked
before anything is read), at most `--max-clients` connections, and a client that sends nothing
(or reads nothing) for `--timeout` seconds is dropped. Whatever a client gets wrong (malformed
JSON, an unknown event type, audio before audio-start, a byte count that is not whole samples)
it gets an `error` event {text, code} and the connection is closed. The events are read here
rather than with `wyoming.event.async_read_event`, which has no size caps (it buffers whatever
`payload_length` a client claims) and closes silently on bad input; writing uses the package.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from urllib.parse import urlparse

from kws.cli import CliError, add_detector_options

DEFAULT_URI = "tcp://0.0.0.0:10400"      # the port wyoming-openwakeword uses
MAX_LINE = 64 * 1024       # JSON header line (also asyncio's default StreamReader limit)
MAX_DATA = 64 * 1024       # JSON data after the header
MAX_PAYLOAD = 1 << 20      # PCM per audio-chunk: 32 s of 16 kHz 16-bit mono, 2.7 s of 48 kHz 32-bit stereo
INLINE_S = 0.25           # audio-chunks up to this long are fed on the event loop, longer ones in a thread
MAX_CHANNELS = 16
WIDTHS = (1, 2, 4)         # bytes per sample the protocol's own converter handles
MAX_RATE = 768_000         # kws.detector.MAX_SAMPLE_RATE (not imported: registration stays light)
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_CLIENTS = 32

log = logging.getLogger("kws.serve")


def register(sub) -> None:
    p = sub.add_parser("serve", help="Wyoming-protocol wake word server (Home Assistant)",
                       description="Serve the model's keywords as a Wyoming wake word service, for "
                                   "Home Assistant and Wyoming satellites (docs/serve.md).")
    p.add_argument("--uri", default=DEFAULT_URI, help=f"tcp://HOST:PORT to listen on (default {DEFAULT_URI})")
    add_detector_options(p)
    p.add_argument("--refractory-s", type=float, default=None,
                   help="seconds after a detection during which nothing else fires (default: the "
                        "Detector's, 1.5)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"drop a client that sends or reads nothing for this many seconds "
                        f"(default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--max-clients", type=int, default=DEFAULT_MAX_CLIENTS,
                   help=f"connections served at once; more get a 'busy' error (default {DEFAULT_MAX_CLIENTS})")
    p.add_argument("--zeroconf", nargs="?", const="kws", default=None, metavar="NAME",
                   help="announce the service over mDNS for Home Assistant discovery, as NAME "
                        "(default kws; needs the zeroconf package)")
    p.add_argument("--debug", action="store_true", help="log every connection and event")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    try:
        import wyoming  # noqa: F401
    except ImportError:
        raise CliError("kws serve needs the wyoming package: pip install 'kws[serve]'") from None
    if args.zeroconf is not None:
        try:
            import zeroconf  # noqa: F401
        except ImportError:
            raise CliError("--zeroconf needs the zeroconf package: pip install zeroconf") from None
    host, port = parse_uri(args.uri)
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if args.max_clients < 1:
        raise ValueError(f"--max-clients must be >= 1, got {args.max_clients}")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="kws serve: %(message)s", stream=sys.stderr)
    service = Service(args.model, width=args.width, blocks=args.blocks, threshold=args.threshold,
                      refractory_s=args.refractory_s, timeout=args.timeout,
                      max_clients=args.max_clients)
    asyncio.run(serve(service, host, port, zeroconf_name=args.zeroconf))
    return 0


def parse_uri(uri: str) -> tuple[str, int]:
    """'tcp://HOST:PORT' -> (HOST, PORT); port 0 picks a free port."""
    try:
        u = urlparse(uri)
        host, port = u.hostname, u.port
    except ValueError as e:
        raise ValueError(f"--uri {uri!r}: {e}") from None
    if u.scheme != "tcp" or host is None or port is None:
        raise ValueError(f"--uri must be tcp://HOST:PORT (e.g. {DEFAULT_URI}), got {uri!r}")
    return host, port


# ---------------------------------------------------------------------------------------- service
class Service:
    """What every connection shares: the loaded model, the Detector settings, the limits."""

    def __init__(self, model=None, width: float = 1.0, blocks: int | None = None, threshold=None,
                 refractory_s: float | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 max_clients: int = DEFAULT_MAX_CLIENTS):
        from kws.detector import resolve_model
        self.model = resolve_model(model)          # loaded once; Detectors only read it
        self.settings = dict(width=width, blocks=blocks, threshold=threshold)
        if refractory_s is not None:
            self.settings["refractory_s"] = refractory_s
        self.timeout, self.max_clients = timeout, max_clients
        self.live: set = set()                      # open Connections
        probe = self.new_detector(None)            # bad width/blocks/threshold fail here, at start
        self.keywords = list(probe.keywords)
        self.operating_point = probe.operating_point.name
        self.info = self._info_event()

    def new_detector(self, keywords):
        from kws.detector import Detector
        return Detector(self.model, keywords=keywords, **self.settings)

    def _info_event(self):
        import kws
        from wyoming.info import Attribution, Info, WakeModel, WakeProgram
        by = Attribution(name="kws", url="")
        source = str(self.model.path) if self.model.path else "model"
        models = [WakeModel(name=k, description=k, phrase=k, languages=["en"], attribution=by,
                            installed=True, version=None) for k in self.keywords]
        program = WakeProgram(
            name="kws", description=f"kws binary keyword spotting ({source}, {self.operating_point})",
            attribution=by, installed=True, version=kws.__version__, models=models)
        return Info(wake=[program]).event()


async def serve(service: Service, host: str, port: int, zeroconf_name: str | None = None) -> None:
    """Serve until SIGINT/SIGTERM; logs "serving ... on tcp://HOST:PORT" once listening."""
    try:
        server = await asyncio.start_server(lambda r, w: Connection(service, r, w).run(),
                                            host, port, limit=MAX_LINE)
    except OSError as e:                           # port in use, no such address, ...
        raise CliError(f"cannot listen on tcp://{host}:{port}: {e.strerror or e}") from None
    bound = server.sockets[0].getsockname()[1]
    zc = None
    if zeroconf_name is not None:
        from wyoming.zeroconf import HomeAssistantZeroconf
        try:    # on a wildcard address the package finds the host's own address itself
            zc = HomeAssistantZeroconf(port=bound, name=zeroconf_name,
                                       host=None if host in ("0.0.0.0", "::", "") else host)
            await zc.register_server()
        except OSError as e:
            raise CliError(f"--zeroconf: cannot announce the service over mDNS: {e}") from None
    log.info("serving %s on tcp://%s:%d (operating point %s, keywords %s%s)", service.model.path or "model",
             host, bound, service.operating_point, ",".join(service.keywords),
             f", zeroconf name {zeroconf_name}" if zc else "")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    # Close the clients' sockets and let their handlers end (cancelling them instead makes
    # asyncio log a traceback per connection; server.wait_closed() waits for clients to leave).
    live = list(service.live)
    for conn in live:
        conn.writer.close()
    if live:
        await asyncio.wait([c.task for c in live], timeout=5)
    log.info("stopped")


# ---------------------------------------------------------------------------------------- protocol
class ProtocolError(ValueError):
    """What a client got wrong; sent back as an error event {text, code}, then the connection closes."""

    def __init__(self, text: str, code: str = "bad-event"):
        super().__init__(text)
        self.code = code


class Disconnected(Exception):
    """The client went away in the middle of an event."""


def _json_object(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:    # RecursionError: "[[[[..." nested too deep
        raise ProtocolError(f"{what} is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _length(header: dict, key: str, cap: int) -> int:
    n = header.get(key)
    if n is None:
        return 0
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ProtocolError(f"{key} must be a non-negative integer, got {n!r}")
    if n > cap:
        raise ProtocolError(f"{key} {n} is over this server's limit of {cap} bytes", "too-large")
    return n


async def read_event(reader: asyncio.StreamReader):
    """The next wyoming Event, None at a clean end of stream; ProtocolError for bad input.

    Reads at most MAX_LINE + MAX_DATA + MAX_PAYLOAD bytes, each length checked before reading.
    """
    from wyoming.event import Event
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise Disconnected() from None
        return None
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"event header has no newline within {MAX_LINE} bytes", "too-large") from None
    header = _json_object(line, "event header")
    kind = header.get("type")
    if not isinstance(kind, str) or not kind:
        raise ProtocolError(f"event header needs a \"type\" string, got {kind!r}")
    data = header.get("data")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ProtocolError(f"event \"data\" must be a JSON object, got {type(data).__name__}")
    n_data = _length(header, "data_length", MAX_DATA)
    n_payload = _length(header, "payload_length", MAX_PAYLOAD)
    try:
        if n_data:
            data.update(_json_object(await reader.readexactly(n_data), "event data"))
        payload = await reader.readexactly(n_payload) if n_payload else None
    except asyncio.IncompleteReadError:
        raise Disconnected() from None
    return Event(type=kind, data=data, payload=payload)


def _audio_format(data: dict, event: str) -> tuple[int, int, int]:
    values = []
    for key, ok, rule in (("rate", lambda v: 0 < v <= MAX_RATE, f"1 to {MAX_RATE} Hz"),
                          ("width", lambda v: v in WIDTHS, "1, 2 or 4 bytes"),
                          ("channels", lambda v: 1 <= v <= MAX_CHANNELS, f"1 to {MAX_CHANNELS}")):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not ok(v):
            raise ProtocolError(f"{event} {key} must be {rule}, got {v!r}", "bad-audio")
        values.append(v)
    return tuple(values)


def pcm_to_mono(pcm: bytes, width: int, channels: int):
    """Wyoming PCM bytes -> mono samples for Detector.feed.

    16-bit mono stays int16 (what feeding the Detector directly gives, bit for bit); anything else
    becomes float64 in [-1, 1): width 1 is unsigned 8-bit (offset 128, as in WAV and wyoming's
    AudioChunkConverter), 4 is int32; interleaved channels are averaged.
    """
    import numpy as np
    frame = width * channels
    if len(pcm) % frame:
        raise ProtocolError(f"audio-chunk payload of {len(pcm)} bytes is not a whole number of "
                            f"{channels}-channel {8 * width}-bit samples ({frame} bytes each)", "bad-audio")
    if width == 2 and channels == 1:
        return np.frombuffer(pcm, "<i2")
    if width == 1:
        x = (np.frombuffer(pcm, np.uint8).astype(np.float64) - 128.0) / 128.0
    else:
        x = np.frombuffer(pcm, "<i2" if width == 2 else "<i4").astype(np.float64) / (1 << (8 * width - 1))
    return x if channels == 1 else x.reshape(-1, channels).mean(axis=1)


class Connection:
    """One client: its own Detector, its stream state, and the event loop of the protocol."""

    def __init__(self, service: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.service, self.reader, self.writer = service, reader, writer
        self.peer = writer.get_extra_info("peername")
        self.names = None           # keywords chosen by `detect` (None: all)
        self.detector = None
        self.streaming = False      # between audio-start and audio-stop
        self.detected = False       # a detection since audio-start

    async def send(self, event) -> None:
        """Write one event; a client that reads nothing for `timeout` s raises TimeoutError."""
        from wyoming.event import async_write_event
        await asyncio.wait_for(async_write_event(event, self.writer), self.service.timeout)

    async def run(self) -> None:
        from wyoming.error import Error
        svc = self.service
        self.task = asyncio.current_task()
        try:
            if len(svc.live) >= svc.max_clients:
                await self.send(Error(text=f"server busy: {svc.max_clients} clients already "
                                           f"connected", code="busy").event())
                return
            svc.live.add(self)
            log.debug("%s connected (%d clients)", self.peer, len(svc.live))
            while True:
                try:
                    event = await asyncio.wait_for(read_event(self.reader), svc.timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    raise ProtocolError(f"no event for {svc.timeout:g} s: closing", "timeout") from None
                if event is None or not await self.handle(event):
                    break
        except ProtocolError as e:
            log.info("%s: %s", self.peer, e)
            await self._try_send(Error(text=str(e), code=e.code).event())
        except (Disconnected, ConnectionError, asyncio.TimeoutError, TimeoutError):
            pass                                     # the client went away or stopped reading
        except Exception as e:                       # a bug: this client ends, the server goes on
            log.exception("%s: internal error", self.peer)
            await self._try_send(Error(text=f"internal error: {e}", code="internal").event())
        finally:
            svc.live.discard(self)
            log.debug("%s disconnected", self.peer)
            self.writer.close()

    async def _try_send(self, event) -> None:
        try:
            await self.send(event)
        except (ConnectionError, asyncio.TimeoutError, TimeoutError):
            pass

    async def handle(self, event) -> bool:
        """Answer one event; False ends the connection."""
        from wyoming.audio import AudioChunk, AudioStart, AudioStop
        from wyoming.info import Describe, SelectProgram
        from wyoming.ping import Ping, Pong
        from wyoming.wake import Detect, Detection, NotDetected
        kind, data = event.type, event.data
        if Describe.is_type(kind):
            await self.send(self.service.info)
        elif Detect.is_type(kind):
            names = data.get("names")
            if names is not None and (not isinstance(names, list)
                                      or not all(isinstance(n, str) for n in names)):
                raise ProtocolError(f"detect names must be a list of strings, got {names!r}")
            known = [n for n in dict.fromkeys(names or []) if n in self.service.keywords]
            self.names = known or None
            self.detector, self.streaming = None, False
        elif AudioStart.is_type(kind):
            _audio_format(data, "audio-start")
            if self.detector is None:
                self.detector = self.service.new_detector(self.names)
            self.detector.reset()
            self.streaming, self.detected = True, False
        elif AudioChunk.is_type(kind):
            if not self.streaming:
                raise ProtocolError("audio-chunk before audio-start", "bad-audio")
            rate, width, channels = _audio_format(data, "audio-chunk")
            audio = pcm_to_mono(event.payload or b"", width, channels)
            # A short chunk (at most a couple of network runs, ~1 ms) is fed right here: handing
            # it to a thread costs more than the Detector itself (10 ms chunks: 2.8 % of a core
            # per stream through asyncio.to_thread, 1.4 % inline). A long one (up to 32 s of audio,
            # ~160 runs) goes to a worker thread so that it does not stall the other clients (the
            # kernels and numpy release the GIL). Either way this connection reads nothing
            # meanwhile, so TCP flow control bounds what a client can queue.
            try:
                if len(audio) <= INLINE_S * rate:
                    hits = self.detector.feed(audio, rate)
                else:
                    hits = await asyncio.to_thread(self.detector.feed, audio, rate)
            except ValueError as e:                   # e.g. the rate changed mid-stream
                raise ProtocolError(str(e), "bad-audio") from None
            for d in hits:
                self.detected = True
                log.info("%s: %s at %.2f s (score %.2f)", self.peer, d.label, d.time_s, d.score)
                await self.send(Detection(name=d.label, timestamp=round(d.time_s * 1000)).event())
        elif AudioStop.is_type(kind):
            if self.streaming and not self.detected:
                await self.send(NotDetected().event())
            self.streaming = False
        elif Ping.is_type(kind):
            await self.send(Pong(text=data.get("text")).event())
        elif SelectProgram.is_type(kind):
            pass                                      # one program only: nothing to select
        else:
            raise ProtocolError(f"unknown event type {kind[:100]!r} (a wake word service takes "
                                f"describe, detect, audio-start, audio-chunk, audio-stop, ping)")
        return True
