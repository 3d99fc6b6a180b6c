"""python -m image_example_gen.sample_data: see `cli`."""

import sys

from image_example_gen.sample_data import cli

sys.exit(cli.main())
