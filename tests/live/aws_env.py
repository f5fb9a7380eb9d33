"""The caller's ``AWS_*`` environment, read before ``tests/conftest.py`` replaces it with moto's dummy keys.

``tests/conftest.py`` sets ``AWS_ACCESS_KEY_ID=testing`` (and the region) and drops ``AWS_PROFILE`` and
``AWS_SESSION_TOKEN`` when pytest imports it, which is before any test module or fixture runs. The live
suite needs the real credentials back, so this module is loaded as a plugin on the command line
(``python -m pytest -p tests.live.aws_env tests/live``, which ``make test-redshift`` does): pytest imports
``-p`` plugins before it loads any conftest. Imported any later, it would copy the dummy keys, and
:data:`LOADED_EARLY` says so. Nothing but the standard library here.
"""

from __future__ import annotations

import os
import sys

#: ``AWS_*`` variables as the caller set them (credentials, profile, region, endpoints).
SNAPSHOT: dict[str, str] = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}

#: True when this module was imported before ``tests/conftest.py``, i.e. :data:`SNAPSHOT` is the caller's.
LOADED_EARLY: bool = "tests.conftest" not in sys.modules
