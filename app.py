"""Launch SpectraMorph Studio (the desktop app); it opens on the built-in demo scene."""
import sys

from spectramorph_gui.main import main

if __name__ == "__main__":
    sys.exit(main())
