"""The optional compiled hot paths (``arm_etl/_transform_c.c``): the transform's walk and the parts' UTF-8.

Built by ``pip install`` where a C compiler is (``setup.py``: an optional extension). Each function has a
pure-Python reference beside its caller, which runs alone where the extension is missing or with
``ARM_ETL_PURE_PYTHON=1``; the differential tests hold the two to identical output.
"""

from __future__ import annotations

import os

try:
    from arm_etl import _transform_c as ext
except ImportError:  # pragma: no cover - only where the extension could not be built
    ext = None  # type: ignore[assignment]

#: Whether the compiled paths run (the extension is built, and ``ARM_ETL_PURE_PYTHON`` is unset or 0).
ENABLED = ext is not None and os.environ.get("ARM_ETL_PURE_PYTHON", "") in ("", "0")
