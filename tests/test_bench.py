"""`kws bench`: runs and produces well-formed output (no speed assertions: timings are the
machine's business, only the structure and the sanity of the numbers are checked)."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from kws import bench

POINT_KEYS = {"point", "width", "blocks", "binary_ms", "float_numpy_ms", "float_ort_ms",
              "numpy_over_binary", "ort_over_binary", "binary_macs", "float_macs", "binary_gmacs",
              "detector_cpu_per_audio_s"}


def kws(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "kws", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def positive(v):
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One `kws bench --json --quick` run (peers asked for, from an empty peers folder)."""
    d = tmp_path_factory.mktemp("bench")
    acc = d / "eval.json"
    acc.write_text(json.dumps({"accuracy": {"1x8": 0.91, "0.25x2": 0.85}, "teacher_accuracy": 0.95}))
    r = kws("bench", "--json", "--quick", "--peers", "auto", "--plot", d / "bench.png",
            "--accuracy", acc, env={"KWS_PEERS_DIR": str(d / "no-peers")})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), d


def test_quick_json_is_well_formed(quick):
    r, _ = quick
    env = r["environment"]
    assert env["cpu"] and env["kernel_isa"] and env["threads"] == 1 and len(env["pinned_cpus"]) == 1
    assert r["settings"]["quick"] is True and r["settings"]["runs"] >= 1
    names = r["model"]["points"]
    assert [p["point"] for p in r["points"]] == [names[0], names[-1]]     # --quick: two points
    for p in r["points"]:
        assert set(p) == POINT_KEYS
        for k in ("binary_ms", "float_numpy_ms", "numpy_over_binary", "binary_macs", "binary_gmacs",
                  "detector_cpu_per_audio_s"):
            assert positive(p[k]), (k, p[k])
        assert (p["float_ort_ms"] is None) == (r["peers"]["onnxruntime"]["status"] != "ok")
    assert r["accuracy"]["accuracy"]["1x8"] == 0.91 and r["accuracy"]["teacher_accuracy"] == 0.95
    assert len(r["gemm"]) == len({p["width"] for p in r["points"]} | set(
        float(n.split("x")[0]) for n in names))
    for g in r["gemm"]:
        assert positive(g["kws_us"]) and positive(g["kws_gmacs"]) and g["binary_macs"] == 2 * g["m"] * g["b"] * g["h"]
        assert g["lce_indirect_us"] is None                                 # no peer venvs
    for t in r["targets"]:
        assert set(t) == {"name", "ratio", "target", "met"} and positive(t["ratio"])
        assert t["met"] == (t["ratio"] >= t["target"])
    full = r["points"][0]
    if full["ort_over_binary"] and full["point"] == "1x8":    # issue #18's ONNX Runtime target for the full network
        t18 = [t for t in r["targets"] if t["name"] == f"issue #18: kws {full['point']} vs the same "
               f"network in float on ONNX Runtime"]
        assert len(t18) == 1 and t18[0]["target"] == 8.0 and t18[0]["ratio"] == full["ort_over_binary"]


def test_absent_peers_say_how_to_install_them(quick):
    r, _ = quick
    for name in ("lce", "openwakeword"):
        st = r["peers"][name]["status"]
        assert st.startswith("not installed") and f"bash benchmarks/peers/setup.sh {name}" in st
    assert r["pi_estimate"]["status"].startswith("not run")
    if r["model"]["random"]:
        assert any("random model" in n for n in r["notices"])


