"""The label fonts: discovered, loaded once per process, regional CJK faces, a face per script, coverage."""

from __future__ import annotations

import pytest

from render import FontCoverageError, fonts


@pytest.fixture(scope="module")
def font() -> fonts.LabelFont:
    try:
        return fonts.warm_up()
    except fonts.RenderError as exc:  # pragma: no cover - the project's setup installs fonts-noto-cjk
        pytest.skip(str(exc))


def test_loaded_once_per_process(font: fonts.LabelFont) -> None:
    assert fonts.load_font() is font
    face = font.face_for("JP")
    gid = face.gid("東")
    assert gid is not None
    assert face.glyph(gid) is face.glyph(gid)
    assert font.chain("Arab", "SA") is font.chain("Arab", "SA")


def test_each_destination_gets_its_regional_face(font: fonts.LabelFont) -> None:
    if not font.is_collection:
        pytest.skip("single-face font: no regional faces")
    assert font.face_for("CN").family.endswith("SC")
    assert font.face_for("TW").family.endswith("TC")
    assert font.face_for("KR").family.endswith("KR")
    assert font.face_for("JP").family.endswith("JP")
    assert font.face_for("DE") is font.face_for("JP")


@pytest.mark.parametrize(
    ("char", "file_name"),
    [
        ("م", "NotoSansArabic-Regular.ttf"),
        ("ש", "NotoSansHebrew-Regular.ttf"),
        ("ก", "NotoSansThai-Regular.ttf"),
        ("न", "NotoSansDevanagari-Regular.ttf"),
        ("ή", "DejaVuSans.ttf"),  # accented Greek: Noto Sans CJK lacks it, the fallback has it
        ("東", "NotoSansCJK-Regular.ttc"),
        ("A", "NotoSansCJK-Regular.ttc"),
    ],
)
def test_each_script_is_drawn_by_a_face_that_writes_it(font: fonts.LabelFont, char: str, file_name: str) -> None:
    face = font.face_of(char, fonts.script_of(char), "DE")
    assert face is not None and face.path.name == file_name


def test_fonts_are_found_by_file_name_under_the_font_roots() -> None:
    assert fonts.script_font_files("Arab")[0].name == "NotoSansArabic-Regular.ttf"
    assert fonts.script_font_files("Deva")[0].name == "NotoSansDevanagari-Regular.ttf"
    assert fonts.script_font_files("Qaaa") == ()  # a script code nobody has a font for


def test_a_character_no_installed_face_draws_is_named_by_script_and_code_point(font: fonts.LabelFont) -> None:
    font.check_coverage("Tokyo 東京 Москва Αθήνα 서울 محمد שלום กรุงเทพ दिल्ली \u200b", "JP", what="the test")
    with pytest.raises(FontCoverageError, match=r"Kawi script \(U\+11F04\) in the test") as caught:
        font.check_coverage("secret \U00011f04", "JP", what="the test")
    assert "secret" not in str(caught.value)
    with pytest.raises(FontCoverageError, match="U\\+E000"):
        font.check_coverage("a\ue000b", "JP", what="the test")


def test_glyph_outlines_are_pdf_paths_in_thousandths_of_an_em(font: fonts.LabelFont) -> None:
    face = font.face_for("JP")
    glyph = face.glyph(face.gid("A") or 0)
    assert 400 < glyph.advance < 800
    assert glyph.path.endswith(b"h")
    assert glyph.bbox[2] > glyph.bbox[0]
    assert face.glyph(face.gid(" ") or 0).path == b""
