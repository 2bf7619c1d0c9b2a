#!/usr/bin/env python3
"""Random strings and their ftfy.fix_text output, for the differential check of sat2cap's
fix_text (tests/encoders_tokenizer.rs, `fix_text_matches_ftfy_on_random_cases`, ignored by
default):

    python tools/ftfy_cases.py /tmp/ftfy_cases.json 5000 [--realistic]
    SAT2CAP_FTFY_CASES=/tmp/ftfy_cases.json cargo test --test encoders_tokenizer -- --ignored

Strings mix ASCII words, accented Latin, other scripts, emoji, entities, curly quotes,
ligatures, full-width forms, controls, and mojibake made by encoding UTF-8 and decoding it
as Latin-1 or Windows-1252 (whole strings or single words: adversarial mixes). With
--realistic: captions of words, accented words, other scripts and emoji, a third of them
turned into mojibake as a whole. Deterministic.
"""
import json
import random
import sys

import ftfy

WORDS = ["a", "photo", "of", "the", "city", "river", "farmland", "harbour", "street", "view"]
ACCENTED = ["café", "crème", "brûlée", "naïve", "façade", "São", "Zürich", "straße", "Ærø", "ñandú",
            "résumé", "über", "à", "voilà", "déjà", "Ångström", "œuvre", "Łódź", "İstanbul"]
OTHER = ["日本語", "中文", "서울", "Русский", "Ελληνικά", "עברית", "العربية", "हिन्दी", "ไทย"]
EMOJI = ["🐶", "🌍", "👍🏽", "🇫🇷", "❤️", "🧑‍🚀", "©", "®", "™", "€", "£", "°"]
ODD = ["&amp;", "&eacute;", "&EACUTE;", "&#233;", "&#x41;", "&hellip;", "&nbsp;", "&lt;", "<b>",
       "\u2018", "\u2019", "\u201c", "\u201d", "ﬁ", "ﬂ", "ĳ", "ǅ", "Ａ", "１", "ｶ", "\u3000",
       "\r\n", "\r", "\u2028", "\x85", "\x93", "\x81", "\x00", "\x07", "\x1b[31m", "\ufeff",
       "e\u0301", "\u00ad", "\u200b", "—", "–", "…", "•", "\u00a0", "\ufffd"]


def moji(s, rng):
    enc = rng.choice(["latin-1", "windows-1252"])
    try:
        return s.encode("utf-8").decode(enc)
    except UnicodeDecodeError:
        return s.encode("utf-8").decode("latin-1")


def realistic(rng):
    """A caption of words, accented words, other scripts and emoji; a third of them turned
    into mojibake as a whole (the common real-world case)."""
    pool = WORDS * 4 + ACCENTED + OTHER + EMOJI
    s = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 12)))
    return moji(s, rng) if rng.random() < 0.33 else s


def case(rng):
    parts = []
    for _ in range(rng.randint(1, 8)):
        pool = rng.choice([WORDS, WORDS, ACCENTED, OTHER, EMOJI, ODD])
        w = rng.choice(pool)
        if rng.random() < 0.3:
            w = moji(w, rng)
        parts.append(w)
    s = rng.choice([" ", "", " ", "\n"]).join(parts)
    if rng.random() < 0.15:
        s = moji(s, rng)
    return s


def main():
    out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    make = realistic if "--realistic" in sys.argv[3:] else case
    rng = random.Random(7)
    rows = []
    for _ in range(n):
        s = make(rng)
        rows.append({"text": s, "ftfy": ftfy.fix_text(s)})
    with open(out, "w", encoding="utf-8") as f:
        json.dump(rows, f, ensure_ascii=False)
    print(f"wrote {n} cases to {out} (ftfy {ftfy.__version__})")


if __name__ == "__main__":
    main()
