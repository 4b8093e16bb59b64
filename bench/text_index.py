"""Text index: Snowball-stemmed words (unicode61) against SQLite's trigram tokenizer.

A synthetic Russian/English caption corpus where every word is a known form of a known lemma:
Russian nouns in their cases and plurals (several declension classes), English nouns in the
plural and verbs with -s/-ing, a few irregular forms (mice, children, leaves) on purpose, and
decoy words that share letters with the lemmas (котлета/кот, столица/стол, catalog/cat,
planet/plan). Each query is one lemma in a *different* form than the one its item holds.

Variants: ``exact`` (unicode61, no stemming: the floor), ``snowball`` (the product's analyser,
storage/text_terms.py), ``trigram`` (the form as a substring of the raw text) and
``trigram+stem`` (the form's Snowball stem as a substring). Measured per variant: share of
queries that find their item, share of returned items that do not hold the query's lemma in any
form (false hits), share of queries with at least one false hit, index bytes per 10k items on
disk (VACUUMed, raw texts subtracted), p50 query time.

Prints a markdown table and a final ``RESULT {json}`` line. Runs in well under two minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.connection import PAGE_SIZE  # noqa: E402
from storage.text_terms import index_terms, stem, words  # noqa: E402

# --- the vocabulary ---------------------------------------------------------------------------

RU_CLASSES: dict[str, tuple[list[str], list[str]]] = {
    # class: (endings, stems)
    "masc": (
        ["", "а", "у", "ом", "е", "ы", "ов", "ам", "ами", "ах"],
        ["кот", "стол", "билет", "документ", "завод", "самолет", "банкомат", "ресторан",
         "магазин", "рецепт", "закат", "фонтан", "мост", "салат", "чемодан", "телефон",
         "компьютер", "портрет", "плакат", "концерт", "торт", "сайт", "экран", "вокзал",
         "лимон", "банан", "диван", "помидор", "автобус", "зонт", "отчет", "ремонт"],
    ),
    "fem": (
        ["а", "ы", "е", "у", "ой", "", "ам", "ами", "ах"],
        ["машин", "карт", "комнат", "газет", "планет", "ракет", "монет", "виз", "работ",
         "зарплат", "ламп", "роз", "гор", "погод", "школ", "квартир", "картин", "минут",
         "палат", "лун", "стен", "цен", "почт", "рыб"],
    ),
    "ija": (
        ["ия", "ии", "ию", "ией", "ий", "иям", "иями", "иях"],
        ["квитанц", "станц", "фотограф", "лекц", "презентац", "инструкц", "экскурс",
         "церемон", "коллекц", "конференц", "операц", "декларац", "лаборатор"],
    ),
    "masc_soft": (
        ["ь", "я", "ю", "ем", "е", "и", "ей", "ям", "ями", "ях"],
        ["автомобил", "календар", "портфел", "рубл", "словар", "фонар", "учител"],
    ),
    "fem_soft": (
        ["ь", "и", "ью", "ей", "ям", "ями", "ях"],
        ["тетрад", "площад", "кроват", "модел", "цел", "лошад"],
    ),
}  # fmt: skip
EN_NOUNS = [
    ("cat", "cats"), ("car", "cars"), ("invoice", "invoices"), ("ticket", "tickets"),
    ("party", "parties"), ("box", "boxes"), ("city", "cities"), ("boat", "boats"),
    ("bill", "bills"), ("receipt", "receipts"), ("park", "parks"), ("train", "trains"),
    ("beach", "beaches"), ("tree", "trees"), ("sunset", "sunsets"), ("flower", "flowers"),
    ("bridge", "bridges"), ("bottle", "bottles"), ("dog", "dogs"), ("plan", "plans"),
    ("passport", "passports"), ("photo", "photos"), ("screenshot", "screenshots"),
    ("contract", "contracts"), ("church", "churches"), ("bus", "buses"), ("dress", "dresses"),
    ("baby", "babies"), ("family", "families"), ("key", "keys"), ("toy", "toys"),
    ("leaf", "leaves"), ("knife", "knives"), ("child", "children"), ("mouse", "mice"),
]  # fmt: skip
EN_VERBS = [
    ("run", "runs", "running"), ("hike", "hikes", "hiking"), ("swim", "swims", "swimming"),
    ("cook", "cooks", "cooking"), ("dance", "dances", "dancing"), ("ski", "skis", "skiing"),
    ("paint", "paints", "painting"), ("climb", "climbs", "climbing"),
    ("read", "reads", "reading"), ("sing", "sings", "singing"), ("camp", "camps", "camping"),
    ("surf", "surfs", "surfing"), ("write", "writes", "writing"),
    ("drive", "drives", "driving"), ("shop", "shops", "shopping"), ("sit", "sits", "sitting"),
    ("fly", "flies", "flying"), ("study", "studies", "studying"),
]  # fmt: skip
# Other words sharing letters with the lemmas: a substring match takes them for the lemma.
DECOYS = [
    "котлета", "который", "котел", "котенок", "столица", "столовая", "билетер", "мостовая",
    "салатница", "картон", "картофель", "гороскоп", "погодный", "школьник", "квартал",
    "машинист", "газетчик", "ракетка", "монетка", "розетка", "лампочка", "работник",
    "портретист", "концертный", "тортик", "экранизация", "лимонад", "диванчик", "зонтик",
    "отчетность", "ремонтник", "лекционный", "ценник", "стенка", "почтальон", "рыбак",
    "catalog", "category", "scatter", "cart", "card", "carpet", "scar", "brunch", "runway",
    "apart", "partner", "boxer", "citizen", "billboard", "billion", "parking", "trainer",
    "treetop", "flowerpot", "dogma", "planet", "plane", "plant", "photograph", "keyboard",
    "keynote", "business", "dressing", "reader", "singer", "camper", "surfboard", "writer",
    "driver", "shopper", "sitcom", "flyer",
]  # fmt: skip
FILLERS_RU = ["и", "на", "в", "у", "с", "за", "мой", "наш", "старый", "новый", "вчера"]
FILLERS_EN = ["the", "a", "at", "with", "my", "our", "old", "new", "yesterday"]


def lemmas() -> tuple[list[list[str]], list[list[str]]]:
    """(Russian lemmas, English lemmas), each lemma a list of its forms."""
    ru = [[s + e for e in endings] for endings, stems in RU_CLASSES.values() for s in stems]
    en = [list(n) for n in EN_NOUNS] + [list(v) for v in EN_VERBS]
    return [sorted(set(f)) for f in ru], en


@dataclass(frozen=True, slots=True)
class Corpus:
    texts: list[str]
    lemmas_of: list[frozenset[int]]  # per item: lemma ids it holds (decoys have their own)
    forms: list[list[str]]  # per lemma id: its forms
    queries: list[tuple[int, int, str]]  # (item, lemma, a form the item does not hold)


def build_corpus(n_items: int, n_queries: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    ru, en = lemmas()
    forms = ru + en + [[d] for d in DECOYS]
    ru_ids, en_ids = range(len(ru)), range(len(ru), len(ru) + len(en))
    decoy_ids = range(len(ru) + len(en), len(forms))
    texts: list[str] = []
    lemmas_of: list[frozenset[int]] = []
    held: list[dict[int, str]] = []
    for _ in range(n_items):
        russian = rng.random() < 0.7
        pool, fillers = (ru_ids, FILLERS_RU) if russian else (en_ids, FILLERS_EN)
        chosen = {i: rng.choice(forms[i]) for i in rng.sample(pool, rng.randint(2, 5))}
        for d in rng.sample(decoy_ids, rng.randint(0, 2)):
            chosen[d] = forms[d][0]
        tokens = [*chosen.values(), *rng.sample(fillers, rng.randint(0, 3))]
        if rng.random() < 0.3:
            tokens.append(str(rng.randint(1, 2030)))
        rng.shuffle(tokens)
        texts.append(" ".join(tokens).capitalize())
        lemmas_of.append(frozenset(chosen))
        held.append(chosen)
    queries: list[tuple[int, int, str]] = []
    while len(queries) < n_queries:
        item = rng.randrange(n_items)
        lemma = rng.choice([i for i in held[item] if i not in decoy_ids])
        other = [f for f in forms[lemma] if f != held[item][lemma]]
        if other:
            queries.append((item, lemma, rng.choice(other)))
    return Corpus(texts, lemmas_of, forms, queries)


# --- the variants -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    schema: str  # CREATE VIRTUAL TABLE idx ... (raw texts are in table raw(id, text))
    indexed: Callable[[str], str] | None  # what goes into idx.text; None: external content raw
    query: Callable[[str], str | None]  # the FTS5 query for a word; None: cannot be asked


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _substring(text: str) -> str | None:
    return _quoted(text) if len(text) >= 3 else None  # trigram needs three characters


VARIANTS = [
    Variant(
        "exact",
        "CREATE VIRTUAL TABLE idx USING fts5(text, content='raw', content_rowid='id')",
        None,
        lambda w: _quoted(" ".join(words(w))),
    ),
    Variant(
        "snowball",
        "CREATE VIRTUAL TABLE idx USING fts5(text, tokenize='unicode61')",
        index_terms,
        lambda w: _quoted(index_terms(w)),
    ),
    Variant(
        "trigram",
        "CREATE VIRTUAL TABLE idx USING fts5(text, content='raw', content_rowid='id', "
        "tokenize='trigram')",
        None,
        lambda w: _substring(" ".join(words(w))),
    ),
    Variant(
        "trigram+stem",
        "CREATE VIRTUAL TABLE idx USING fts5(text, content='raw', content_rowid='id', "
        "tokenize='trigram')",
        None,
        lambda w: _substring(stem(words(w)[0])),
    ),
]


def _db(path: Path, texts: list[str]) -> sqlite3.Connection:
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    con.execute("CREATE TABLE raw (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    con.executemany("INSERT INTO raw (id, text) VALUES (?, ?)", enumerate(texts, 1))
    con.commit()
    return con


def _size(con: sqlite3.Connection) -> int:
    con.execute("VACUUM")
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    return int(pages) * PAGE_SIZE


def measure(variant: Variant, corpus: Corpus, tmp: Path, raw_bytes: int) -> dict[str, float]:
    con = _db(tmp / f"{variant.name}.db", corpus.texts)
    start = time.perf_counter()
    con.execute(variant.schema)
    if variant.indexed is None:
        con.execute("INSERT INTO idx (rowid, text) SELECT id, text FROM raw")
    else:
        con.executemany(
            "INSERT INTO idx (rowid, text) VALUES (?, ?)",
            ((i, variant.indexed(t)) for i, t in enumerate(corpus.texts, 1)),
        )
    con.commit()
    build_s = time.perf_counter() - start
    size = _size(con) - raw_bytes
    found = hits = false_hits = with_false = 0
    times: list[float] = []
    for item, lemma, form in corpus.queries:
        expression = variant.query(form)
        if expression is None:
            continue
        t0 = time.perf_counter()
        rows = con.execute("SELECT rowid FROM idx WHERE idx MATCH ?", (expression,)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        ids = {r[0] - 1 for r in rows}
        found += item in ids
        wrong = sum(1 for i in ids if lemma not in corpus.lemmas_of[i])
        hits += len(ids)
        false_hits += wrong
        with_false += wrong > 0
    con.close()
    n = len(corpus.queries)
    per_10k = 10_000 / len(corpus.texts)
    return {
        "recall": found / n,
        "false_hit_share": false_hits / hits if hits else 0.0,
        "queries_with_false_hits": with_false / n,
        "index_kb_per_10k": size * per_10k / 1024,
        "p50_ms": statistics.median(times) if times else 0.0,
        "build_s": build_s,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    corpus = build_corpus(args.items, args.queries, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        base = _db(Path(tmp) / "raw.db", corpus.texts)
        raw_bytes = _size(base)
        base.close()
        results = {v.name: measure(v, corpus, Path(tmp), raw_bytes) for v in VARIANTS}
    print(f"{args.items} items, {args.queries} queries (a different form of a held lemma), "
          f"raw texts {raw_bytes * 10_000 / args.items / 1024:.0f} KB per 10k items\n")  # fmt: skip
    print("| variant | finds its item | false hits | queries with false hits | "
          "index KB / 10k | p50 ms | build s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['recall']:.1%} | {r['false_hit_share']:.1%} | "
            f"{r['queries_with_false_hits']:.1%} | {r['index_kb_per_10k']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['build_s']:.2f} |"
        )
    # The product's choice: most queries answered, least noise (recall minus false-hit share).
    winner = max(results, key=lambda k: results[k]["recall"] - results[k]["false_hit_share"])
    print(f"\nwinner: {winner}")
    summary = {k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}
    print("RESULT " + json.dumps({"winner": winner, "items": args.items, **summary}))


if __name__ == "__main__":
    main()
