"""Makes tests/train/tiny_data.py importable as ``tiny_data`` (the suite runs with importlib mode)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
