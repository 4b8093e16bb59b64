"""Regenerate the tokenizer test data from the reference implementations.

Run in the export environment (it needs open_clip, youtokentome and ruclip's processor)::

    .venv-export/bin/python tests/core/text/make_goldens.py [--retrain]

Writes ``corpus.json`` (curated + generated sentences), ``goldens.json`` (reference ids from
open_clip's tokenizer and from youtokentome with ruCLIP's framing) next to this file, and trains
``tests/fixtures/tokenizers/yttm-ru-en.model`` when it is missing (or with ``--retrain``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CORPUS = HERE / "corpus.json"
GOLDENS = HERE / "goldens.json"
YTTM_MODEL = ROOT / "tests" / "fixtures" / "tokenizers" / "yttm-ru-en.model"
CONTEXTS = (77, 16)
# Goldens keep full id lists up to this length and a digest beyond it (10,000-char inputs).
FULL_IDS_MAX = 400
SEED = 20240601

_RU_TEXT = """
кошка кошки кошку котёнок котята кот собака собаки собаку щенок пёс птица птицы голубь ворона
лошадь корова овца медведь ёж ёжик белка лиса волк заяц рыба рыбы дельфин кит черепаха
море моря морем пляж песок волна волны берег озеро река реки лес леса лесу поле поля горы гора
вершина снег снегу лёд дождь туман облака облако небо солнце закат рассвет луна звёзды звезда
город улица улицы дом дома домик мост башня церковь храм площадь парк сад двор окно дверь крыша
машина машины автомобиль велосипед поезд самолёт лодка корабль автобус трамвай метро дорога
человек люди девушка девочка мальчик ребёнок дети мама папа бабушка дедушка друзья семья
свадьба праздник день рождения новый год ёлка ёлочка подарок подарки торт свечи шарики
еда ужин обед завтрак пицца суп салат кофе чай вино пиво мороженое яблоко яблоки арбуз мёд
красный красная красное синий синяя зелёный зелёная жёлтый жёлтая белый белая чёрный чёрная
розовый оранжевый фиолетовый серый коричневый золотой тёмный тёмная светлый яркий большой
маленький старый старая новая красивый красивая смешной весёлый грустный спящий бегущий
фото фотография фотографии снимок скриншот документ паспорт чек счёт квитанция билет карта
на в под над у с без около возле рядом перед после из для про через по и или но а где как
зимой летом весной осенью утром вечером ночью вчера сегодня завтра отпуск поездка отдых
берёза сосна цветы цветок роза ромашки тюльпаны трава листья осень зима лето весна
"""

_EN_TEXT = """
cat cats kitten dog dogs puppy bird birds horse cow sheep bear hedgehog squirrel fox wolf rabbit
fish dolphin whale turtle sea beach sand wave waves shore lake river forest field mountain
mountains peak snow ice rain fog clouds cloud sky sun sunset sunrise moon stars star city street
house home bridge tower church temple square park garden yard window door roof car cars bike
bicycle train plane boat ship bus tram subway road person people girl boy child children mom dad
grandma grandpa friends family wedding party birthday christmas tree gift gifts cake candles
balloons food dinner lunch breakfast pizza soup salad coffee tea wine beer ice cream apple apples
watermelon honey red blue green yellow white black pink orange purple gray brown golden dark
light bright big small old new beautiful funny happy sad sleeping running photo photos picture
screenshot document passport receipt invoice ticket map on in under over at with without near
next to before after from for about through and or but where how winter summer spring autumn
morning evening night yesterday today tomorrow vacation trip holiday flowers flower rose grass
leaves the a an of my our their his her its is are was were playing eating sitting standing
"""
RU_WORDS = _RU_TEXT.split()
EN_WORDS = _EN_TEXT.split()

EMOJI = [
    "😀", "😂", "🥰", "😍", "🐱", "🐶", "🌊", "🏖️", "🎂", "🎄", "❤️", "👍", "👍🏽", "🙏🏿",
    "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🏴‍☠️", "🧑‍🤝‍🧑", "❤️‍🔥", "🇷🇺", "🇺🇸", "🇬🇧", "🇺🇦",
    "🇯🇵", "1️⃣", "#️⃣", "©️", "™", "☀️", "⛄", "🏔", "📸", "🚗", "✈️",
]  # fmt: skip

PUNCT = [*",.!?;:-—–…()[]{}\"'«»„“”‘’/\\@#$%^&*_+=~`|<>", "...", "?!", "!!!", "--"]

CURATED = [
    # --- empty and whitespace
    "",
    " ",
    "   \t\n  ",
    "\u00a0",
    "\u3000\u2003",
    "\u200b",
    "\x0b\x0c\x1c\x1d",
    "\u2581",
    "\u2581\u2581кот\u2581на\u2581море",
    # --- Latin
    "a cat",
    "A photo of a cat on the beach",
    "DOG IN THE SNOW",
    "MiXeD CaSe WoRdS",
    "don't stop, it's fine; I'm here, we'll go, they've left, she'd know",
    "DON'T STOP 'S 'T 'RE 'VE 'M 'LL 'D",
    "'s 's's rock'n'roll o'clock",
    "'ſ 'ſt ſome",
    "naïve café résumé façade",
    "Straße STRASSE ß ẞ",
    "İstanbul ıi ǅemal ǈ ǋ",
    "Kelvin sign K and ohm Ω",
    "ﬁsh ﬂower ﬀ ﬃ",
    "e\u0301 cafe\u0301 a\u0308",
    "hello<start_of_text>world",
    "<start_of_text>",
    "<end_of_text> <start_of_text>",
    "x<<start_of_text>",
    "!<end_of_text>!",
    "1<end_of_text>2",
    "a <START_OF_TEXT> b",
    "<start_of_text><end_of_text><start_of_text>",
    "<|endoftext|> <|startoftext|>",
    "\u0345 a\u0345b x\u0345\u0301y",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ababababababababab",
    "hellohellohellohello",
    "https://example.com/photos?id=42&sort=date#top",
    "user@example.org wrote: see attached.jpg",
    "#sunset #beach @friend",
    "C:\\Users\\photos\\IMG_0001.JPG",
    # --- Cyrillic
    "кот",
    "Кот на диване",
    "КОТ НА ДИВАНЕ",
    "кОт На ДиВаНе",
    "ёжик в тумане",
    "Ёжик в тумане",
    "ЁЛКА И ЁЖ",
    "Зелёная ёлка, жёлтые листья и тёмный лес",
    "ещё всё равно",
    "Фото с моря прошлым летом",
    "чек из магазина за 1500 рублей",
    "скриншот переписки с мамой",
    "собака бежит по пляжу",
    "Ґанок, їжак, єнот, ўсё, і",
    "й и\u0306 ё е\u0308",
    "ѣ ѳ ѵ і — дореформенная орфография",
    "Ѐ ѐ Ѝ ѝ ӂ ӑ",
    "кошка🐱на подоконнике",
    "Москва-река, Санкт-Петербург",
    "«Ёлочки» и „лапки“ и “кавычки” и ‘одинарные’",
    "Что? Где? Когда?!",
    "т.е. и т.д. и т.п.",
    "ул. Ленина, д. 5, кв. 12",
    # --- digits
    "0",
    "12345",
    "3.14159 2,718",
    "1920x1080 4K 60fps",
    "+7 (999) 123-45-67",
    "2023-12-31 23:59:59",
    "31.12.2023",
    "№5 №12 № 7",
    "½ ¾ ² ³ ⁴ ₁₂",
    "Ⅻ ⅻ Ⅳ ⅰⅱⅲ",
    "١٢٣ ٤٥٦ ०१२ ๑๒๓",
    "100% 50$ €20 ₽300 £5 ¥1000",
    "007 0.5 .5 5. -5 +5 1e10",
    # --- emoji
    "😀",
    "😀😀😀",
    "👍🏽👍🏿",
    "👨‍👩‍👧‍👦 family",
    "👩🏽‍💻 at work",
    "🏳️‍🌈 🏴‍☠️",
    "❤️ ❤ ♥",
    "❤️‍🔥",
    "🇷🇺🇺🇸🇬🇧🇺🇦🇯🇵",
    "🇷🇺 флаг",
    "1️⃣ 2️⃣ #️⃣ *️⃣",
    "🧑‍🤝‍🧑 друзья",
    "😀a😀b😀",
    "море🌊пляж🏖️солнце☀️",
    "\U0001f9cc\U0001fae0\U0001faf6",
    # --- punctuation, quotes, symbols
    "!!!",
    "???!!!...",
    "...",
    "— – - ‒ ―",
    "“quoted” ‘single’ «guillemets» „low“",
    "(brackets) [square] {curly} <angle>",
    "a/b\\c|d",
    "snake_case and kebab-case",
    "~!@#$%^&*()_+`-=",
    "tab\tseparated\tvalues",
    "new\nline\r\nand\rreturn",
    "  leading and trailing  ",
    "multiple     spaces   here",
    "nbsp\u00a0between\u00a0words",
    "zero\u200bwidth\u200bspace",
    "soft\u00adhyphen",
    "left\u200fto\u200eright",
    # --- HTML entities (open_clip unescapes twice)
    "&amp;",
    "Tom &amp; Jerry",
    "&lt;b&gt;bold&lt;/b&gt;",
    "&quot;quoted&quot; &#39;single&#39;",
    "&amp;amp; &amp;lt; &amp;quot;",
    "&#x41;&#66;&#x43; &#1082;&#1086;&#1090;",
    "&nbsp;&mdash;&hellip;&copy;",
    "&notanentity; &amp &lt",
    "<b>html tags</b> <br/>",
    # --- mojibake that ftfy repairs
    "Ð¼Ð¾Ñ€Ðµ",
    "â€œquotedâ€\x9d",
    "cafÃ©",
    "Ã¢â‚¬Å“double mojibakeÃ¢â‚¬Â\x9d",
    "\x1b[31mred\x1b[0m",
    # --- other scripts and mixed
    "中文字符 日本語のテキスト 한국어",
    "العربية עברית हिन्दी ไทย",
    "Ελληνικά ΣΑΣ σας ς",
    "Հայերեն ქართული",
    "кот cat кот cat",
    "фото photo фото",
    "котcat catкот",
    "Paris Париж 2019 🗼",
    "iPhone 15 Pro Max фото",
    "Ёлка 🎄 Christmas tree 2023!",
    "\x00nul\x00",
    "\ufeffbom",
    "\ufffd replacement",
]


def _case(word: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return word
    if r < 0.75:
        return word.capitalize()
    if r < 0.85:
        return word.upper()
    return "".join(c.upper() if rng.random() < 0.5 else c for c in word)


def _generated(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        words = []
        pool = rng.choice((RU_WORDS, EN_WORDS, RU_WORDS + EN_WORDS))
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.75:
                words.append(_case(rng.choice(pool), rng))
            elif r < 0.85:
                words.append(str(rng.randint(0, 10 ** rng.randint(1, 6))))
            elif r < 0.93:
                words.append(rng.choice(EMOJI))
            else:
                words.append(rng.choice(PUNCT))
            if rng.random() < 0.2:
                words[-1] += rng.choice(PUNCT)
        seps = (" ", " ", " ", "", "  ", "\t", "\n", "\u00a0")
        out.append("".join(w + rng.choice(seps) for w in words).rstrip(" "))
    return out


def _long(rng: random.Random, length: int = 10_000) -> list[str]:
    def fill(pieces: list[str], sep: str = " ") -> str:
        parts: list[str] = []
        size = 0
        while size < length:
            p = rng.choice(pieces)
            parts.append(p)
            size += len(p) + len(sep)
        return sep.join(parts)[:length]

    return [
        fill(RU_WORDS),
        fill(EN_WORDS),
        fill(RU_WORDS + EN_WORDS + EMOJI + PUNCT),
        fill(RU_WORDS, sep=""),  # one 10,000-character word
        "".join(rng.choice("0123456789") for _ in range(length)),
        fill(EMOJI, sep=""),
        "а" * length,
        ("Кот " * (length // 4))[:length],
    ]


def build_corpus() -> list[str]:
    rng = random.Random(SEED)
    return CURATED + _generated(rng, 260) + _long(rng)


def training_text() -> str:
    """Lowercase Russian + English sentences (ruCLIP lowercases before encoding)."""
    rng = random.Random(SEED + 1)
    lines = []
    for _ in range(30_000):
        pool = rng.choice((RU_WORDS, RU_WORDS, EN_WORDS))
        words = [rng.choice(pool) for _ in range(rng.randint(3, 14))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 3000)))
        line = " ".join(words)
        if rng.random() < 0.5:
            line += rng.choice('.,!?:;-()"')
        lines.append(line)
    return "\n".join(lines) + "\n"


def train_yttm(path: Path, vocab_size: int = 1500) -> None:
    import youtokentome

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.txt"
        data.write_text(training_text(), encoding="utf-8")
        youtokentome.BPE.train(data=str(data), model=str(path), vocab_size=vocab_size, n_threads=1)


def ruclip_processor_class() -> type:
    """``ruclip.processor.RuCLIPProcessor`` without running ``ruclip/__init__`` (it imports a
    ``huggingface_hub`` function that newer releases removed)."""
    spec = importlib.util.find_spec("ruclip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("ruclip is not installed")
    source = Path(next(iter(spec.submodule_search_locations))) / "processor.py"
    module_spec = importlib.util.spec_from_file_location("_ruclip_processor", source)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.RuCLIPProcessor


def digest(ids: list[int]) -> str:
    return hashlib.sha256(json.dumps(ids).encode()).hexdigest()


def _record(full: list[int], framed: dict[int, list[int]]) -> dict[str, Any]:
    rec: dict[str, Any] = {"n": len(full), "sha256": digest(full)}
    if len(full) <= FULL_IDS_MAX:
        rec["ids"] = full
    rec.update({f"ctx{c}": framed[c] for c in CONTEXTS})
    return rec


def reference_clip(corpus: list[str]) -> list[dict[str, Any]]:
    from open_clip import tokenize
    from open_clip.tokenizer import _tokenizer

    out = []
    for text in corpus:
        full = _tokenizer.encode(text)
        framed = {}
        for c in CONTEXTS:
            row = tokenize([text], context_length=c)[0].tolist()
            framed[c] = row[: min(len(full) + 2, c)]
        out.append(_record(full, framed))
    return out


def reference_yttm(corpus: list[str], model: Path) -> list[dict[str, Any]]:
    import youtokentome

    bpe = youtokentome.BPE(str(model), n_threads=1)
    processor_cls = ruclip_processor_class()
    processors = {c: processor_cls(str(model), text_seq_length=c) for c in CONTEXTS}
    out = []
    for text in corpus:
        full = bpe.encode([text.lower()], output_type=youtokentome.OutputType.ID)[0]
        framed = {}
        for c, proc in processors.items():
            row = proc.encode_text(text).tolist()
            framed[c] = row[: min(len(full) + 2, c)]
        out.append(_record(full, framed))
    return out


def _dump(goldens: dict[str, Any]) -> str:
    """Compact JSON with one case per line, so a changed case shows up as a one-line diff."""

    def cases(items: list[dict[str, Any]]) -> str:
        return "[\n" + ",\n".join(json.dumps(c, separators=(",", ":")) for c in items) + "\n]"

    yttm = dict(goldens["yttm"])
    yttm_cases = yttm.pop("cases")
    head = {k: v for k, v in goldens.items() if k not in ("clip", "yttm")}
    return (
        json.dumps(head)[:-1]
        + ',\n"clip":'
        + cases(goldens["clip"])
        + ',\n"yttm":'
        + json.dumps(yttm)[:-1]
        + ',"cases":'
        + cases(yttm_cases)
        + "}}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--retrain", action="store_true", help="retrain the YTTM fixture model")
    args = parser.parse_args()
    corpus = build_corpus()
    CORPUS.write_text(json.dumps(corpus, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    if args.retrain or not YTTM_MODEL.exists():
        train_yttm(YTTM_MODEL)
    goldens = {
        "corpus_sha256": hashlib.sha256(CORPUS.read_bytes()).hexdigest(),
        "contexts": list(CONTEXTS),
        "clip": reference_clip(corpus),
        "yttm": {
            "model": YTTM_MODEL.name,
            "model_sha256": hashlib.sha256(YTTM_MODEL.read_bytes()).hexdigest(),
            "cases": reference_yttm(corpus, YTTM_MODEL),
        },
    }
    GOLDENS.write_text(_dump(goldens), encoding="utf-8")
    print(f"{len(corpus)} texts -> {CORPUS.name}, {GOLDENS.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
