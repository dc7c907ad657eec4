"""Which array of a several-array file is the LR-HSI, the HR-MSI or the ground truth."""
import pytest

from spectramorph_engine.io import suggest_array

ARRAYS = [("a_mask", (128, 128), "uint8"), ("hsi", (32, 32, 100), "float32"),
          ("msi", (128, 128, 4), "float32"), ("truth", (128, 128, 100), "float32")]


def test_each_role_gets_the_array_that_fits_it():
    assert suggest_array(ARRAYS, "lr_hsi") == "hsi"        # most bands, smaller grid
    assert suggest_array(ARRAYS, "truth") == "truth"       # most bands, larger grid
    assert suggest_array(ARRAYS, "hr_msi") == "msi"        # fewest bands among the big ones


def test_a_pan_image_is_an_hr_msi_and_no_hyperspectral_cube_suggests_nothing():
    pan = [("pan", (256, 256), "float32"), ("hsi", (64, 64, 50), "float32")]
    assert suggest_array(pan, "hr_msi") == "pan"
    assert suggest_array([("pan", (256, 256), "float32")], "lr_hsi") is None


def test_a_tie_lets_the_user_choose():
    twins = [("x", (32, 32, 100), "float32"), ("y", (32, 32, 100), "float32")]
    assert suggest_array(twins, "lr_hsi") is None
    with pytest.raises(ValueError):
        suggest_array(twins, "msi")
