"""lattice_fft: X B held as its half spectrum in HySure's ADMM is read and changed only at the
LR samples; the two lattice transforms equal the full-size FFTs they replace, with the folded
column pass (Hp a multiple of r) and without it, wherever the lattice starts."""
import pytest
import torch

from spectramorph_engine.methods.lattice_fft import LatticeFFT


@pytest.mark.parametrize("Hp, Wp, r, top, left, h, w", [
    (48, 40, 4, 5, 6, 9, 8),        # Hp a multiple of r, the lattice off the grid's period
    (50, 45, 4, 7, 3, 10, 9),       # Hp not a multiple of r: the full-length column pass
    (64, 64, 8, 3, 9, 6, 6),
    (30, 33, 3, 0, 2, 9, 10),       # odd width, lattice at the first row
])
def test_lattice_transforms_equal_the_full_size_ffts(Hp, Wp, r, top, left, h, w):
    g = torch.Generator().manual_seed(Hp + Wp)
    L = LatticeFFT(Hp, Wp, r, top, left, h, w, "cpu")
    assert L.fold == (Hp % r == 0)
    x = torch.randn((Hp, Wp), generator=g)
    z = torch.fft.rfft2(x)
    torch.testing.assert_close(L.samples(z), x[top:top + r * h:r, left:left + r * w:r], atol=2e-6, rtol=0)
    s = torch.randn((h, w), generator=g)
    image = torch.zeros((Hp, Wp))
    image[top:top + r * h:r, left:left + r * w:r] = s
    want = z + torch.fft.rfft2(image)
    got = L.add_sparse(z.clone(), s)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)
