"""What the app tells a new user: unknown characters, refused uploads, photos unlike the training scenes,
and the image model's decision threshold with wrong and missed classes marked (AppTest)."""

from __future__ import annotations

import pytest

from test_app_pages import assert_clean, start


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_out_of_vocabulary_characters_are_named_under_the_text() -> None:
    at = start("app_pages/text_attention.py")
    at.text_area(key="ta_text").input("I love pizza 🍕 and tea ☕ today.").run()
    assert_clean(at)
    notices = [i.value for i in at.info if "vocabulary" in i.value]
    assert notices and "🍕" in notices[0] and "☕" in notices[0]
    at.text_area(key="ta_text").input("I love pizza and tea today.").run()
    assert not [i.value for i in at.info if "vocabulary" in i.value]
