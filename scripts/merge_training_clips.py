"""A copy of a data set with another folder's clips added to its training split only.

    python scripts/merge_training_clips.py --base data/v3 --extra data/near-words --out data/v3-near

Made for run v5 (docs/default-model.md): many more training clips of the words a model takes for
keywords, without touching what it is judged on: OUT's `validation_list.txt` and
`testing_list.txt` are BASE's, clip for clip. From EXTRA it takes only clips of training speakers
(a speaker in neither of BASE's lists whom the Speech Commands hash rule also puts in training),
and, when EXTRA has a `manifest.csv`, only non-keyword clips (its `keyword` column). Added clips keep
their speaker id (so the split rule still holds) and get a new repeat number (n + 1000), so they
never collide with BASE's names; manifest rows are appended. Files are hard links where the file
system allows (else copies); OUT is built in OUT.tmp and renamed when complete. OUT must not exist.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kws.data.layout import LIST_FILES, speaker_of, split_of_speaker  # noqa: E402

OFFSET = 1000          # added clips' repeat numbers start here


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:                     # another file system, or links not allowed
        shutil.copy2(src, dst)


def merge(base: Path, extra: Path, out: Path) -> dict:
    if out.exists():
        raise SystemExit(f"error: {out} exists; remove it or choose another --out")
    for d, flag in ((base, "--base"), (extra, "--extra")):
        if not d.is_dir():
            raise SystemExit(f"error: {flag} {d} is not a folder")
    held = {speaker_of(line) for f in LIST_FILES.values() if (base / f).is_file()
            for line in (base / f).read_text().split()}
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(base, tmp, copy_function=_link)
    for f in ("manifest.csv", *LIST_FILES.values()):
        if (tmp / f).exists():          # rewritten or kept: never a link shared with BASE
            (tmp / f).unlink()
            shutil.copy2(base / f, tmp / f)
    manifest = extra / "manifest.csv"
    if manifest.is_file():
        with open(manifest, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("keyword") != "1"]
    else:
        rows = [{"path": p.relative_to(extra).as_posix()} for p in sorted(extra.glob("*/*.wav"))
                if not p.parent.name.startswith("_")]
    added, skipped, new_rows = 0, 0, []
    for r in rows:
        word, name = r["path"].split("/")
        spk = speaker_of(name)
        if spk in held or split_of_speaker(spk) != "training":
            skipped += 1
            continue
        n = int(name[:-4].split("_nohash_")[1]) if "_nohash_" in name else 0
        rel = f"{word}/{spk}_nohash_{n + OFFSET}.wav"
        (tmp / word).mkdir(exist_ok=True)
        _link(extra / r["path"], tmp / rel)
        new_rows.append({**r, "path": rel})
        added += 1
    if new_rows and (tmp / "manifest.csv").is_file() and manifest.is_file():
        with open(tmp / "manifest.csv", newline="") as fh:
            fields = next(csv.reader(fh))
        with open(tmp / "manifest.csv", "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore").writerows(new_rows)
    tmp.rename(out)
    return {"added": added, "skipped_held_out_speakers": skipped}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, type=Path, help="the data set to copy")
    p.add_argument("--extra", required=True, type=Path, help="the folder whose clips are added")
    p.add_argument("--out", required=True, type=Path, help="the new data set (must not exist)")
    a = p.parse_args(argv)
    r = merge(a.base, a.extra, a.out)
    print(f"{a.out}: {r['added']} training clips added from {a.extra}; "
          f"{r['skipped_held_out_speakers']} of validation/testing speakers left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
