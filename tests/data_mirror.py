"""The offline data mirror as the data tests see it: its folder, and the mark of a test that needs it."""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

MIRROR_URL = os.environ.get("HML_DATA_MIRROR", "")
MIRROR = (
    Path(urllib.request.url2pathname(urllib.parse.urlparse(MIRROR_URL).path))
    if MIRROR_URL.startswith("file:")
    else None
)
needs_mirror = pytest.mark.skipif(
    MIRROR is None or not MIRROR.is_dir(),
    reason="needs the offline data mirror: set HML_DATA_MIRROR=file://... (conftest does when ../shared/data exists)",
)
