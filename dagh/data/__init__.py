"""Face datasets (numpy + Pillow): synthetic faces, image folders, DDH pickles."""

from dagh.data.faceset import FaceSet, Splits
from dagh.data.sources import DataSource, load_splits

__all__ = ["DataSource", "FaceSet", "Splits", "load_splits"]