def test_plot_written(quick):
    _, d = quick
    png = (d / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_text_report_from_the_same_result(quick, capsys):
    r, _ = quick
    bench.print_report(r)
    out = capsys.readouterr().out
    assert r["environment"]["cpu"] in out and "numpy/kws" in out and "not installed" in out
    for p in r["points"]:
        assert p["point"] in out


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    from kws.cli import main
    bad = tmp_path / "eval.json"
    bad.write_text("{\"accuracy\": 3}")
    affinity = os.sched_getaffinity(0)
    assert main(["bench", "--quick", "--accuracy", str(bad)]) == 1
    assert capsys.readouterr().err.startswith("kws: error: --accuracy")
    assert main(["bench", "--quick", "--points", "3x9"]) == 1
    assert "3x9" in capsys.readouterr().err
    assert main(["bench", "--quick", "--threads", "0"]) == 1
    assert "--threads" in capsys.readouterr().err
    assert os.sched_getaffinity(0) == affinity          # rejected before pinning anything


@pytest.mark.slow
@pytest.mark.skipif(not (bench.peer_python("lce") or bench.peer_python("openwakeword")),
                    reason="no peer venv: bash benchmarks/peers/setup.sh")
def test_installed_peers_report_measurements():
    r = kws("bench", "--json", "--points", "0.25x2", "--runs", "20", "--seconds", "2",
            "--peers", "auto", timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    if bench.peer_python("lce"):
        lce = out["peers"]["lce"]
        assert lce["status"] == "ok", lce
        assert all(c["ops"][:2] == ["LceQuantize", "LceBconv2d"] for c in lce["converted"])
        for g in out["gemm"]:
            assert positive(g["lce_indirect_us"]) and positive(g["lce_direct_us"])
            assert positive(g["kws_over_lce_indirect"])
    if bench.peer_python("openwakeword"):
        oww = out["peers"]["openwakeword"]
        assert oww["status"] == "ok", oww
        assert {x["framework"] for x in oww["runs"]} == {"tflite", "onnx"}
        assert all(positive(x["cpu_per_audio_s"]) and positive(x["over_kws"]) for x in oww["runs"])


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="no cross compiler / qemu-user: bash scripts/setup.sh installs them")
def test_pi_estimate_counts_the_frontend_per_frame(tmp_path, monkeypatch):
    """The Pi frontend count is per frame (set-up cancels: 20 and 40 frames give the same figure)
    and enters the Detector's total as 100 frames + 5 windows per second."""
    sys.path.insert(0, str(bench.ROOT / "benchmarks"))
    try:
        import pi_estimate as pe
    finally:
        sys.path.remove(str(bench.ROOT / "benchmarks"))
    from kws.detector import resolve_model
    model = resolve_model(None)
    binary = pe.build_frontend(tmp_path)
    twenty = pe.count_frontend(binary, model)
    monkeypatch.setattr(pe, "FRONTEND_FRAMES", 40)
    forty = pe.count_frontend(binary, model)
    assert 5_000 < twenty["instructions_per_frame"] < 200_000
    assert abs(forty["instructions_per_frame"] / twenty["instructions_per_frame"] - 1) < 0.01
    assert twenty["frames_per_audio_s"] == 100
    point = {"point": "1x8", "width": 1.0, "blocks": 8, "instructions": 1_000_000}
    monkeypatch.setattr(pe, "count_point", lambda *a, **k: point)
    monkeypatch.setattr(pe, "count_frontend", lambda *a, **k: twenty)
    r = pe.pi_estimate(points=["1x8"], model=model)
    want = 5 * 1_000_000 + 100 * twenty["instructions_per_frame"]
    assert r["detector"] == [{"point": "1x8", "hop_ms": 200.0, "instructions_per_audio_s": want,
                              "ms_per_audio_s": round(want / 1.2e9 * 1e3, 3),
                              "percent_of_one_core": round(want / 1.2e9 * 100, 3)}]


def _pi_counts(tmp_path, backbone: int, hidden: int, **variants) -> dict:
    """pi_estimate.count_point of a 2-block, width-1 network for each value of the one ArchConfig
    field in `variants` (e.g. up_planes=(1, 2)), on one build of the Pi driver."""
    sys.path.insert(0, str(bench.ROOT / "benchmarks"))
    try:
        import pi_estimate as pe
    finally:
        sys.path.remove(str(bench.ROOT / "benchmarks"))
    from kws.fsmn.config import ArchConfig
    binary = pe.build_runtime(tmp_path)
    (field, values), = variants.items()
    counts = {}
    for v in values:
        arch = ArchConfig(backbone=backbone, hidden=hidden, n_blocks=2, block_sets=((0, 1),),
                          widths=(1.0,), **{field: v})
        counts[v] = pe.count_point(binary, arch, arch.operating_points[0])
    return counts


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="no cross compiler / qemu-user: bash scripts/setup.sh installs them")
def test_pi_driver_runs_the_sign_planes(tmp_path):
    """The Pi estimate's driver builds the runtime's up layer with sign planes: two planes double
    the up GEMM's kernel instructions (the down GEMM unchanged), so the kernel count grows ~1.5x."""
    counts = _pi_counts(tmp_path, 128, 256, up_planes=(1, 2))
    ratio = counts[2]["kernel_instructions"] / counts[1]["kernel_instructions"]
    assert 1.3 < ratio < 1.7, ratio
    assert counts[2]["binary_macs"] == counts[1]["binary_macs"] * 3 // 2


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="no cross compiler / qemu-user: bash scripts/setup.sh installs them")
def test_pi_driver_runs_pcen(tmp_path):
    """With arch input_norm "pcen" the driver gives the network its PCEN parameters: the count of
    pcen_bands_base is part of the inference's and is what the PCEN model costs more."""
    counts = _pi_counts(tmp_path, 64, 128, input_norm=("global", "pcen"))
    assert counts["global"]["pcen_instructions"] == 0
    extra = counts["pcen"]["pcen_instructions"]
    assert 97 * 40 < extra < 97 * 40 * 200                 # a few dozen instructions per value
    # what PCEN adds, less the plain normalisation pass it replaces
    assert 0.8 * extra < counts["pcen"]["instructions"] - counts["global"]["instructions"] <= extra


