"""``python -m soil_moisture_downscaling <command>`` — the command line (see ``cli/main.py``).

QGIS never imports this file: loading the plugin runs ``__init__.classFactory`` only.
"""
import sys

from .cli.main import main

sys.exit(main())
