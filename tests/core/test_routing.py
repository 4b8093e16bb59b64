"""Which loaded model answers a text query."""

from __future__ import annotations

import pytest

from core.models.config import BundleConfig
from core.models.routing import ActiveModelRouter, TextRouter, mostly_cyrillic
from tests.core.onnx_builders import bundle_config


def _cfg(name: str, *languages: str) -> BundleConfig:
    return BundleConfig.model_validate(bundle_config(name=name, languages=languages))


CLIP = _cfg("clip", "en")
RUCLIP = _cfg("ruclip", "ru")
MULTI = _cfg("mclip", "*")
UKR = _cfg("ukr", "uk")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a red car", CLIP),
        ("красная машина", RUCLIP),
        ("КОТ", RUCLIP),
        ("ёжик в тумане", RUCLIP),
        ("кот 2024 :) 🐈", RUCLIP),  # only letters count
        ("iPhone фото", CLIP),  # 6 Latin letters beat 4 Cyrillic
        ("фото iPad", CLIP),  # 4 against 4: a tie is no Cyrillic majority
    ],
)
def test_script_decides_between_english_and_russian(text: str, expected: BundleConfig) -> None:
    router = TextRouter([CLIP, RUCLIP])
    assert router.route(text) is expected
    assert router.route_id(text) == expected.model_id


def test_order_of_bundles_does_not_matter_for_script_routing() -> None:
    router = TextRouter([RUCLIP, CLIP])
    assert router.route("a dog") is CLIP
    assert router.route("собака") is RUCLIP


def test_majority_of_letters_decides_mixed_text() -> None:
    router = TextRouter([CLIP, RUCLIP])
    assert router.route("кот cat собака") is RUCLIP  # 9 Cyrillic vs 3 Latin
    assert router.route("кот on the beach") is CLIP  # 3 Cyrillic vs 12 Latin
    assert router.route("кот cats") is CLIP  # 3 Cyrillic vs 4 Latin
    assert router.route("кот cat") is CLIP  # 3 vs 3: a tie is no Cyrillic majority


def test_text_without_letters_goes_to_the_default_model() -> None:
    router = TextRouter([RUCLIP, CLIP])
    assert router.route("2024") is CLIP
    assert router.route("🐈 !!!") is CLIP
    assert router.route("") is CLIP


def test_other_scripts_go_to_the_english_model() -> None:
    router = TextRouter([CLIP, RUCLIP])
    assert router.route("猫") is CLIP
    assert router.route("Straße") is CLIP


def test_multilingual_model_answers_everything() -> None:
    router = TextRouter([CLIP, RUCLIP, MULTI])
    for text in ("a cat", "кот", "猫", ""):
        assert router.route(text) is MULTI


def test_first_multilingual_model_wins() -> None:
    other = _cfg("nllb", "*")
    assert TextRouter([other, MULTI]).route("x") is other


@pytest.mark.parametrize("only", [CLIP, RUCLIP, UKR])
def test_a_single_model_answers_everything(only: BundleConfig) -> None:
    router = TextRouter([only])
    assert router.route("a cat") is only
    assert router.route("кот") is only


def test_missing_language_falls_back_to_the_default() -> None:
    # Cyrillic text with no Cyrillic-capable model: the English model answers.
    assert TextRouter([CLIP, _cfg("fr", "fr")]).route("кот") is CLIP
    # Latin text with no English model: the first model given answers.
    assert TextRouter([_cfg("fr", "fr"), RUCLIP]).route("chat").name == "fr"


def test_other_cyrillic_languages_are_used_when_russian_is_absent() -> None:
    assert TextRouter([CLIP, UKR]).route("кіт") is UKR
    assert TextRouter([CLIP, UKR, RUCLIP]).route("кот") is RUCLIP  # "ru" preferred


def test_bilingual_bundle_is_used_for_both_languages() -> None:
    both = _cfg("both", "en", "ru")
    router = TextRouter([both, CLIP])
    assert router.route("кот") is both
    assert router.route("cat") is both


def test_no_bundles_is_an_error() -> None:
    with pytest.raises(ValueError, match="no models"):
        TextRouter([])


def test_mostly_cyrillic() -> None:
    assert mostly_cyrillic("Привет, world")  # 6 vs 5
    assert mostly_cyrillic("Hi, мир!!")  # 3 vs 2
    assert not mostly_cyrillic("Hello, мир")  # 3 vs 5
    assert not mostly_cyrillic("123 !?")


def _by_id(*configs: BundleConfig) -> dict[str, BundleConfig]:
    return {c.model_id: c for c in configs}


def test_active_router_keeps_the_global_pick_when_it_is_active() -> None:
    configs = _by_id(CLIP, RUCLIP)
    router = ActiveModelRouter(TextRouter(configs.values()), configs)
    assert router.route_id("кот", list(configs)) == RUCLIP.model_id
    assert router.route_id("a cat", list(configs)) == CLIP.model_id


def test_active_router_routes_among_the_active_models_only() -> None:
    configs = _by_id(CLIP, RUCLIP, UKR)
    router = ActiveModelRouter(TextRouter(configs.values()), configs)
    # Cyrillic while Russian is not active: the Ukrainian model is the Cyrillic one then.
    assert router.route_id("кот", [CLIP.model_id, UKR.model_id]) == UKR.model_id
    assert router.route_id("кот", [CLIP.model_id]) == CLIP.model_id  # one active model