def test_cpu_model_names_family_and_model():
    """The name alone is ambiguous (AMD EPYC: Zen 3 or Zen 4): family and model go beside it."""
    name = bench.cpu_model()
    if shutil.which("lscpu") and "CPU family" in subprocess.run(["lscpu"], capture_output=True, text=True).stdout:
        assert "(family " in name and ", model " in name, name


def test_arch_cost_rows_and_ratios(tmp_path):
    """benchmarks/arch_cost.py: the shipped architecture is the baseline (ratio 1), a bigger one has
    the binary MACs its shape says (with sign planes too); a malformed --arch is a one-line error."""
    script = bench.ROOT / "benchmarks" / "arch_cost.py"
    out = tmp_path / "cost.json"
    r = subprocess.run([sys.executable, script, "--arch", "192x512x4,128x512x4p2", "--seconds", "2", "--rounds", "1",
                        "--peers", "none", "--json", out], capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    base, big, planes = d["rows"]
    assert d["baseline"] == base["arch"] and big["arch"] == "192x512x4"
    assert base["full"]["x_baseline"] == 1.0 and base["central"]["x_baseline"] == 1.0
    assert (big["full"]["point"], big["central"]["point"]) == ("1x4", "0.5x2")
    # 4 blocks x 48 frames x 2 GEMMs x 192 x 512 at full width; 0.5x2: half the blocks, half of each width
    assert big["full"]["binary_macs"] == 4 * 48 * 2 * 192 * 512
    assert big["central"]["binary_macs"] == 2 * 48 * 2 * 96 * 256
    # two sign planes: the up GEMM twice (3 GEMMs' worth per block)
    assert planes["arch"] == "128x512x4p2" and planes["up_planes"] == 2
    assert planes["full"]["binary_macs"] == 4 * 48 * 3 * 128 * 512
    assert all(positive(row[p]["cpu_per_audio_s"]) for row in d["rows"] for p in ("full", "central"))
    bad = subprocess.run([sys.executable, script, "--arch", "192x512"], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "BACKBONExHIDDENxBLOCKS[pPLANES]" in bad.stderr
    zero = subprocess.run([sys.executable, script, "--arch", "0x512x8"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert zero.returncode != 0 and zero.stderr.strip().count("\n") == 0 and "backbone" in zero.stderr
