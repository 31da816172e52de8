"""The label font: discovered, loaded once per process, regional faces, coverage from the cmap."""

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
    assert face.glyph("東") is face.glyph("東")


def test_each_destination_gets_its_regional_face(font: fonts.LabelFont) -> None:
    if not font.is_collection:
        pytest.skip("single-face font: no regional faces")
    assert font.face_for("CN").family.endswith("SC")
    assert font.face_for("TW").family.endswith("TC")
    assert font.face_for("KR").family.endswith("KR")
    assert font.face_for("JP").family.endswith("JP")
    assert font.face_for("DE") is font.face_for("JP")


def test_coverage_comes_from_the_cmap(font: fonts.LabelFont) -> None:
    face = font.face_for("JP")
    assert face.missing("Tokyo 東京 Москва Αθήνα 서울 \u200b") == []
    assert face.missing("a\ue000b\ue000") == ["\ue000"]
    with pytest.raises(FontCoverageError, match="U\\+E000 in the test") as caught:
        face.check_coverage("secret \ue000", what="the test")
    assert "secret" not in str(caught.value)


def test_glyph_outlines_are_pdf_paths_in_thousandths_of_an_em(font: fonts.LabelFont) -> None:
    glyph = font.face_for("JP").glyph("A")
    assert 400 < glyph.advance < 800
    assert glyph.path.endswith(b"h")
    assert glyph.bbox[2] > glyph.bbox[0]
    assert font.face_for("JP").glyph(" ").path == b""
