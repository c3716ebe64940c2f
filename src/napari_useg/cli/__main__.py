import sys

from napari_useg.cli import main

sys.exit(main())
